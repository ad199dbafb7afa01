"""The step sampling loop of the transformers backend (own loop on the KV cache, no ``generate``).

Why not ``generate``: it draws every row from one global generator, so a row's sample would
depend on what else shares the batch. Here every row owns a CPU ``torch.Generator`` seeded with
``derive_seed(request.seed, j)`` and draws exactly one uniform per sampled token, turned into a
token by inverse-CDF sampling; the draws depend only on the row's seed, and the same seeds give
the same draws on CPU and CUDA (method.md section 3). Temperature 0 is argmax (greedy).

One call:
1. prefix pass: the *unique* states of the batch run once (left padded); the KV cache and the
   next-token logits are then expanded to one row per sample (``Cache.reorder_cache`` with a
   repeated index), so the n samples of a request share their prefix computation;
2. token loop: sample, record the raw (temperature 1, fp32) log-prob, check the row's stop
   (EOS, then the delimiter in the decoded text of the row's new tokens, then the token cap),
   feed the sampled tokens; finished rows are dropped from the batch (cache compaction);
3. value read (method.md section 2.1): a finished row's last sampled token has not been fed
   yet, so it is fed once more, on the cache, and the head reads the final hidden state there:
   one extra one-token forward, never a second pass over the prefix. An EOS step feeds the
   delimiter's canonical ids instead (EOS belongs to no step); these ride along in the same
   forward as the continuing rows' next token.
4. a step whose last token ran past the delimiter is cut at the delimiter and re-tokenized; its
   ids were never sampled, so its log-probs and value come from one fresh teacher-forced forward.
5. a stop string of the request (lm-eval's ``until``; also one that begins in the state's text)
   ends the step just before it, with reason "stop", checked before the delimiter: if it starts
   at the newest token, that token is dropped and the value is read as for EOS; otherwise the
   step is re-tokenized and scored as in 4.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from svpo_harness.core.policy import StepRequest, StepSample
from svpo_harness.core.seeding import derive_seed
from svpo_harness.engines.backends.hf_forward import (
    DEFAULT_MAX_FORWARD_TOKENS,
    feed_chunks,
    final_hidden,
    head_values,
    score_steps,
)
from svpo_harness.engines.backends.hf_prefill import harvest, prefill
from svpo_harness.engines.backends.hf_prefix_cache import PrefixKVCache
from svpo_harness.engines.value_head import ValueHead

# Prefix tokens decoded together with a step so its text is right for tokenizers whose decoder
# treats a sequence start specially (SentencePiece strips a leading space there).
DECODE_CONTEXT = 4


@dataclass
class _Row:
    """One sample being generated (request ``req``, sample ``j``)."""

    req: int
    j: int
    prefix: int  # index into the unique prefixes
    temperature: float
    max_tokens: int
    generator: torch.Generator | None  # None for greedy rows
    context: list[int]
    context_text: str
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str = ""
    reason: str | None = None
    retokenized: bool = False
    value_ids: tuple[int, ...] = ()
    value: float | None = None
    stop: tuple[str, ...] = ()  # strings that end the solution (StepRequest.stop)
    fed: list[int] = field(default_factory=list)  # ids fed through the model for this row
    prefill_tokens: int = 0  # its state's prefill tokens, on the first row of each state


@dataclass(frozen=True)
class LoopSpec:
    """What the loop needs to know about the tokenizer and step format."""

    delimiter: str
    delimiter_ids: tuple[int, ...]  # canonical ids (engines.tokenization.delimiter_ids)
    eos_ids: frozenset[int]
    pad_id: int
    decode: Callable[[Sequence[int]], str]
    # (stored context ids, text) -> ids of the text where it follows them (method.md 2.1)
    retokenize: Callable[[Sequence[int], str], list[int]]
    max_forward_tokens: int = DEFAULT_MAX_FORWARD_TOKENS  # padded tokens of one rescoring forward
    # Other strings that end a step like the delimiter (the tool format's ``</code>``).
    also_ends: tuple[str, ...] = ()


def _find_end(spec: LoopSpec, text: str) -> tuple[int, int]:
    """(start, length) of the first step end in ``text`` (delimiter or ``also_ends``); (-1, 0)."""
    cut, size = text.find(spec.delimiter), len(spec.delimiter)
    for end in spec.also_ends:
        at = text.find(end)
        if at >= 0 and (cut < 0 or at < cut):
            cut, size = at, len(end)
    return cut, size


def choose_tokens(logits: torch.Tensor, rows: Sequence[_Row]) -> tuple[list[int], list[float]]:
    """Pick one token per row; return the tokens and their raw (temperature 1) log-probs.

    ``logits`` is fp32 ``[rows, vocab]``. Sampled rows use inverse-CDF sampling with one uniform
    from the row's own generator; greedy rows use argmax and draw nothing.
    """
    logp = torch.log_softmax(logits, dim=-1)
    tokens = logits.argmax(dim=-1)
    sampled = [i for i, row in enumerate(rows) if row.generator is not None]
    if sampled:
        index = torch.tensor(sampled, device=logits.device)
        temps = torch.tensor([rows[i].temperature for i in sampled], device=logits.device)
        probs = torch.softmax(logits[index] / temps[:, None], dim=-1)
        cdf = probs.double().cumsum(dim=-1)  # fp64: 1e5-term sums without visible drift
        draws = [torch.rand((), generator=rows[i].generator, dtype=torch.float64) for i in sampled]
        target = torch.stack(draws).to(logits.device) * cdf[:, -1]
        # right=True: the first index whose cdf exceeds the target, never a zero-prob token
        picked = torch.searchsorted(cdf, target[:, None], right=True).clamp(
            max=logits.shape[-1] - 1
        )
        tokens[index] = picked[:, 0]
    chosen = logp.gather(1, tokens[:, None])[:, 0]
    return tokens.tolist(), chosen.tolist()


def _decode_step(spec: LoopSpec, row: _Row) -> str:
    if row.context:
        full = spec.decode(row.context + row.ids)
        if full.startswith(row.context_text):
            return full[len(row.context_text) :]
    return spec.decode(row.ids)


def _advance(spec: LoopSpec, row: _Row, token: int, logprob: float, with_values: bool) -> list[int]:
    """Apply one sampled token to ``row``; return the ids to feed next (empty: feed nothing)."""
    if token in spec.eos_ids:
        row.reason = "eos"  # EOS is part of no step
        row.value_ids = tuple(row.ids) + spec.delimiter_ids
        return list(spec.delimiter_ids) if with_values else []
    previous_text = row.text
    row.ids.append(token)
    row.logprobs.append(logprob)
    row.text = _decode_step(spec, row)
    cut, size = _find_end(spec, row.text)
    stop_at = _stop_position(row)
    if stop_at >= 0 and (cut < 0 or stop_at <= cut):  # the solution ends before any delimiter
        return _cut_at_stop(spec, row, stop_at, previous_text, with_values)
    if cut >= 0:
        row.reason = "delimiter"
        end = cut + size
        if end < len(row.text):  # the last token ran past the delimiter: cut and re-tokenize
            row.text = row.text[:end]
            row.ids = spec.retokenize(row.context, row.text)
            row.retokenized = True
            return []  # scored by a fresh forward afterwards
        return [token] if with_values else []
    if len(row.ids) >= row.max_tokens:
        row.reason = "length"
        return [token] if with_values else []
    return [token]


def _stop_position(row: _Row) -> int:
    """Where in the step's text the first stop string starts (0 if it began in the state's
    text, before the step), or -1. Only matches that end inside the step count: one that lay
    wholly in the state would have ended the state already."""
    if not row.stop:
        return -1
    joined = row.context_text + row.text
    found = -1
    for stop in row.stop:
        at = joined.find(stop, max(0, len(row.context_text) - len(stop) + 1))
        if at >= 0:
            at = max(0, at - len(row.context_text))
            found = at if found < 0 else min(found, at)
    return found


def _cut_at_stop(
    spec: LoopSpec, row: _Row, at: int, previous_text: str, with_values: bool
) -> list[int]:
    """End the step just before a stop string; its value is read as after EOS (the step plus
    the delimiter's canonical ids), because the solution ends here too."""
    row.reason = "stop"
    text = row.text[:at]
    if text == previous_text:  # the stop string starts at the newest token: drop that token
        row.ids.pop()
        row.logprobs.pop()
        row.text = text
        row.value_ids = tuple(row.ids) + spec.delimiter_ids
        return list(spec.delimiter_ids) if with_values else []  # the cache ends at row.ids
    # The cut falls inside an earlier token: re-tokenize, then one fresh forward scores it.
    row.text = text
    row.ids = spec.retokenize(row.context, text) if text else []
    row.retokenized = True
    row.value_ids = tuple(row.ids) + spec.delimiter_ids
    return []


def sample_batch(
    model: Any,
    head: ValueHead | None,
    requests: Sequence[StepRequest],
    spec: LoopSpec,
    device: torch.device,
    *,
    with_values: bool,
    store: PrefixKVCache | None = None,
    stats: dict[str, int] | None = None,
) -> list[list[StepSample]]:
    """Sample ``request.n`` steps for every request in one batched loop (see module docstring).

    ``store``: the prefix KV cache (prefill only what it does not hold; keep each sampled step's
    KV in it). ``stats``: counters to add this call's prefill tokens to.
    """
    with_values = with_values and head is not None
    prefixes: dict[tuple[int, ...], int] = {}
    rows: list[_Row] = []
    for r, req in enumerate(requests):
        p = prefixes.setdefault(tuple(req.state_ids), len(prefixes))
        context = list(req.state_ids[-DECODE_CONTEXT:])
        for j in range(req.n):
            gen = None
            if req.temperature > 0:
                gen = torch.Generator(device="cpu").manual_seed(derive_seed(req.seed, j))
            rows.append(
                _Row(
                    req=r,
                    j=j,
                    prefix=p,
                    temperature=req.temperature,
                    max_tokens=req.max_step_tokens,
                    generator=gen,
                    context=context,
                    context_text=spec.decode(context),
                    stop=req.stop,
                )
            )

    states = list(prefixes)
    pre = prefill(model, states, spec.pad_id, device, store)
    first_rows: dict[int, _Row] = {}
    for row in rows:
        first_rows.setdefault(row.prefix, row)
    for p, row in first_rows.items():
        row.prefill_tokens = pre.computed[p]
    if stats is not None:
        stats["prefill_tokens"] = stats.get("prefill_tokens", 0) + sum(pre.computed)
        stats["prefill_padded"] = stats.get("prefill_padded", 0) + pre.padded
    cache, mask, next_pos = pre.cache, pre.mask, pre.next_pos
    expand = torch.tensor([row.prefix for row in rows], device=device)
    cache.reorder_cache(expand)  # index_select on every layer: prefix computed once per state
    logits, mask, next_pos = pre.logits[expand], mask[expand], next_pos[expand]
    alive = list(range(len(rows)))  # batch position -> row index

    def keep_kv(leaving: Sequence[int], after: torch.Tensor | None = None) -> None:
        """Before rows leave the batch: store their steps' KV (with the next-token logits
        ``after[b]`` when the row's last fed id was just fed)."""
        if store is None:
            return
        for b in leaving:
            row = rows[alive[b]]
            if row.reason == "delimiter":  # a step that may become a state
                nxt = after[b, len(feeds[b]) - 1] if after is not None else None
                harvest(store, cache, mask, b, states[row.prefix], row.ids, row.fed, nxt)

    while alive:
        tokens, logprobs = choose_tokens(logits, [rows[r] for r in alive])
        feeds = [
            _advance(spec, rows[r], tok, lp, with_values)
            for r, tok, lp in zip(alive, tokens, logprobs, strict=True)
        ]
        keep = [b for b, feed in enumerate(feeds) if feed]
        keep_kv([b for b, feed in enumerate(feeds) if not feed])
        if not keep:
            break
        if len(keep) < len(alive):  # drop rows that need no more forwards
            sel = torch.tensor(keep, device=device)
            cache.batch_select_indices(sel)
            mask, next_pos = mask[sel], next_pos[sel]
            alive, feeds = [alive[b] for b in keep], [feeds[b] for b in keep]
        done = [b for b, r in enumerate(alive) if rows[r].reason is not None]
        out, mask, next_pos = feed_chunks(
            model, cache, mask, next_pos, feeds, spec.pad_id, want_hidden=bool(done)
        )
        for b, feed in enumerate(feeds):
            rows[alive[b]].fed.extend(feed)
        if done:  # value at the last fed token of each finished row
            hidden = final_hidden(out)
            last = torch.tensor([len(feeds[b]) - 1 for b in done], device=device)
            picked = hidden[torch.tensor(done, device=device), last]
            for b, value in zip(done, head_values(head, picked), strict=True):
                rows[alive[b]].value = value
        cont = [b for b, r in enumerate(alive) if rows[r].reason is None]
        keep_kv(done, out.logits.float())
        if not cont:
            break
        logits = out.logits[:, 0].float()  # continuing rows were fed exactly one token
        if len(cont) < len(alive):
            sel = torch.tensor(cont, device=device)
            cache.batch_select_indices(sel)
            logits, mask, next_pos = logits[sel], mask[sel], next_pos[sel]
            alive = [alive[b] for b in cont]

    _rescore_retokenized(model, head if with_values else None, requests, rows, spec, device)
    results: list[list[StepSample]] = [[] for _ in requests]
    for row in rows:
        results[row.req].append(_to_sample(row))
    return results


def _rescore_retokenized(
    model: Any,
    head: ValueHead | None,
    requests: Sequence[StepRequest],
    rows: Sequence[_Row],
    spec: LoopSpec,
    device: torch.device,
) -> None:
    todo = [row for row in rows if row.retokenized]
    if not todo:
        return
    # A step cut at a stop string is scored with the delimiter's ids appended (its value is
    # read there); its log-probs are those of its own ids only.
    scored = score_steps(
        model,
        head,
        [requests[row.req].state_ids for row in todo],
        [row.value_ids or row.ids for row in todo],
        spec.pad_id,
        device,
        max_tokens=spec.max_forward_tokens,
    )
    for row, (logprobs, value) in zip(todo, scored, strict=True):
        row.logprobs, row.value = logprobs[: len(row.ids)], value


def _to_sample(row: _Row) -> StepSample:
    total = float(sum(row.logprobs))
    return StepSample(
        token_ids=tuple(row.ids),
        text=row.text,
        logprob_sum=total,
        logprob_mean=total / len(row.logprobs) if row.logprobs else 0.0,
        finish_reason=row.reason or "length",
        value=row.value,
        retokenized=row.retokenized,
        value_ids=row.value_ids,
        prefill_tokens=row.prefill_tokens,
    )
