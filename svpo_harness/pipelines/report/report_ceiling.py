"""When `svpo report` says a task is at its ceiling (issue 26; method.md section 7.2: "a split
where every method is at the ceiling answers nothing").

- A measured row with ``k`` of ``n`` problems right is **at ceiling** when ``1 - k/n <= SE``,
  SE the Agresti-Coull standard error: ``p~ = (k + 2) / (n + 4)``,
  ``SE = sqrt(p~ (1 - p~) / (n + 4))``. At n = 200 that is 199 or 200 right.
- A task's decoding column (the matrix column: greedy and SBS are different columns) is
  **flagged** when its two best rows are both at ceiling: the pair a reader would compare cannot
  be separated, so their order is noise. The flag names every row of the column at ceiling.
- A McNemar line whose two rows are both at ceiling carries the same caveat.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, NamedTuple

# "Within one standard error of 1.0": how many standard errors.
CEILING_SES = 1
SES_TEXT = {1: "one standard error", 2: "two standard errors"}.get(
    CEILING_SES, f"{CEILING_SES} SEs"
)
# Agresti-Coull at z = 2 adds z^2/2 = 2 successes and 2 failures (n~ = n + 4). The plain binomial
# SE sqrt(p (1 - p) / n), lm-eval's ±, is 0 at 200/200 and tiny near it: with it only a perfect
# row could ever be "within one SE of 1.0", and a perfect row would have no uncertainty at all.
PSEUDO = 2
FLAG = "at ceiling: this task cannot separate these rows"
PAIR_MARK = " (both at ceiling)"
PAIR_NOTE = (
    f"p{PAIR_MARK}: both rows are within {SES_TEXT} of 1.0, so this test cannot separate them "
    "(how the numbers are made: at ceiling)."
)
DEFINITION = (
    "at ceiling: a measured row with k of n problems right is at ceiling when 1 - k/n is at most "
    f"{SES_TEXT}, the Agresti-Coull one: p~ = (k + {PSEUDO}) / (n + "
    f"{2 * PSEUDO}), SE = sqrt(p~ (1 - p~) / (n + {2 * PSEUDO})) (lm-eval's ± is 0 at 100%, so "
    "it cannot say how near 1.0 a row is). A task's decoding column is flagged when its two best "
    "rows are both at ceiling: that pair cannot be separated and their order is noise (at n = "
    f"200: 199 or 200 right). A McNemar p marked{PAIR_MARK} compares two rows at ceiling."
)


class Score(NamedTuple):
    """One row of one decoding column: its label and ``correct`` of ``n`` problems right."""

    label: str
    correct: int
    n: int


def adjusted_stderr(correct: int, n: int) -> float:
    """Agresti-Coull standard error: sqrt(p~ (1 - p~) / (n + 4)), p~ = (correct + 2) / (n + 4)."""
    total = n + 2 * PSEUDO
    p = (correct + PSEUDO) / total
    return (p * (1 - p) / total) ** 0.5


def at_ceiling(correct: int, n: int) -> bool:
    """Whether ``correct`` of ``n`` lies within CEILING_SES Agresti-Coull standard errors of 1.0.

    Compared squared in exact fractions (both sides are >= 0), so a row on the boundary (7 of 8
    is exactly one SE from 1.0) is decided the same way on every machine."""
    if n <= 0 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n and n > 0, got {correct} of {n}")
    total = n + 2 * PSEUDO
    variance = Fraction((correct + PSEUDO) * (n - correct + PSEUDO), total**3)
    return Fraction(n - correct, n) ** 2 <= CEILING_SES**2 * variance


def ceiling_rows(scores: Sequence[Score]) -> list[str]:
    """The labels of one decoding column's rows at ceiling, best first, when its two best rows
    (highest k/n; ties keep their order) are both at ceiling; else [] (also for one row)."""
    ranked = sorted(scores, key=lambda s: Fraction(s.correct, s.n), reverse=True)
    if len(ranked) < 2 or not all(at_ceiling(s.correct, s.n) for s in ranked[:2]):
        return []
    return [s.label for s in ranked if at_ceiling(s.correct, s.n)]


# ---- the report's rows ------------------------------------------------------------------


def _score(row: dict[str, Any]) -> Score | None:
    """A measured row's score (k recovered from lm-eval's mean acc), None without acc or n."""
    n, acc = row.get("n"), row.get("acc")
    if row.get("kind") != "measured" or acc is None or not n:
        return None
    correct = round(acc * int(n))
    return Score(row["name"], correct, int(n)) if 0 <= correct <= int(n) else None


def column(row: dict[str, Any]) -> str:
    """The row's decoding column, as the checkpoint x decoding matrix labels it."""
    return str(row.get("decoding_label") or row.get("decoding") or "?")


def mark_rows(rows: list[dict[str, Any]]) -> None:
    """Set ``at_ceiling`` on every row: True / False, None when it has no measured k of n."""
    for row in rows:
        score = _score(row)
        row["at_ceiling"] = None if score is None else at_ceiling(score.correct, score.n)


def task_ceilings(rows: list[dict[str, Any]], tasks: Sequence[str]) -> dict[str, Any]:
    """{task: {decoding column: [row names at ceiling]}}, only the flagged columns and tasks."""
    flagged: dict[str, Any] = {}
    for task in tasks:
        columns: dict[str, list[Score]] = {}
        for row in rows:
            score = _score(row) if row["task"] == task else None
            if score is not None:
                columns.setdefault(column(row), []).append(score)
        found = {c: names for c, scores in columns.items() if (names := ceiling_rows(scores))}
        if found:
            flagged[task] = found
    return flagged


def flag_lines(report: dict[str, Any], task: str) -> list[str]:
    """The report's line per flagged decoding column of ``task`` (plain text; pages escape)."""
    return [
        f"{FLAG} ({', '.join(names)} within {SES_TEXT} of 1.0 under {col})"
        for col, names in (report.get("ceiling") or {}).get(task, {}).items()
    ]
