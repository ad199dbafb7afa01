"""Prefill of a sampling call on the prefix KV cache, and the harvest of what the call computed.

Without a store this is one left-padded forward of the unique states (``prefix_forward``). With a
store (``hf_prefix_cache.PrefixKVCache``):

1. ids that several states share beyond the store (a chat template's system prompt) are
   computed once, first; a state whose KV *and* next-token logits are stored (a step whose
   last id was fed, e.g. for its value) needs no forward at all; every other state takes its
   longest cached prefix (at most all but its last id, so the forward yields the next-token
   logits) and only the rest, its *suffix*, is computed;
2. suffixes are grouped by length so that padding stays within ``PAD_SLACK`` of the real
   tokens; a group's rows get their cached prefixes as a left-padded KV cache and their
   suffixes left padded after it (the pads are holes in the mask, which carry no weight), so
   every row's last id sits in the last column and one logit row per state is computed;
3. the suffixes' KV go into the store, and the groups' caches are joined into the batch cache
   the token loop continues on.

After the loop, ``harvest`` stores each sampled step's KV under its state, so the next call that
expands that step finds the whole state cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from svpo_harness.engines.backends.hf_forward import cache_argument, prefix_forward
from svpo_harness.engines.backends.hf_prefix_cache import LayerKV, PrefixKVCache

PAD_SLACK = 1.1  # a prefill group computes at most 10% more tokens than its real ones
# Uncached ids that several states of one call share (a chat template's system prompt, a
# few-shot preamble) are prefilled once, first, when they are at least this long.
MIN_SHARED_TOKENS = 8


@dataclass
class Prefill:
    """What the token loop starts from, one row per unique state."""

    logits: torch.Tensor  # fp32 [states, vocab]: the next token's logits
    cache: Any  # transformers DynamicCache, [states, ...]
    mask: torch.Tensor  # [states, width]
    next_pos: torch.Tensor  # [states]
    computed: list[int]  # prefill tokens computed per state (its suffix; no padding)
    padded: int  # tokens computed in all, padding included


def supports_prefix_cache(model: Any) -> bool:
    """True when every layer's cache is a plain growing KV (no sliding window, no recurrent
    state): only then is a stored prefix's KV valid for any continuation."""
    try:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        cache = DynamicCache(config=model.config)
    except Exception:  # noqa: BLE001 - an unknown cache layout: do not cache
        return False
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)


def length_groups(lengths: Sequence[int], slack: float = PAD_SLACK) -> list[list[int]]:
    """Indices grouped (longest first) so each group's padded size is <= slack x its real one."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups:
            group = groups[-1]
            width = lengths[group[0]]
            if (len(group) + 1) * width <= slack * (sum(lengths[j] for j in group) + lengths[i]):
                group.append(i)
                continue
        groups.append([i])
    return groups


def assemble_cache(rows: Sequence[list[LayerKV]], device: torch.device) -> tuple[Any, torch.Tensor]:
    """A left-padded DynamicCache and its mask from per-row KV (``[] `` = nothing cached)."""
    from transformers import DynamicCache

    lengths = [row[0][0].shape[1] if row else 0 for row in rows]
    width = max(lengths, default=0)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=device)
    for r, length in enumerate(lengths):
        mask[r, width - length :] = 1
    if width == 0:
        return DynamicCache(), mask
    sample = next(row for row in rows if row)
    data = []
    for layer, (k0, v0) in enumerate(sample):
        keys = k0.new_zeros((len(rows), k0.shape[0], width, k0.shape[2]))
        values = v0.new_zeros((len(rows), v0.shape[0], width, v0.shape[2]))
        for r, row in enumerate(rows):
            if row:
                keys[r, :, width - lengths[r] :] = row[layer][0]
                values[r, :, width - lengths[r] :] = row[layer][1]
        data.append((keys, values))
    return DynamicCache(ddp_cache_data=data), mask


def row_kv(cache: Any, mask: torch.Tensor, row: int, first: int, count: int) -> list[LayerKV]:
    """Copies of one row's KV for its real tokens ``first .. first + count`` (mask order)."""
    cols = mask[row].nonzero()[first : first + count, 0]
    return [
        (layer.keys[row].index_select(1, cols), layer.values[row].index_select(1, cols))
        for layer in cache.layers
    ]


def _feed_left_padded(
    model: Any,
    cache: Any,
    mask: torch.Tensor,
    next_pos: torch.Tensor,
    chunks: Sequence[Sequence[int]],
    pad_id: int,
) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """Feed each row its suffix, left padded after its cached prefix; the logits of each row's
    last id (the last column). Returns ``(logits fp32, cache, mask)``."""
    device = mask.device
    lengths = torch.tensor([len(c) for c in chunks], device=device)
    width = int(lengths.max())
    ids = torch.full((len(chunks), width), pad_id, dtype=torch.long)
    chunk_mask = torch.zeros((len(chunks), width), dtype=torch.long)
    for i, chunk in enumerate(chunks):
        ids[i, width - len(chunk) :] = torch.tensor(list(chunk), dtype=torch.long)
        chunk_mask[i, width - len(chunk) :] = 1
    offsets = torch.arange(width, device=device)[None, :] - (width - lengths)[:, None]
    positions = (next_pos[:, None] + offsets).clamp(min=0)  # pads: any position, masked
    mask = torch.cat([mask, chunk_mask.to(device)], dim=1)
    out = model(
        input_ids=ids.to(device),
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
        **{cache_argument(model): cache},
    )
    return out.logits[:, -1].float(), getattr(out, cache_argument(model)), mask


