"""Batched forwards for the transformers backend: left padding, prefix passes, teacher forcing.

Left padding with an explicit attention mask *and* explicit position ids: a padded row's first
real token gets position 0, as if it were alone, so a row's numbers do not depend on what else
shares the batch (method.md section 3, determinism). The attention mask may also have holes
(padding in the middle, from multi-token chunks fed on the KV cache); masked entries carry no
weight wherever they are.

The value of a state is the value head on the final-layer hidden state (after the final norm:
``output_hidden_states[-1]``) at the last token fed (method.md section 2.1).

The KV cache goes in and comes out under the name the model's forward declares: ``cache``
(newer transformers, where ``past_key_values`` is a deprecated alias due to be removed) or
``past_key_values`` (older ones); see ``cache_argument``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import torch

from svpo_harness.engines.value_head import ValueHead

_CACHE_ARGUMENT: dict[type, str] = {}


def cache_argument(model: Any) -> str:
    """``"cache"`` if the model's forward takes transformers' new ``cache`` argument, else
    ``"past_key_values"``; its output carries the cache under the same name.

    Read once per model class from the forward's signature (a PEFT wrapper is looked through
    to its base model), never from a version string: while both names exist, each model class
    says which one it declares.
    """
    get_base = getattr(model, "get_base_model", None)
    base = get_base() if callable(get_base) else model
    cls = type(base)
    if cls not in _CACHE_ARGUMENT:
        try:
            params = inspect.signature(cls.forward).parameters
        except (TypeError, ValueError):  # no inspectable forward: the long-standing name
            params = {}
        _CACHE_ARGUMENT[cls] = "cache" if "cache" in params else "past_key_values"
    return _CACHE_ARGUMENT[cls]


def left_pad(
    seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, attention_mask, position_ids)``, each ``[batch, longest]``, left padded."""
    if any(len(s) == 0 for s in seqs):
        raise ValueError("cannot run a forward on an empty sequence (a state needs prompt ids)")
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        ids[i, width - len(seq) :] = torch.tensor(list(seq), dtype=torch.long)
        mask[i, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # first real token -> position 0
    return ids.to(device), mask.to(device), positions.to(device)


def final_hidden(out: Any) -> torch.Tensor:
    """Final-layer hidden states ``[batch, seq, hidden]`` (after the final norm)."""
    hidden = getattr(out, "hidden_states", None)
    if not hidden:
        raise RuntimeError("the model returned no hidden states (needs output_hidden_states=True)")
    return hidden[-1]


def prefix_forward(
    model: Any, seqs: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, Any, torch.Tensor, torch.Tensor]:
    """Run whole prefixes once, keeping the KV cache.

    Returns ``(next_logits fp32 [batch, vocab], cache, attention_mask [batch, len],
    next_positions [batch])``: the logits for the first new token, and the mask and next
    position id to continue the rows on the cache.
    """
    ids, mask, positions = left_pad(seqs, pad_id, device)
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,  # only the last position's logits: saves [len x vocab] per row
    )
    lengths = mask.sum(-1)
    return out.logits[:, -1].float(), getattr(out, cache_argument(model)), mask, lengths


