"""A prefix KV cache across ``sample_steps`` calls: states' keys and values, keyed by their ids.

Search asks for the next steps of states whose KV the previous call computed while it sampled
them (every state is a parent state plus one sampled step). This store keeps those KV tensors so a
call prefills only the ids past the longest cached prefix.

Layout: a tree of *segments*. A segment holds the KV of a run of ids at absolute positions
``start .. start + len(ids)`` and hangs under the segment that holds the ids before it (possibly
part-way through it: two prompts that share a few-shot prefix share that part). A sampled step
is a segment under its state's last segment, so siblings share their parent's KV instead of each
holding a copy. The KV of a state's cached prefix is its chain of segments, concatenated.

Memory is bounded by ``max_bytes``; least recently used *leaf* segments are evicted first (a
parent is needed by its children). Keys were computed with their absolute positions (RoPE is
applied before caching, with a row's first real token at position 0), so a cached prefix is
valid for every state that starts with the same ids, whatever batch it was computed in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from svpo_harness.engines.tokenization import common_prefix_length

LayerKV = tuple[torch.Tensor, torch.Tensor]  # keys, values: [kv_heads, tokens, head_dim] each
DEFAULT_PREFIX_CACHE_MB = 2048


@dataclass(eq=False)
class Segment:
    """The KV of ``ids`` at positions ``start ..``; ``parent`` holds the positions before."""

    ids: tuple[int, ...]
    start: int
    parent: Segment | None
    kv: list[LayerKV]
    children: dict[tuple[int, int], list[Segment]] = field(default_factory=dict)
    # fp32 logits of the token after the segment's last id, when they were computed: a state
    # that ends here then needs no forward at all
    next_logits: torch.Tensor | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.ids)

    @property
    def nbytes(self) -> int:
        size = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in self.kv)
        if self.next_logits is not None:
            size += self.next_logits.numel() * self.next_logits.element_size()
        return size


Chain = list[tuple[Segment, int]]  # (segment, ids of it used), root first


@dataclass
class CacheStats:
    lookups: int = 0
    hit_tokens: int = 0  # prefix tokens served from the store
    inserted_tokens: int = 0
    evicted_segments: int = 0
    skipped_inserts: int = 0  # segments larger than the whole budget


class PrefixKVCache:
    """Segments of KV keyed by token ids, LRU-bounded in bytes (see the module docstring)."""

    def __init__(self, max_bytes: int = DEFAULT_PREFIX_CACHE_MB * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.bytes = 0
        self.stats = CacheStats()
        self._root = Segment(ids=(), start=0, parent=None, kv=[])
        self._lru: OrderedDict[int, Segment] = OrderedDict()

    def __len__(self) -> int:
        return len(self._lru)

    def clear(self) -> None:
        self._root.children.clear()
        self._lru.clear()
        self.bytes = 0

    # -- lookup -------------------------------------------------------------------------------
    @staticmethod
    def next_logits(chain: Chain) -> torch.Tensor | None:
        """The stored next-token logits when ``chain`` ends exactly at a segment's end."""
        if not chain:
            return None
        seg, used = chain[-1]
        return seg.next_logits if used == len(seg.ids) else None

    def match(self, ids: Sequence[int], limit: int | None = None) -> tuple[Chain, int]:
        """The longest cached prefix of ``ids`` (at most ``limit`` tokens): its chain and
        length. The chain's segments become the most recently used."""
        limit = len(ids) if limit is None else min(limit, len(ids))
        chain: Chain = []
        node, pos = self._root, 0
        while pos < limit:
            best, best_len = None, 0
            for child in node.children.get((pos, ids[pos]), ()):
                n = common_prefix_length(child.ids, ids[pos:limit])
                if n > best_len:
                    best, best_len = child, n
            if best is None:
                break
            chain.append((best, best_len))
            node, pos = best, pos + best_len
        self.stats.lookups += 1
        self.stats.hit_tokens += pos
        for seg, _ in chain:
            self._lru.move_to_end(id(seg))
        return chain, pos

    @staticmethod
    def chain_kv(chain: Chain) -> list[LayerKV]:
        """Per layer, the chain's keys and values concatenated: ``[kv_heads, length, dim]``."""
        if not chain:
            return []
        layers = len(chain[0][0].kv)
        out = []
        for layer in range(layers):
            keys = [seg.kv[layer][0][:, :used] for seg, used in chain]
            values = [seg.kv[layer][1][:, :used] for seg, used in chain]
            out.append((torch.cat(keys, dim=1), torch.cat(values, dim=1)))
        return out

    # -- insert -------------------------------------------------------------------------------
    def insert(
        self,
        chain: Chain,
        ids: Sequence[int],
        kv: list[LayerKV],
        next_logits: torch.Tensor | None = None,
    ) -> Segment | None:
        """Add the KV of ``ids``, which follow the prefix ``chain`` (from ``match``), and the
        logits of the token after them when known.

        Returns the new segment, or None when nothing was added (empty, larger than the whole
        budget, or already cached).
        """
        ids = tuple(ids)
        if not ids or any(id(seg) not in self._lru for seg, _ in chain):
            return None  # nothing to add, or the prefix was evicted meanwhile
        parent, start = (chain[-1][0], chain[-1][0].start + chain[-1][1]) if chain else (None, 0)
        if parent is not None and parent.ids[chain[-1][1] : chain[-1][1] + len(ids)] == ids:
            return None  # the prefix's own segment goes on with these ids: already cached
        node = parent if parent is not None else self._root
        key = (start, ids[0])
        for sibling in node.children.get(key, ()):
            if sibling.ids[: len(ids)] == ids:  # already cached (e.g. the same state twice)
                return None
        seg = Segment(
            ids=ids, start=start, parent=parent, kv=[(k, v) for k, v in kv], next_logits=next_logits
        )
        size = seg.nbytes
        if size > self.max_bytes:
            self.stats.skipped_inserts += 1
            return None
        node.children.setdefault(key, []).append(seg)
        self._lru[id(seg)] = seg
        self.bytes += size
        self.stats.inserted_tokens += len(ids)
        for ancestor, _ in chain:  # an inserted child keeps its chain alive (LRU order)
            self._lru.move_to_end(id(ancestor))
        self._lru.move_to_end(id(seg))
        self._evict(protect=seg)
        return seg if id(seg) in self._lru else None

    def _evict(self, protect: Segment) -> None:
        """Drop least recently used leaves until within budget; the new segment goes last."""
        while self.bytes > self.max_bytes:
            victim = next(
                (s for s in self._lru.values() if not s.children and s is not protect), None
            )
            if victim is None:
                if protect.children or id(protect) not in self._lru:
                    return
                victim = protect
            self._remove(victim)

    def _remove(self, seg: Segment) -> None:
        node = seg.parent if seg.parent is not None else self._root
        key = (seg.start, seg.ids[0])
        siblings = node.children.get(key, [])
        siblings[:] = [s for s in siblings if s is not seg]
        if not siblings:
            node.children.pop(key, None)
        del self._lru[id(seg)]
        self.bytes -= seg.nbytes
        self.stats.evicted_segments += 1
