"""Shared-prefix packing: a pair's prefix is forwarded once and both of its steps attend to it.

Per example the layout is ``[prefix][step of row 1][step of row 2]...`` (a pair: prefix,
chosen, rejected; a ``step_q`` or ``path`` example: prefix, its one step), so a pair costs
prefix + two steps instead of two prefixes + two steps. Several examples share a physical row
where ``pack_length`` allows.

- Position ids: the prefix ``0..P-1``; every step continues from ``P`` as if it followed the
  prefix alone, so each logical row sees exactly the positions it has unpacked.
- Attention (a 4D additive mask ``[rows, 1, L, L]``, 0 = attend, finfo.min = blocked): a prefix
  token attends causally within its prefix; a step token to its example's whole prefix and
  causally to its own step only; nothing crosses examples. Padding columns at a row's end attend
  only to themselves, so no query row is fully masked (no NaN in the softmax).
- Placement: greedy first-fit in the given order (each example goes into the first row with
  room, else opens a row). An example longer than ``pack_length`` on its own (a pair's packed
  length can reach about twice ``max_length``) gets a row of its own, wider than the limit:
  still fewer tokens than its two unpacked rows.
- The logical rows (``kinds``, ``chosen``, ``q``, ...) are exactly ``collate``'s, in the same
  order; only the physical layout and the index tensors differ, and ``score_rows`` reads both
  (same log-probs and values within float rounding).

Only ``sdpa`` and ``eager`` attention take such a mask as it is; ``score_rows`` refuses a packed
batch on other implementations (``require_block_mask_support``, also usable up front).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from svpo_harness.engines.collate import Example, Placement, StepBatch, step_batch
from svpo_harness.engines.step_scores import require_block_mask_support

__all__ = ["pack", "pack_rows", "packed_length", "require_block_mask_support"]


def packed_length(example: Example) -> int:
    """Tokens the example takes packed: its prefix once plus every row's step."""
    prefix = example.rows[0].prefix_len
    return prefix + sum(len(row.ids) - row.prefix_len for row in example.rows)


def pack_rows(examples: Sequence[Example], pack_length: int) -> list[list[int]]:
    """Example indices per physical row: first-fit in the given order."""
    rows: list[list[int]] = []
    used: list[int] = []
    for i, example in enumerate(examples):
        n = packed_length(example)
        for r, u in enumerate(used):
            if u + n <= pack_length:
                rows[r].append(i)
                used[r] += n
                break
        else:  # also where n > pack_length: alone, since every later fit check fails
            rows.append([i])
            used.append(n)
    return rows


def block_mask(segment: torch.Tensor, part: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive ``[rows, 1, L, L]`` mask from per-column labels ``[rows, L]``.

    ``segment``: which example a column belongs to (padding: a label of its own per column);
    ``part``: 0 for the prefix (and padding), k for the example's k-th step.
    """
    width = segment.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool, device=segment.device).tril()
    same = segment[:, :, None] == segment[:, None, :]
    # a key in the prefix, or in the query's own part (prefix keys precede every step)
    visible = (part[:, None, :] == 0) | (part[:, :, None] == part[:, None, :])
    allowed = same & visible & causal
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segment.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def pack(
    examples: Sequence[Example],
    pad_id: int,
    device: torch.device | str = "cpu",
    pack_length: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> StepBatch:
    """Packed tensors for ``examples`` (from ``prepare_examples``), at most ``pack_length``
    tokens per row (default: the longest example's packed length). ``dtype``: the mask's; a
    model of another dtype gets it converted in ``score_rows``."""
    if not examples:
        raise ValueError("cannot pack an empty batch")
    limit = pack_length if pack_length is not None else max(map(packed_length, examples))
    if limit < 2:
        raise ValueError(f"pack_length must be >= 2, got {limit}")
    layout = pack_rows(examples, limit)
    width = max(sum(packed_length(examples[i]) for i in row) for row in layout)
    ids = torch.full((len(layout), width), pad_id, dtype=torch.long)
    positions = torch.zeros((len(layout), width), dtype=torch.long)
    part = torch.zeros((len(layout), width), dtype=torch.long)
    # padding: a distinct negative label per column, so a pad attends only to itself
    segment = -1 - torch.arange(width).repeat(len(layout), 1)
    where: dict[int, list[Placement]] = {}
    for r, members in enumerate(layout):
        col = 0
        for i in members:
            rows = examples[i].rows
            n_prefix = rows[0].prefix_len
            prefix = rows[0].ids[:n_prefix]
            # a shared prefix must be the same ids for every row (to_example makes it so)
            assert all(row.ids[: row.prefix_len] == prefix for row in rows)
            ids[r, col : col + n_prefix] = torch.tensor(prefix, dtype=torch.long)
            positions[r, col : col + n_prefix] = torch.arange(n_prefix)
            segment[r, col : col + n_prefix + packed_length(examples[i]) - n_prefix] = i
            prefix_end = col + n_prefix - 1
            col += n_prefix
            where[i] = []
            for k, row in enumerate(rows, start=1):
                step = row.ids[n_prefix:]
                ids[r, col : col + len(step)] = torch.tensor(step, dtype=torch.long)
                positions[r, col : col + len(step)] = n_prefix + torch.arange(len(step))
                part[r, col : col + len(step)] = k
                where[i].append(Placement(r, prefix_end, col))
                col += len(step)
    placements = [at for i in range(len(examples)) for at in where[i]]
    mask = block_mask(segment.to(device), part.to(device), dtype)
    return step_batch(examples, placements, ids, mask, positions, device)
