"""``StepBatch``: one forward's tensors plus where each logical row's numbers are read from it.

Built by ``collate.step_batch`` (for ``collate.collate`` and ``packing.pack``) and read by
``step_scores.score_rows``. A module of its own so that ``step_scores`` does not import
``collate``, which re-exports ``step_scores`` (that would be an import circle).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from svpo_harness.engines.losses import LossCounts

RowKind = Literal["chosen", "rejected", "step_q", "path"]


@dataclass(frozen=True)
class StepBatch:
    """One forward's tensors plus where each logical row's numbers are read from it.

    Physical rows (``[phys, width]``) are what the model sees: one padded row per logical row
    from ``collate``, several examples per row from ``packing.pack``. Logical rows are the
    examples' rows in order (a pair's chosen then rejected, ...), identical for both; every
    per-row field below is per logical row. ``chosen`` / ``rejected`` index the rows of each
    pair (same order), ``value_rows`` the ``step_q`` rows (targets ``q[value_rows]``),
    ``sft_rows`` the ``path`` rows.
    """

    input_ids: torch.Tensor  # long [phys, width]
    # long [phys, width] (1 = real token, right padded) from collate; float [phys, 1, width,
    # width] additive (0 = attend, finfo.min = blocked) from pack
    attention_mask: torch.Tensor
    position_ids: torch.Tensor  # long [phys, width]
    score_mask: torch.Tensor  # bool [phys, width], True on the step ids in a log-prob sum
    # per scored id, in logical-row order: the (physical row, column) whose output predicts
    # it, the id, and its logical row. A step's first id is predicted at its prefix's last
    # column (in a packed pair also for the second step, whose columns follow the first's).
    score_row: torch.Tensor  # long [scored]
    score_col: torch.Tensor  # long [scored]
    score_target: torch.Tensor  # long [scored]
    score_owner: torch.Tensor  # long [scored]
    last_row: torch.Tensor  # long [rows]: physical row of the step's last token (the value)
    last_col: torch.Tensor  # long [rows]: its column
    lengths: torch.Tensor  # long [rows]: prefix + step ids, as the row would be alone
    q: torch.Tensor  # float32 [rows], NaN where the row has no Q
    chosen: torch.Tensor  # long [pairs]
    rejected: torch.Tensor  # long [pairs]
    value_rows: torch.Tensor  # long
    sft_rows: torch.Tensor  # long
    kinds: tuple[RowKind, ...]
    question_ids: tuple[str, ...]
    counts: LossCounts  # this batch's share of the window's denominators

    @property
    def n_rows(self) -> int:
        """Logical rows (what ``RowScores`` has one entry per)."""
        return len(self.kinds)

    @property
    def packed(self) -> bool:
        return self.attention_mask.dim() == 4
