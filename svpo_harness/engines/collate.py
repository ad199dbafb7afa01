"""Step-level training batches on the token contract (method.md sections 2.1 and 5).

Records -> examples -> batch -> one forward -> per-row summed log-probs and values -> loss sums.

- A row is ``prefix ids + step ids``, both exactly as stored (nothing is re-encoded). A pair
  gives two rows (chosen, rejected) with identical prefix ids; a ``step_q`` record one row; a
  ``path`` record one row whose "step" is all its steps (SFT).
- The score mask selects exactly the step's ids (delimiter and appended delimiter ids included),
  minus ids whose ``*sampled_mask`` is 0 (not sampled by the policy, e.g. a tool's output); the
  prefix is never scored. The value is read at the row's last token, the step's last token.
- Too long: the prefix is cut from the LEFT (the oldest ids go) so the step stays whole; a record
  whose step does not fit with at least one prefix id before it (the id that predicts the step's
  first id) is dropped and counted. Both happen once, in ``prepare_examples``, before batching, so
  the loss denominators (``LossCounts``) are known for the whole accumulation window.
- Right padding, with explicit position ids ``0..len-1``: a row's real tokens attend only to
  earlier real tokens whatever follows them, so its numbers do not depend on the batch, and no
  query row is ever fully masked. Every mask comes from the rows' lengths, never from
  ``input_ids != pad_id``: the pad id may be a real id (EOS used as pad, a delimiter).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from svpo_harness.core.schemas import PairRecord, PathRecord, StepQRecord
from svpo_harness.engines.backends.hf_forward import _plain_lm_head, final_hidden
from svpo_harness.engines.losses import (
    LossCounts,
    LossSums,
    LossWeights,
    dpo_loss,
    sft_nll,
    value_mse_loss,
    value_rank_loss,
)
from svpo_harness.engines.value_head import ValueHead

RowKind = Literal["chosen", "rejected", "step_q", "path"]
ExampleKind = Literal["pair", "step_q", "path"]
TrainRecord = PairRecord | StepQRecord | PathRecord


@dataclass(frozen=True)
class Row:
    """One sequence of the batch: ``ids[:prefix_len]`` is the (cut) prefix, the rest the step."""

    ids: tuple[int, ...]
    prefix_len: int
    scored: tuple[int, ...]  # per step id: 1 = in the log-prob sum, 0 = not sampled by the policy
    kind: RowKind
    q: float | None  # the MCTS Q of the step (pairs, step_q); None for paths
    question_id: str
    truncated: int = 0  # prefix ids cut from the left

    @property
    def n_scored(self) -> int:
        return sum(self.scored)


@dataclass(frozen=True)
class Example:
    """A record made into rows: ``(chosen, rejected)`` for a pair, one row otherwise."""

    kind: ExampleKind
    rows: tuple[Row, ...]

    def counts(self) -> LossCounts:
        if self.kind == "pair":
            return LossCounts(pairs=1)
        if self.kind == "step_q":
            return LossCounts(values=1)
        return LossCounts(sft_tokens=self.rows[0].n_scored)


@dataclass
class PrepareStats:
    """What ``prepare_examples`` kept, cut and dropped, per example kind."""

    kept: Counter[str] = field(default_factory=Counter)
    truncated: Counter[str] = field(default_factory=Counter)  # kept, with the prefix cut
    dropped: Counter[str] = field(default_factory=Counter)  # the step alone does not fit


def _mask(mask: Sequence[int], ids: Sequence[int]) -> tuple[int, ...]:
    # an empty sampled mask means every id was sampled (schemas.py)
    return tuple(mask) if mask else (1,) * len(ids)


def _rows_for(
    prefix: Sequence[int],
    steps: Sequence[tuple[tuple[int, ...], tuple[int, ...], RowKind, float | None]],
    question_id: str,
    max_length: int,
) -> tuple[Row, ...] | None:
    """Rows sharing one prefix, cut from the left to fit the longest step; None if it cannot."""
    if not prefix:
        raise ValueError(f"question {question_id}: empty prefix (a step needs ids before it)")
    keep = max_length - max(len(ids) for ids, _, _, _ in steps)
    if keep < 1:
        return None
    kept = tuple(prefix[-keep:])
    cut = len(prefix) - len(kept)
    return tuple(
        Row(kept + tuple(ids), len(kept), mask, kind, q, question_id, cut)
        for ids, mask, kind, q in steps
    )


def to_example(record: TrainRecord, max_length: int) -> Example | None:
    """The record's rows, at most ``max_length`` ids each; None when the step cannot fit."""
    if isinstance(record, PairRecord):
        rows = _rows_for(
            record.prefix_ids,
            [
                (
                    record.chosen_ids,
                    _mask(record.chosen_sampled_mask, record.chosen_ids),
                    "chosen",
                    record.q_chosen,
                ),
                (
                    record.rejected_ids,
                    _mask(record.rejected_sampled_mask, record.rejected_ids),
                    "rejected",
                    record.q_rejected,
                ),
            ],
            record.question_id,
            max_length,
        )
        if rows is not None:  # the DPO margin compares two steps under one and the same state
            chosen, rejected = rows
            assert chosen.prefix_len == rejected.prefix_len
            assert chosen.ids[: chosen.prefix_len] == rejected.ids[: rejected.prefix_len]
        kind: ExampleKind = "pair"
    elif isinstance(record, StepQRecord):
        mask = _mask(record.step_sampled_mask, record.step_ids)
        step = (record.step_ids, mask, "step_q", record.q)
        rows = _rows_for(record.prefix_ids, [step], record.question_id, max_length)
        kind = "step_q"
    elif isinstance(record, PathRecord):
        masks = record.step_sampled_masks or ((),) * len(record.step_ids)
        ids = tuple(i for step in record.step_ids for i in step)
        mask = tuple(m for s, sm in zip(record.step_ids, masks, strict=True) for m in _mask(sm, s))
        rows = _rows_for(
            record.prompt_ids, [(ids, mask, "path", None)], record.question_id, max_length
        )
        kind = "path"
    else:
        raise TypeError(f"cannot train on a {type(record).__name__}")
    return Example(kind, rows) if rows is not None else None


