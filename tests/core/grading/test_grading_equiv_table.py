"""Table tests for is_equiv: (gold, pred, expected), one comment per group.

Every example of method.md section 7 appears here.
"""

from __future__ import annotations

import pytest

from svpo_harness.grading import is_equiv

M12_34 = "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"

CASES = [
    # method.md 7: integer gold needs an exact match
    ("3", "3.0", True),
    ("3", "3.01", False),
    ("3", "3.001", False),
    ("3", "\\frac{6}{2}", True),
    # method.md 7: non-integer gold within relative tolerance 1e-3
    ("\\frac{1}{3}", "0.3333", True),
    ("\\frac{2}{3}", "0.6667", True),
    ("\\frac{2}{3}", "0.67", False),
    ("5.65685", "\\sqrt{32}", True),
    ("\\sqrt{32}", "5.65685", True),
    ("\\frac{1}{2000}", "0", False),
    ("2040087.3384615383", "2040087.34", True),
    ("\\pi", "3.1416", True),
    ("\\pi", "3.2", False),
    # method.md 7: exact forms compare symbolically first
    ("\\frac{1000}{1001}", "\\frac{999}{1000}", False),
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("\\frac{\\sqrt{6}}{2}", "\\sqrt{\\frac{3}{2}}", True),
    ("\\frac{5\\pi}{4}", "\\frac54\\pi", True),
    ("\\sqrt{3}", "\\sqrt{2}", False),
    # fractions in every spelling
    ("\\frac{1}{2}", "\\dfrac{1}{2}", True),
    ("\\frac{1}{2}", "\\tfrac12", True),
    ("\\frac{1}{2}", "1/2", True),
    ("\\frac{1}{2}", "\\frac12", True),
    ("0.5", "\\frac{1}{2}", True),
    ("\\frac{9}{5}", "1\\frac{4}{5}", True),  # mixed number
    ("-\\frac{3}{4}", "-0.75", True),
    # LaTeX decoration
    ("(3, 4)", "\\left( 3, 4 \\right)", True),
    ("12", "$12$", True),
    ("1000", "1\\!000", True),
    ("10", "\\text{10}", True),
    ("10", "\\mathrm{10}", True),
    ("10", "\\mbox{10}", True),
    ("3", "\\displaystyle 3", True),
    # thousands separators (but a tuple stays a tuple)
    ("1000", "1,000", True),
    ("1000", "1{,}000", True),
    ("11111111100", "11,\\! 111,\\! 111,\\! 100", True),
    ("(1,2)", "12", False),
    ("1000", "1,0000", False),
    # units, percent, degrees, dollars
    ("10", "10\\text{ cm}", True),
    ("10", "10 cm", True),
    ("22.1", "22.1cm^{2}", True),
    ("9 (apples)", "9", True),
    ("18", "18 dollars", True),
    ("50", "50\\%", True),
    ("50", "50%", True),
    ("30", "30^\\circ", True),
    ("30", "30^{\\circ}", True),
    ("5", "\\$5", True),
    ("5", "\\$5.00", True),
    ("3ab", "3", False),  # letters after a number are not always units
    # equations: `x = 3` matches `3`
    ("3", "x = 3", True),
    ("x = 3", "3", True),
    ("y = 2x + 3", "y=3+2x", True),
    ("y = 2x + 3", "2x - y + 3 = 0", True),
    ("3", "x = 4", False),
    ("\\frac{x^2}{2} - \\frac{y^2}{4} = 1", "1", False),
    # choice letters
    ("C", "\\text{(C)}", True),
    ("C", "(C)", True),
    ("\\text{(C)}", "C", True),
    ("C", "(C) 12", True),
    ("C", "D", False),
    ("C", "\\text{(D)}", False),
    # strings: case, spaces, text wrappers
    ("yes", "Yes", True),
    ("\\text{Monday}", "monday", True),
    ("volleyball team", "Volleyball Team", True),
    ("Australia", "Austria", False),
    # constants: bare i, e, infinity, pi
    ("6+9i", "6 + 9i", True),
    ("6+9i", "9i+6", True),
    ("6+9i", "6-9i", False),
    ("e", "2.71828", True),
    ("e^{2}", "e^2", True),
    ("\\infty", "\\infty", True),
    ("-\\infty", "\\infty", False),
    ("2\\pi", "\\pi \\cdot 2", True),
    # symbolic equality and implicit multiplication
    ("x^2+2x+1", "(x+1)^2", True),
    ("x^2+2x+1", "(x+1)^3", False),
    ("2x", "x \\cdot 2", True),
    ("3\\sqrt{2}", "\\sqrt{18}", True),
    ("\\frac{x}{2}", "0.5x", True),
    ("\\sin^2 x + \\cos^2 x", "1", True),
    ("a_1 + a_2", "a_2 + a_1", True),
    ("2^{10}", "1024", True),
    ("5!", "120", True),
    ("\\binom{5}{2}", "10", True),
    ("\\log_2 8", "3", True),
    ("|{-3}|", "3", True),
    # intervals keep open/closed ends
    ("[1, 2)", "[1,2)", True),
    ("[1, 2)", "[1,2]", False),
    ("(1, 2]", "[1, 2]", False),
    ("(-\\infty, 3]", "(-\\infty,3]", True),
    ("(2,12) \\cup (12,102)", "(12,102)\\cup(2,12)", True),
    ("(2,12) \\cup (12,102)", "(2,12] \\cup (12,102)", False),
    ("x \\in [2, 5)", "[2,5)", True),
    # tuples are ordered, sets are not, bare lists are not
    ("(1,2)", "(2,1)", False),
    ("(1,2,3)", "(1,2,3)", True),
    ("(1,2)", "(1,2,3)", False),
    ("\\{1,2\\}", "\\{2,1\\}", True),
    ("\\{1,2\\}", "\\{1,3\\}", False),
    ("-2,1", "1,-2", True),
    ("-2,1", "1,2", False),
    ("1\\pm\\sqrt{2}", "1+\\sqrt2, 1-\\sqrt2", True),
    ("\\left(3, \\frac{\\pi}{2}\\right)", "(3,\\frac{\\pi}{2})", True),
    # matrices
    (M12_34, "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}", True),
    (M12_34, "\\begin{pmatrix}1&2\\\\4&3\\end{pmatrix}", False),
    (
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\end{pmatrix}",
        "\\begin{pmatrix} -\\frac13 \\\\ \\frac23 \\end{pmatrix}",
        True,
    ),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 \\end{pmatrix}", False),
    # other answers stay text
    ("2516_8", "2516_8", True),
    ("2516_8", "2517_8", False),
    # empty and junk
    ("5", "", False),
    ("", "", False),
    ("5", "\\frac{1}{0}", False),
]  # fmt: skip


@pytest.mark.parametrize(("gold", "pred", "expected"), CASES)
def test_is_equiv_table(gold: str, pred: str, expected: bool) -> None:
    assert is_equiv(pred, gold) is expected


def test_numbers_accepted_as_gold() -> None:
    # float gold fields (SVAMP `Answer`, MAWPS `target`, GSM-Hard `target`)
    assert is_equiv("27", 27.0)
    assert is_equiv("0.3333", 0.3333333333)
    assert not is_equiv("28", 27.0)
    assert is_equiv("0.0000195766", 1.95766e-05)
    assert not is_equiv(None, "1")
    with pytest.raises(TypeError):
        is_equiv(["1"], "1")


def test_timeout_argument_runs_on_pool() -> None:
    assert is_equiv("0.5", "\\frac12", timeout=5.0)
    assert not is_equiv("9^{9^{9^{9}}}", "1", timeout=2.0)
