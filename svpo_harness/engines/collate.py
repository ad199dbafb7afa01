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
- ``packing.pack`` lays the same examples out with shared prefixes (a pair's prefix once); both
  give a ``StepBatch`` with the same logical rows, scored by ``step_scores.score_rows``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from svpo_harness.core.schemas import PairRecord, PathRecord, StepQRecord
from svpo_harness.engines.losses import LossCounts
from svpo_harness.engines.step_batch import RowKind, StepBatch

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
    """What an accumulation window holds (all its micro-batches' examples), per loss term."""
    total = LossCounts()
    for example in examples:
        total = total + example.counts()
    return total


@dataclass(frozen=True)
class KindRates:
    """Pairs, value targets and paths per example over the whole data (method.md section 5)."""

    pairs: float
    values: float
    paths: float

    @classmethod
    def of(cls, examples: Sequence[Example]) -> KindRates:
        kinds = Counter(e.kind for e in examples)
        n = max(1, len(examples))
        return cls(kinds["pair"] / n, kinds["step_q"] / n, kinds["path"] / n)


def window_denominators(examples: Sequence[Example], rates: KindRates) -> LossCounts:
    """Loss denominators of a window drawn from data with ``rates``: each term's *expected*
    count in a window of this size, not the count this window happens to hold.

    With records of one kind the two agree. With mixed records (svpo: ~7% pairs among step_q)
    a window's pair count swings between 0 and several, and dividing by it would weigh a lone
    pair as a full batch of pairs: averaged over an epoch, each term would get lambda times the
    share of windows that hold one of its examples. Dividing by the expected count makes each
    term, summed over an epoch, the mean over all of its own examples (method.md section 5),
    so the lambdas are the weights the terms really get. SFT tokens: the window's own token
    mean over its paths, scaled by its path count over the expected one.
    """
    held = window_counts(examples)
    paths = sum(1 for e in examples if e.kind == "path")
    expected_paths = rates.paths * len(examples)
    sft = held.sft_tokens * expected_paths / paths if paths else 0
    return LossCounts(
        pairs=rates.pairs * len(examples), values=rates.values * len(examples), sft_tokens=sft
    )


@dataclass(frozen=True)
class Placement:
    """Where a logical row sits in the physical tensors."""

    row: int  # physical row
    prefix_end: int  # column of the prefix's last id (predicts the step's first id)
    step_start: int  # column of the step's first id


def step_batch(
    examples: Sequence[Example],
    placements: Sequence[Placement],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    device: torch.device | str,
) -> StepBatch:
    """The batch for physical tensors already laid out, one ``Placement`` per logical row."""
    rows = [row for example in examples for row in example.rows]
    assert len(rows) == len(placements)
    score = torch.zeros(input_ids.shape, dtype=torch.bool)
    s_row: list[int] = []
    s_col: list[int] = []
    s_target: list[int] = []
    s_owner: list[int] = []
    last_row: list[int] = []
    last_col: list[int] = []
    for r, (row, at) in enumerate(zip(rows, placements, strict=True)):
        step = row.ids[row.prefix_len :]
        for j, (token, scored) in enumerate(zip(step, row.scored, strict=True)):
            if scored:
                s_row.append(at.row)
                s_col.append(at.prefix_end if j == 0 else at.step_start + j - 1)
                s_target.append(token)
                s_owner.append(r)
        cols = at.step_start + torch.tensor(row.scored, dtype=torch.bool).nonzero().flatten()
        score[at.row, cols] = True
        last_row.append(at.row)
        last_col.append(at.step_start + len(step) - 1 if step else at.prefix_end)
    index = {kind: [r for r, row in enumerate(rows) if row.kind == kind] for kind in _ROW_KINDS}

    def _long(values: Sequence[int]) -> torch.Tensor:
        return torch.tensor(list(values), dtype=torch.long, device=device)

    q = [float("nan") if row.q is None else row.q for row in rows]
    return StepBatch(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        position_ids=position_ids.to(device),
        score_mask=score.to(device),
        score_row=_long(s_row),
        score_col=_long(s_col),
        score_target=_long(s_target),
        score_owner=_long(s_owner),
        last_row=_long(last_row),
        last_col=_long(last_col),
        lengths=_long([len(row.ids) for row in rows]),
        q=torch.tensor(q, dtype=torch.float32, device=device),
        chosen=_long(index["chosen"]),
        rejected=_long(index["rejected"]),
        value_rows=_long(index["step_q"]),
        sft_rows=_long(index["path"]),
        kinds=tuple(row.kind for row in rows),
        question_ids=tuple(row.question_id for row in rows),
        counts=window_counts(examples),
    )


def collate(
    examples: Sequence[Example], pad_id: int, device: torch.device | str = "cpu"
) -> StepBatch:
    """Right-padded tensors for ``examples`` (from ``prepare_examples``), one row per row."""
    if not examples:
        raise ValueError("cannot collate an empty batch")
    rows = [row for example in examples for row in example.rows]
    lengths = [len(row.ids) for row in rows]
    width = max(lengths)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : lengths[r]] = torch.tensor(row.ids, dtype=torch.long)
        attention[r, : lengths[r]] = 1
    placements = [Placement(r, row.prefix_len - 1, row.prefix_len) for r, row in enumerate(rows)]
    positions = torch.arange(width).repeat(len(rows), 1)
    return step_batch(examples, placements, ids, attention, positions, device)


_ROW_KINDS: tuple[RowKind, ...] = ("chosen", "rejected", "step_q", "path")

# The forward and the loss sums live in step_scores; re-exported here (their long-standing home).
from svpo_harness.engines.step_scores import (  # noqa: E402
    RowScores,
    batch_loss_sums,
    score_rows,
)

__all__ = [
    "Example",
    "KindRates",
    "Placement",
    "PrepareStats",
    "Row",
    "RowScores",
    "StepBatch",
    "batch_loss_sums",
    "collate",
    "prepare_examples",
    "score_rows",
    "step_batch",
    "to_example",
    "window_counts",
    "window_denominators",
]