def prepare_examples(
    records: Sequence[TrainRecord], max_length: int
) -> tuple[list[Example], PrepareStats]:
    """Every record as an example (``to_example``), with what was cut and dropped counted."""
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 (one prefix id + one step id), got {max_length}")
    examples: list[Example] = []
    stats = PrepareStats()
    for record in records:
        example = to_example(record, max_length)
        kind = record.KIND
        if example is None:
            stats.dropped[kind] += 1
            continue
        examples.append(example)
        stats.kept[kind] += 1
        if example.rows[0].truncated:
            stats.truncated[kind] += 1
    return examples, stats


def window_counts(examples: Sequence[Example]) -> LossCounts:
    """Loss denominators for an accumulation window (all its micro-batches' examples)."""
    total = LossCounts()
    for example in examples:
        total = total + example.counts()
    return total


@dataclass(frozen=True)
class StepBatch:
    """Tensors ``[rows, width]`` (right padded) and per-row metadata.

    ``chosen`` / ``rejected`` index the rows of each pair (same order), ``value_rows`` the
    ``step_q`` rows (targets ``q[value_rows]``), ``sft_rows`` the ``path`` rows.
    """

    input_ids: torch.Tensor  # long
    attention_mask: torch.Tensor  # long, 1 on the first ``lengths[r]`` columns
    position_ids: torch.Tensor  # long, 0.. per row
    score_mask: torch.Tensor  # bool, True on the step ids that enter the log-prob sum
    lengths: torch.Tensor  # long [rows]
    value_index: torch.Tensor  # long [rows]: the step's last token, lengths - 1
    q: torch.Tensor  # float32 [rows], NaN where the row has no Q
    chosen: torch.Tensor  # long [pairs]
    rejected: torch.Tensor  # long [pairs]
    value_rows: torch.Tensor  # long
    sft_rows: torch.Tensor  # long
    kinds: tuple[RowKind, ...]
    question_ids: tuple[str, ...]
    counts: LossCounts  # this batch's share of the window's denominators


def collate(
    examples: Sequence[Example], pad_id: int, device: torch.device | str = "cpu"
) -> StepBatch:
    """Right-padded tensors for ``examples`` (from ``prepare_examples``)."""
    if not examples:
        raise ValueError("cannot collate an empty batch")
    rows = [row for example in examples for row in example.rows]
    lengths = [len(row.ids) for row in rows]
    width = max(lengths)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    score = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, row in enumerate(rows):
        ids[r, : lengths[r]] = torch.tensor(row.ids, dtype=torch.long)
        attention[r, : lengths[r]] = 1
        score[r, row.prefix_len : lengths[r]] = torch.tensor(row.scored, dtype=torch.bool)
    index = {kind: [r for r, row in enumerate(rows) if row.kind == kind] for kind in _ROW_KINDS}

    def _long(values: Sequence[int]) -> torch.Tensor:
        return torch.tensor(list(values), dtype=torch.long, device=device)

    q = [float("nan") if row.q is None else row.q for row in rows]
    return StepBatch(
        input_ids=ids.to(device),
        attention_mask=attention.to(device),
        position_ids=torch.arange(width, device=device).repeat(len(rows), 1),
        score_mask=score.to(device),
        lengths=_long(lengths),
        value_index=_long([n - 1 for n in lengths]),
        q=torch.tensor(q, dtype=torch.float32, device=device),
        chosen=_long(index["chosen"]),
        rejected=_long(index["rejected"]),
        value_rows=_long(index["step_q"]),
        sft_rows=_long(index["path"]),
        kinds=tuple(row.kind for row in rows),
        question_ids=tuple(row.question_id for row in rows),
        counts=window_counts(examples),
    )