def feed_chunks(
    model: Any,
    cache: Any,
    mask: torch.Tensor,
    next_pos: torch.Tensor,
    chunks: Sequence[Sequence[int]],
    pad_id: int,
    *,
    want_hidden: bool,
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Feed each row its own chunk of ids (usually one) on the KV cache.

    Chunks are right padded to the longest; pads are masked, so they become holes in the mask
    that later tokens ignore, and each row's position ids continue from ``next_pos``.
    Returns ``(model output, new mask, new next positions)``.
    """
    device = mask.device
    width = max(len(c) for c in chunks)
    ids = torch.full((len(chunks), width), pad_id, dtype=torch.long)
    chunk_mask = torch.zeros((len(chunks), width), dtype=torch.long)
    for i, chunk in enumerate(chunks):
        ids[i, : len(chunk)] = torch.tensor(list(chunk), dtype=torch.long)
        chunk_mask[i, : len(chunk)] = 1
    chunk_mask = chunk_mask.to(device)
    positions = next_pos[:, None] + torch.arange(width, device=device)[None, :]
    mask = torch.cat([mask, chunk_mask], dim=1)
    out = model(
        input_ids=ids.to(device),
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **{cache_argument(model): cache},
        output_hidden_states=want_hidden,
    )
    return out, mask, next_pos + chunk_mask.sum(-1)


def head_values(head: ValueHead, hidden: torch.Tensor) -> list[float]:
    """Value head over ``[rows, hidden]`` -> python floats (fp32 inside the head)."""
    return [float(v) for v in head(hidden).detach().cpu()]


# Padded tokens per rescoring forward (rows x longest row): bounds the activations of one
# forward whatever the row count. 16k tokens x 4096 hidden x 2 bytes is 128 MB per hidden-state
# tensor on a 7B model in bf16.
DEFAULT_MAX_FORWARD_TOKENS = 16384


def token_chunks(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Row indices grouped into forwards of at most ``max_tokens`` padded tokens, longest rows
    first (similar lengths together: less padding). A row longer than the budget goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    chunks: list[list[int]] = []
    for i in order:
        # rows are sorted longest first, so a chunk's width is its first row's length
        if chunks and (len(chunks[-1]) + 1) * lengths[chunks[-1][0]] <= max_tokens:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


def plain_lm_head(model: Any) -> tuple[Any, Any] | None:
    """``(decoder, lm_head)`` when the model's logits are just ``lm_head(final hidden)``, else
    None (logit soft-capping or scaling, or no decoder accessor: use the model's own forward)."""
    get_base = getattr(model, "get_base_model", None)
    base = get_base() if callable(get_base) else model
    config = getattr(base, "config", None)
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return None
    get_decoder = getattr(base, "get_decoder", None)
    decoder = get_decoder() if callable(get_decoder) else None
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    if decoder is None or head is None or decoder is base:
        return None
    return decoder, head


def last_layer_forward(
    model: Any,
    seqs: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
    keep: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward without a cache that keeps only what the rescoring needs: fp32 logits of the
    last ``keep`` positions ``[batch, keep, vocab]`` and the final-layer hidden state (after the
    final norm) at the last position ``[batch, hidden]``.

    ``output_hidden_states=True`` would keep every layer's states for every token (on a 7B
    model 33 x 4096 x 2 bytes per token); the decoder's own output is the final layer only.
    """
    ids, mask, positions = left_pad(seqs, pad_id, device)
    plain = plain_lm_head(model)
    if plain is not None:
        decoder, head = plain
        hidden = decoder(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
        ).last_hidden_state
        return head(hidden[:, -keep:]).float(), hidden[:, -1]
    out = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=False,
        logits_to_keep=keep,
        output_hidden_states=True,
    )
    return out.logits.float(), final_hidden(out)[:, -1]


def score_steps(
    model: Any,
    head: ValueHead | None,
    prefixes: Sequence[Sequence[int]],
    steps: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
    max_tokens: int = DEFAULT_MAX_FORWARD_TOKENS,
) -> list[tuple[list[float], float | None]]:
    """Teacher-forced fresh forwards of ``prefix + step``: per-token raw log-probs of the step
    (fp32, temperature 1) and, with a head, the value at the step's last token.

    Used for re-tokenized steps, whose ids were never sampled so the sampling loop's cache
    does not hold them. Rows go in forwards of at most ``max_tokens`` padded tokens; left
    padding aligns every row's end, so only the last ``max(len(step)) + 1`` positions need
    logits.
    """
    seqs = [list(p) + list(s) for p, s in zip(prefixes, steps, strict=True)]
    results: list[tuple[list[float], float | None]] = [([], None)] * len(seqs)
    for chunk in token_chunks([len(s) for s in seqs], max_tokens):
        keep = max(len(steps[i]) for i in chunk) + 1
        logits, last = last_layer_forward(model, [seqs[i] for i in chunk], pad_id, device, keep)
        logp = torch.log_softmax(logits, dim=-1)  # [rows, keep, vocab]
        values = head_values(head, last) if head is not None else None
        for row, i in enumerate(chunk):
            m = len(steps[i])
            # token k of the step sits at column keep-m+k and is predicted by column keep-m+k-1
            cols = torch.arange(keep - m - 1, keep - 1, device=logp.device)
            target = torch.tensor(list(steps[i]), dtype=torch.long, device=logp.device)
            lps = logp[row, cols, target].tolist() if m else []
            results[i] = (lps, values[row] if values is not None else None)
    return results


def state_values(
    model: Any,
    head: ValueHead,
    states: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device,
    max_tokens: int = DEFAULT_MAX_FORWARD_TOKENS,
) -> list[float]:
    """Value head at the last token of each whole state (forwards of at most ``max_tokens``
    padded tokens, final layer only)."""
    values: list[float] = [0.0] * len(states)
    for chunk in token_chunks([len(s) for s in states], max_tokens):
        _, last = last_layer_forward(model, [states[i] for i in chunk], pad_id, device, keep=1)
        for i, value in zip(chunk, head_values(head, last), strict=True):
            values[i] = value
    return values