def shared_prefixes(
    states: Sequence[Sequence[int]], store: PrefixKVCache, min_tokens: int = MIN_SHARED_TOKENS
) -> list[tuple[int, ...]]:
    """The longest prefixes that two or more ``states`` share beyond what ``store`` holds
    (at least ``min_tokens`` of them uncached), each a proper prefix of the states sharing it."""
    ordered = sorted({tuple(s) for s in states})
    found: set[tuple[int, ...]] = set()
    for a, b in zip(ordered, ordered[1:], strict=False):
        n = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            n += 1
        n = min(n, len(a) - 1, len(b) - 1)  # a proper prefix: each state keeps its own last id
        if n > 0:
            found.add(a[:n])
    out = []
    for prefix in sorted(found, key=len):
        cached = store.match(prefix)[1]
        if len(prefix) - cached >= min_tokens:
            out.append(prefix)
    return out


def _prefill_shared_prefixes(
    model: Any,
    states: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
    store: PrefixKVCache,
) -> tuple[list[int], int]:
    """Compute shared uncached prefixes once, into the store. Returns the real tokens computed,
    counted on the first state that starts with each prefix, and the padded total."""
    extra = [0] * len(states)
    prefixes = shared_prefixes(states, store)
    if not prefixes:
        return extra, 0
    done = prefill(model, prefixes, pad_id, device, store)
    for prefix, computed in zip(prefixes, done.computed, strict=True):
        first = next(i for i, s in enumerate(states) if tuple(s[: len(prefix)]) == prefix)
        extra[first] += computed
    return extra, done.padded


def prefill(
    model: Any,
    states: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
    store: PrefixKVCache | None,
) -> Prefill:
    """Run the unique ``states`` up to their next-token logits (see the module docstring)."""
    if store is None:
        logits, cache, mask, next_pos = prefix_forward(model, states, pad_id, device)
        return Prefill(logits, cache, mask, next_pos, [len(s) for s in states], mask.numel())
    shared, shared_padded = _prefill_shared_prefixes(model, states, pad_id, device, store)
    logits: list[torch.Tensor | None] = [None] * len(states)
    rows: list[list[LayerKV]] = [[] for _ in states]  # whole KV of fully cached states
    matches = []
    for i, state in enumerate(states):
        chain, pos = store.match(state)
        stored = store.next_logits(chain) if pos == len(state) else None
        if stored is not None:  # KV and next-token logits both known: nothing to compute
            logits[i], rows[i] = stored.to(device), store.chain_kv(chain)
            matches.append((chain, pos))
        else:
            matches.append(store.match(state, limit=len(state) - 1))
    todo = [i for i in range(len(states)) if logits[i] is None]
    suffixes = [list(state[pos:]) for state, (_, pos) in zip(states, matches, strict=True)]
    parts = []
    padded = shared_padded
    for group in length_groups([len(suffixes[i]) for i in todo]):
        group = [todo[g] for g in group]
        cache, mask = assemble_cache([store.chain_kv(matches[i][0]) for i in group], device)
        next_pos = torch.tensor([matches[i][1] for i in group], device=device)
        out, cache, mask = _feed_left_padded(
            model, cache, mask, next_pos, [suffixes[i] for i in group], pad_id
        )
        padded += len(group) * max(len(suffixes[i]) for i in group)
        for row, i in enumerate(group):
            logits[i] = out[row]
            kv = row_kv(cache, mask, row, matches[i][1], len(suffixes[i]))
            store.insert(matches[i][0], suffixes[i], kv, out[row].detach().clone())
        parts.append((group, cache, mask))
    if len(parts) == 1 and len(todo) == len(states):  # its cache is the batch cache, reordered
        group, cache, mask = parts[0]
        order = torch.tensor([group.index(i) for i in range(len(states))], device=device)
        cache.reorder_cache(order)
        mask = mask[order]
    else:  # each state's whole KV, joined into one left-padded cache
        for group, cache, mask in parts:
            for row, i in enumerate(group):
                rows[i] = row_kv(cache, mask, row, 0, len(states[i]))
        cache, mask = assemble_cache(rows, device)
    next_pos = torch.tensor([len(s) for s in states], device=device)
    computed = [0 if i not in todo else len(suffixes[i]) for i in range(len(states))]
    return Prefill(
        torch.stack(logits),  # type: ignore[arg-type]
        cache,
        mask,
        next_pos,
        [c + extra for c, extra in zip(computed, shared, strict=True)],
        padded,
    )


def harvest(
    store: PrefixKVCache,
    cache: Any,
    mask: torch.Tensor,
    batch_row: int,
    state: Sequence[int],
    step_ids: Sequence[int],
    fed: Sequence[int],
    next_logits: torch.Tensor | None = None,
) -> None:
    """Store the KV of a sampled step (the ids fed for it that agree with its final ids) under
    its state, so that expanding the step later finds the whole state cached; with the logits
    after the last fed id when the whole step was fed (no forward needed then)."""
    keep = 0
    for a, b in zip(fed, step_ids, strict=False):
        if a != b:
            break
        keep += 1
    if keep == 0:
        return
    chain, pos = store.match(state)
    if pos != len(state):  # the state itself is not (or no longer) stored
        return
    whole = keep == len(fed) == len(step_ids)
    store.insert(
        chain,
        step_ids[:keep],
        row_kv(cache, mask, batch_row, len(state), keep),
        next_logits.detach().clone() if whole and next_logits is not None else None,
    )
