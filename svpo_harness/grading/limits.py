"""Structural pre-checks that make hostile answers fail fast (method.md section 7).

Python's big-integer arithmetic cannot be interrupted by a signal or a thread, so the
in-process ``is_equiv`` must refuse anything whose *result* would be huge before sympy
builds it: ``9^{9^{9^9}}``, ``100000!``, ``\\binom{10^9}{5 \\cdot 10^8}``. The hard limit of
``grade_many`` (killing a worker) is the backstop for whatever slips through.
"""

from __future__ import annotations

import math
from typing import Any

# Longest answer (after extraction) we grade. MATH/GSM8K answers are < 60 chars; the
# longest gold answer in the shipped sets (CollegeMath) is 993 chars.
MAX_ANSWER_CHARS = 1_024
# Deepest bracket nesting; real answers stay under ~6. Each level costs several parser frames.
MAX_NESTING = 40
# Most `^` in one answer: power towers are where huge numbers come from.
MAX_POWERS = 40
# Largest number of decimal digits any exact intermediate may have (10^4 digits multiply in
# microseconds; 10^8 digits take seconds and gigabytes).
MAX_DIGITS = 10_000
# Largest n for n! (1000! has 2,568 digits).
MAX_FACTORIAL = 1_000
# Largest n for binomial(n, k).
MAX_BINOMIAL = 10_000
# Largest integer exponent on a symbolic base: keeps later expansion bounded.
MAX_SYMBOLIC_EXPONENT = 200


class LimitExceeded(ValueError):
    """An answer exceeds a structural limit; graded as not equivalent."""


def precheck(s: str) -> None:
    """Cheap linear checks on a raw answer string; raises ``LimitExceeded``."""
    if len(s) > MAX_ANSWER_CHARS:
        raise LimitExceeded(f"answer longer than {MAX_ANSWER_CHARS} chars")
    if "\x00" in s:
        raise LimitExceeded("NUL byte in answer")
    depth = 0
    for c in s:
        if c in "([{":
            depth += 1
            if depth > MAX_NESTING:
                raise LimitExceeded(f"nesting deeper than {MAX_NESTING}")
        elif c in ")]}":
            depth -= 1
    if s.count("^") + s.count("**") > MAX_POWERS:
        raise LimitExceeded(f"more than {MAX_POWERS} powers")


def _log10_abs(x: Any) -> float | None:
    """log10(|x|) of a sympy number without building anything big; None if 0 or not finite."""
    import sympy

    if x.is_Rational:
        p, q = abs(int(x.p)), int(x.q)
        return math.log10(p) - math.log10(q) if p else None  # exact for big ints too
    try:
        v = complex(sympy.N(x, 15))
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        return None
    a = abs(v)
    return math.log10(a) if a > 0 and math.isfinite(a) else None


def _size_log10(x: Any) -> float | None:
    """Digits per unit of exponent that ``x**n`` costs: log10(|p|) + log10(q) for a Rational.

    For a Rational near 1 (``1 + 10^{-20}``) |log10 x| is tiny but p and q are not, and
    sympy builds p**n and q**n exactly; so the size is the sum, not the difference.
    """
    if x.is_Rational:
        p, q = abs(int(x.p)), int(x.q)
        if p == 0 or (p == 1 and q == 1):
            return None
        return math.log10(p) + math.log10(q)
    lb = _log10_abs(x)
    return abs(lb) if lb is not None else None


def check_pow(base: Any, exp: Any) -> None:
    """Refuse ``base**exp`` when its exact value would exceed ``MAX_DIGITS`` digits."""
    if not exp.is_number:
        return  # symbolic exponent: stays unevaluated
    if base.free_symbols:
        if exp.is_Integer and abs(int(exp)) > MAX_SYMBOLIC_EXPONENT:
            raise LimitExceeded("symbolic power exponent too large")
        return
    if not base.is_number:
        return
    size = _size_log10(base)
    le = _log10_abs(exp)
    if size is None or le is None or size < 1e-12:
        return  # 0, +-1, I or non-finite base: nothing big to build
    # digits ~ |exp| * size; compared in log space so a huge exponent never materialises.
    if le + math.log10(size) > math.log10(MAX_DIGITS):
        raise LimitExceeded("power result too large")


def check_factorial(n: Any) -> None:
    """Refuse ``n!`` for numeric ``n`` above ``MAX_FACTORIAL``."""
    if n.is_number:
        lg = _log10_abs(n)
        if lg is not None and lg > math.log10(MAX_FACTORIAL):
            raise LimitExceeded("factorial argument too large")


def check_binomial(n: Any) -> None:
    """Refuse ``binomial(n, k)`` for numeric ``n`` above ``MAX_BINOMIAL``."""
    if n.is_number:
        lg = _log10_abs(n)
        if lg is not None and lg > math.log10(MAX_BINOMIAL):
            raise LimitExceeded("binomial argument too large")