_ROW_KINDS: tuple[RowKind, ...] = ("chosen", "rejected", "step_q", "path")


# -- forward ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowScores:
    """Per row: summed fp32 log-probs of the scored ids, and the value at the step's last token."""

    logps: torch.Tensor  # float32 [rows]
    values: torch.Tensor | None  # float32 [rows]; None without a head


def score_rows(model: Any, batch: StepBatch, head: ValueHead | None = None) -> RowScores:
    """One forward of the batch: ``RowScores`` (differentiable unless run under no_grad).

    Modes are the caller's: the policy and reference forwards run with dropout off
    (``model.eval()`` still back-propagates); the head's dropout is on only in training. When the
    logits are plainly ``lm_head(final hidden)`` the LM head runs only at the positions that
    predict a scored id (``[scored, vocab]``, not ``[rows, width, vocab]``).
    """
    inputs = {
        "input_ids": batch.input_ids,
        "attention_mask": batch.attention_mask,
        "position_ids": batch.position_ids,
        "use_cache": False,
    }
    # id t is predicted at position t - 1; the prefix keeps column 0 out of every score mask
    rows, cols = batch.score_mask[:, 1:].nonzero(as_tuple=True)
    plain = _plain_lm_head(model)
    if plain is not None:
        decoder, lm_head = plain
        hidden = decoder(**inputs).last_hidden_state
        logits = lm_head(hidden[rows, cols]).float()
    else:
        out = model(**inputs, output_hidden_states=True)
        hidden = final_hidden(out)
        logits = out.logits[rows, cols].float()
    targets = batch.input_ids[rows, cols + 1]
    token_logps = torch.log_softmax(logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1)
    n = batch.input_ids.shape[0]
    logps = torch.zeros(n, dtype=torch.float32, device=token_logps.device)
    logps = logps.index_add(0, rows.to(logps.device), token_logps)
    values = None
    if head is not None:
        last = hidden[torch.arange(n, device=hidden.device), batch.value_index.to(hidden.device)]
        values = head(last)
    return RowScores(logps, values)


def batch_loss_sums(
    batch: StepBatch,
    policy: RowScores,
    ref_logps: torch.Tensor | None,
    weights: LossWeights,
) -> LossSums:
    """Sums of each loss term over this batch's rows; divide with ``combine_losses``.

    ``ref_logps``: the reference's ``score_rows(...).logps`` for the same rows (entries of rows
    that are not in a pair are ignored), computed under no_grad or read from a cache.
    MSE targets are the ``step_q`` rows only: pair steps are visited steps, already there.
    """
    sums = LossSums.zeros(policy.logps.device)
    values = policy.values
    if batch.chosen.numel():
        win, lose = batch.chosen, batch.rejected
        if weights.lambda_dpo > 0:
            if ref_logps is None:
                raise ValueError("DPO needs the reference log-probs of the pair rows")
            ref = ref_logps.to(policy.logps.device)
            out = dpo_loss(policy.logps[win], policy.logps[lose], ref[win], ref[lose], weights.beta)
            sums.dpo, sums.pref_correct = out.loss.sum(), float(out.correct().sum())
        if values is not None:
            rank = value_rank_loss(
                values[win], values[lose], kind=weights.rank_loss, margin=weights.margin
            )
            sums.rank = rank.sum()
            sums.rank_correct = float((values[win] > values[lose]).sum())
        elif weights.lambda_rank > 0:
            raise ValueError("the value ranking loss needs a value head (score_rows(head=...))")
    if batch.value_rows.numel():
        if values is not None:
            v = batch.value_rows
            sums.mse = value_mse_loss(values[v], batch.q.to(values.device)[v]).sum()
        elif weights.lambda_mse > 0:
            raise ValueError("the value regression needs a value head (score_rows(head=...))")
    if batch.sft_rows.numel():
        sums.sft = sft_nll(policy.logps[batch.sft_rows]).sum()
    return sums
