"""Table tests for method.md 7.1's equivalence rules: (gold, pred, expected), both directions."""

from __future__ import annotations

import pytest

from svpo_harness.grading import is_equiv

CASES = [
    # relation spellings are one relation
    ("x \\geq 5", "x \\ge 5", True),
    ("x \\geq 5", "x >= 5", True),
    ("x \\geq 5", "x ≥ 5", True),
    ("x \\geq 5", "x \\geqslant 5", True),
    ("x \\leq 5", "x <= 5", True),
    ("x \\leq 5", "x ≤ 5", True),
    ("x < 5", "x \\lt 5", True),
    ("x > 5", "x \\gt 5", True),
    ("x \\neq 3", "x \\ne 3", True),
    ("x \\neq 3", "x != 3", True),
    ("x \\neq 3", "x ≠ 3", True),
    ("x \\geq 5", "x > 5", False),
    ("x \\leq 5", "x < 5", False),
    ("x \\geq 5", "x \\leq 5", False),
    ("x \\neq 3", "x = 3", False),
    # a one-variable inequality is the same set as an interval or union
    ("(5, \\infty)", "x > 5", True),
    ("x > 5", "(5, \\infty)", True),
    ("[5, \\infty)", "x \\geq 5", True),
    ("(-\\infty, 3]", "x \\le 3", True),
    ("(-\\infty, 3]", "3 \\ge x", True),
    ("(5, \\infty)", "5 < x", True),
    ("(-2, 7]", "-2 < x \\le 7", True),
    ("(-2, 7]", "7 \\ge x > -2", True),
    ("x \\in [-2,7]", "-2 \\le x \\le 7", True),
    ("(-\\infty, 2) \\cup (3, \\infty)", "x < 2 \\text{ or } x > 3", True),
    ("(-\\infty, 3) \\cup (3, \\infty)", "x \\neq 3", True),
    ("(5, \\infty)", "x \\geq 5", False),
    ("[5, \\infty)", "x > 5", False),
    ("(-2, 7]", "-2 \\le x \\le 7", False),
    ("(-2, 7]", "-2 < x < 7", False),
    ("(-\\infty, 2) \\cup (3, \\infty)", "x < 2 \\text{ or } x \\ge 3", False),
    ("(-\\infty, 2) \\cup (3, \\infty)", "2 < x < 3", False),
    ("(5, \\infty)", "x < 5", False),
    ("(-\\infty, 3) \\cup (3, \\infty)", "x \\neq 4", False),
    ("x > 5", "(5, 6)", False),
    # labelled answers
    ("(3,2)", "(p,q)=(3,2)", True),
    ("(3,2)", "(p, q) = (3, 2)", True),
    ("1", "|AB| = 1", True),
    ("1", "AB = 1", True),
    ("11", "x \\approx 11", True),
    ("11", "x \\simeq 11", True),
    ("0.5", "p \\approx 0.5", True),
    ("30", "m\\angle ABC = 30^\\circ", True),
    ("(3,2)", "(p,q)=(2,3)", False),
    ("(3,2)", "(2,3)", False),
    ("(3,2,1)", "(p,q)=(3,2)", False),
    ("1", "|AB| = 2", False),
    ("11", "x \\approx 12", False),
    ("11", "x + 1 = 11", False),
    # equations compare as solution sets
    ("y=-x/2+3/4", "2x+4y-3=0", True),
    ("2x+4y-3=0", "y=-\\frac{x}{2}+\\frac{3}{4}", True),
    ("y = 2x + 3", "2y = 4x + 6", True),
    ("x^2 + y^2 = 4", "2x^2 + 2y^2 - 8 = 0", True),
    ("2x+4y-3=0", "2x+4y+3=0", False),
    ("y=-x/2+3/4", "y=-x/2-3/4", False),
    ("x^2 + y^2 = 4", "x^2 + y^2 = 2", False),
    ("y = 2x + 3", "y = 3x + 2", False),
    ("x = 2", "x^2 = 4", False),
    # `a \pm b` is the two-element set
    ("1\\pm\\sqrt{2}", "1-\\sqrt2, 1+\\sqrt2", True),
    ("1+\\sqrt{2}, 1-\\sqrt{2}", "1 \\pm \\sqrt{2}", True),
    ("3, -3", "\\pm 3", True),
    ("3, -3", "x = \\pm 3", True),
    ("1\\pm\\sqrt{2}", "1+\\sqrt2", False),
    ("3", "\\pm 3", False),
    ("1\\pm\\sqrt{2}", "1 \\pm \\sqrt{3}", False),
    # lists joined by and / or / ; (unordered for a list of solutions, ordered for a tuple)
    ("-2, 1", "1 and -2", True),
    ("-2, 1", "x = 1 \\text{ or } x = -2", True),
    ("-2, 1", "x=-2 \\text{ and } x=1", True),
    ("-2, 1", "1; -2", True),
    ("(2, 3)", "2 and 3", True),
    ("(2,3)", "x = 2 \\text{ and } y = 3", True),
    ("-2, 1", "1 and 2", False),
    ("-2, 1", "x = 1 \\text{ or } x = 2", False),
    ("-2, 1", "1", False),
    ("(2, 3)", "3 and 2", False),
    ("-2, 1", "1; -2; 3", False),
    # a list of equal elements is that one value
    ("350", "350, 350", True),
    ("\\frac{639}{40}", "15\\frac{39}{40}, \\frac{639}{40}", True),
    ("350", "350, 351", False),
    # decimal commas when the gold is one number
    ("1.22", "1,22", True),
    ("1000.99", "1000,99", True),
    ("2.5", "2,5", True),
    ("1000", "1,000", True),
    ("1.22", "1,23", False),
    ("1.22", "1,2", False),
    ("1.5", "1,50", True),
    ("1.5", "1,500", False),
    ("(1, 22)", "1,22", True),
    ("(1, 5)", "1,5", True),
    ("1.22", "1, 22", False),
    # fraction spellings, incl. \cfrac
    ("\\frac{1}{2}", "\\cfrac{1}{2}", True),
    ("\\frac{2}{3}", "\\cfrac{2}{3}", True),
    ("\\frac{1}{2}", "\\cfrac{1}{3}", False),
    # the tolerance boundary is exact
    ("\\frac{1}{3}", "0.333", True),
    ("\\frac{1}{3}", "0.3329", False),
    ("\\frac{2}{3}", "0.667", True),
    ("\\frac{2}{3}", "0.66599", False),
    ("1.5", "1.5015", True),
    ("1.5", "1.50151", False),
    ("\\sqrt{2}", "1.4127", False),
    ("\\sqrt{2}", "1.4129", True),
]  # fmt: skip


@pytest.mark.parametrize(("gold", "pred", "expected"), CASES)
def test_is_equiv_model_written(gold: str, pred: str, expected: bool) -> None:
    assert is_equiv(pred, gold) is expected


def test_every_rule_checked_both_ways() -> None:
    groups: dict[bool, int] = {True: 0, False: 0}
    for _, _, expected in CASES:
        groups[expected] += 1
    assert groups[True] >= 40 and groups[False] >= 40, groups
