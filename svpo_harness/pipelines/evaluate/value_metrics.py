"""Numbers of `svpo value-eval`, as pure functions on plain floats (no torch, no numpy needed).

- ``auc``: the probability that a random positive scores above a random negative, ties counted
  half (the Mann-Whitney U statistic over both class sizes), computed from mid-ranks so ties
  anywhere (within or across classes) are handled exactly; O(n log n).
- ``pair_accuracy``: the fraction of pairs whose first score is strictly above the second (ties
  count as wrong, as the training loop's accuracies do), with the ties reported apart.
- ``calibration``: equal-width bins over [-1, 1] of the value, each with its count, mean value
  and mean target; empty bins are kept (count 0) so plots and JSON line up bin for bin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Rank-based ROC AUC of ``scores`` for ``labels`` (True = positive); ties count half.

    None when a class is empty (the AUC is undefined, not 0.5).
    """
    if len(scores) != len(labels):
        raise ValueError(f"auc: {len(scores)} scores but {len(labels)} labels")
    n_pos = sum(1 for y in labels if y)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    for s in scores:
        if not math.isfinite(s):
            raise ValueError(f"auc: scores must be finite, got {s}")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):  # a run of equal scores shares the mean of its 1-based ranks
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        mid = (start + end) / 2 + 1
        for k in range(start, end + 1):
            ranks[order[k]] = mid
        start = end + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    u = rank_sum - n_pos * (n_pos + 1) / 2  # positives above negatives, ties half
    return u / (n_pos * n_neg)


@dataclass(frozen=True)
class PairAccuracy:
    n: int
    accuracy: float | None  # first > second, strictly; None without pairs
    ties: float | None  # fraction of pairs with first == second
    mean_margin: float | None  # mean of first - second

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_accuracy(first: Sequence[float], second: Sequence[float]) -> PairAccuracy:
    if len(first) != len(second):
        raise ValueError(f"pair_accuracy: {len(first)} vs {len(second)} scores")
    n = len(first)
    if n == 0:
        return PairAccuracy(0, None, None, None)
    wins = sum(1 for a, b in zip(first, second, strict=True) if a > b)
    ties = sum(1 for a, b in zip(first, second, strict=True) if a == b)
    margin = sum(a - b for a, b in zip(first, second, strict=True)) / n
    return PairAccuracy(n, wins / n, ties / n, margin)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; None with fewer than 2 points or a constant side."""
    n = len(x)
    if n != len(y):
        raise ValueError(f"pearson: {n} vs {len(y)} values")
    if n < 2:
        return None
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def mean_squared_error(x: Sequence[float], y: Sequence[float]) -> float | None:
    if not x:
        return None
    return sum((a - b) ** 2 for a, b in zip(x, y, strict=True)) / len(x)


@dataclass(frozen=True)
class CalibrationBin:
    lo: float
    hi: float
    count: int
    mean_value: float | None
    mean_target: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration(
    values: Sequence[float], targets: Sequence[float], bins: int = 10
) -> list[CalibrationBin]:
    """Equal-width bins of ``values`` over [-1, 1] (the head's tanh range); mean target each."""
    if bins < 1:
        raise ValueError(f"calibration: bins must be >= 1, got {bins}")
    if len(values) != len(targets):
        raise ValueError(f"calibration: {len(values)} values but {len(targets)} targets")
    width = 2.0 / bins
    members: list[list[int]] = [[] for _ in range(bins)]
    for i, v in enumerate(values):
        # clamp: v == 1.0 belongs to the last bin, values outside [-1, 1] to the edge bins
        b = min(bins - 1, max(0, int(math.floor((v + 1.0) / width))))
        members[b].append(i)
    out = []
    for b, idx in enumerate(members):
        lo, hi = round(-1.0 + b * width, 6), round(-1.0 + (b + 1) * width, 6)
        if not idx:
            out.append(CalibrationBin(lo, hi, 0, None, None))
            continue
        mv = sum(values[i] for i in idx) / len(idx)
        mt = sum(targets[i] for i in idx) / len(idx)
        out.append(CalibrationBin(lo, hi, len(idx), mv, mt))
    return out


__all__ = [
    "CalibrationBin",
    "PairAccuracy",
    "auc",
    "calibration",
    "mean_squared_error",
    "pair_accuracy",
    "pearson",
]
