"""``svpo_arith_hard``: a split of the arithmetic world where methods can separate (issue 26).

On ``svpo_arith`` (core/arith.py) every trained method reaches the ceiling once it learns to
divide, so the report cannot tell them apart. The hard split is the same world (same stories,
vocabulary, teacher, step format and number ranges) restricted to the problems the shipped base
gets wrong most: chains of 4 operations (the longest the base was trained on; it saw 2-4) with at
least ``HARD_MIN_DIVISIONS`` division step, the step the careless teacher slips on (core/arith.py's
module doc). Greedy, the base slips on every division; a sample gets each one right with
probability ~0.35, so a solution with two or three divisions needs them all to go right.

Tried first, on the same base (BENCHMARKS.md section 17): 5 or 6 operations (pass@16 0.10-0.37:
the base does not carry on past the lengths it saw); 3-4 operations with at least two divisions
(greedy 0.078, pass@16 0.838: fails); 4 operations with at least two divisions (greedy 0.062,
pass@16 0.852: a margin of 0.002, which another CPU's sampling could undo). This definition has
margins on both sides.

It was defined by properties of the shipped base model only, measured before any method was
trained or compared on it (``HARD_BASE_MEASURED``; scripts/measure_arith_hard.py reproduces
them): base greedy accuracy at most 0.5, and base pass@16 at temperature 1.0 at least 0.85, so
the right solution is in the base's reach and a method has something to find.

Do not change the definition: a new definition is a new task name (the same rule as
``DEFAULT_DIFFICULTY``). Splits ``test`` (``svpo_arith_hard``), ``dev`` (model selection) and
``train`` (harder annotation questions), disjoint by question text from each other and from
every ``svpo_arith`` split, generated on the fly like those.
"""

from __future__ import annotations

import random
from functools import lru_cache

from svpo_harness.core.arith import (
    SPLIT_SIZES,
    ArithDifficulty,
    ArithProblem,
    Split,
    _make_problem,
    arith_split,
)
from svpo_harness.core.seeding import derive_seed

HARD_DIFFICULTY = ArithDifficulty(
    min_ops=4,
    max_ops=4,
    max_start=20,
    max_addend=9,
    max_factor=3,
    max_value=50,
    teacher_slip=0.65,
)
HARD_MIN_DIVISIONS = 1
HARD_VERSION = 1
HARD_SEED = 20261207  # the seed of the hard splits; do not change
HARD_SPLIT_SIZES: dict[str, int] = {"test": 500, "dev": 300, "train": 5000}
_HARD_ORDER: tuple[str, ...] = ("test", "dev", "train")

# The shipped base model (svpo_harness/assets/demo-model) on the full hard test split, measured
# once with scripts/measure_arith_hard.py before any method trained on the split.
HARD_BASE_MEASURED: dict[str, float] = {
    "problems": 500,
    "greedy": 0.076,  # lm-eval's `hf` model, strict accuracy (38 / 500)
    "pass@16": 0.956,  # 16 samples per problem at temperature 1.0, seed 0, unbiased estimator
    "pass@16 (1 division, 366 problems)": 0.995,
    "pass@16 (2 divisions, 122 problems)": 0.869,
    "pass@16 (3 divisions, 12 problems)": 0.667,
}


def is_hard(problem: ArithProblem) -> bool:
    return problem.n_divisions >= HARD_MIN_DIVISIONS


@lru_cache(maxsize=1)
def _arith_texts() -> frozenset[str]:
    """Every question text of the fixed ``svpo_arith`` splits: the hard splits avoid them all."""
    texts: set[str] = set()
    for split, size in SPLIT_SIZES.items():
        texts.update(p.question for p in arith_split(split, size))  # type: ignore[arg-type]
    return frozenset(texts)


@lru_cache(maxsize=8)
def _build_hard_split(split: str, n: int) -> tuple[ArithProblem, ...]:
    """The first ``n`` hard problems of ``split``: unique texts, none held by an earlier hard
    split or by any ``svpo_arith`` split."""
    taken = set(_arith_texts())
    for earlier in _HARD_ORDER[: _HARD_ORDER.index(split)]:
        taken.update(p.question for p in _build_hard_split(earlier, HARD_SPLIT_SIZES[earlier]))
    out: list[ArithProblem] = []
    index = 0
    while len(out) < n:
        rng = random.Random(derive_seed("arith-hard-split", HARD_SEED, split, index))
        index += 1
        problem = _make_problem(rng, f"arith-hard-{split}-{len(out):05d}", HARD_DIFFICULTY)
        if not is_hard(problem) or problem.question in taken:
            continue
        taken.add(problem.question)
        out.append(problem)
    return tuple(out)


def arith_hard_split(split: Split, n: int | None = None) -> list[ArithProblem]:
    """The fixed hard split (sizes in ``HARD_SPLIT_SIZES``); ``n`` takes its first ``n``.

    Like ``arith_split``: always a prefix; ``dev`` and ``test`` cannot grow, ``train`` can.
    """
    if split not in HARD_SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(_HARD_ORDER)}")
    size = HARD_SPLIT_SIZES[split]
    if n is None:
        n = size
    if n < 0 or (split != "train" and n > size):
        raise ValueError(f"split {split!r}: n must be in [0, {size}], got {n}")
    if split != "train" or n <= size:
        return list(_build_hard_split(split, size)[:n])
    return list(_build_hard_split(split, n))


__all__ = [
    "HARD_BASE_MEASURED",
    "HARD_DIFFICULTY",
    "HARD_MIN_DIVISIONS",
    "HARD_SPLIT_SIZES",
    "arith_hard_split",
    "is_hard",
]
