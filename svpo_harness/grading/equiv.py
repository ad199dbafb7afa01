"""``is_equiv``: the project's one answer-equivalence policy (method.md section 7).

Order of checks (cheap first):

1. structural pre-checks (``limits.precheck``): too long, too deep, too many powers -> False;
2. string normalisation; identical strings -> True;
3. multiple-choice gold (``C``, ``(C)``, ``\\text{(C)}``) -> compare letters;
4. plain decimal numbers -> exact ``Fraction`` arithmetic, no sympy (a decimal comma, ``3,45``,
   reads as a point when the gold is one number);
5. sets of reals (``conditions.condition_set``): when either side has a relation, ``\\in``,
   ``\\cup`` or ``\\infty`` and both read as one-variable sets (inequalities, ``|x|``
   conditions, intervals, unions), the sets compare exactly, open and closed ends kept;
6. structure (tuple, interval, set, union, matrix, equation) with each scalar parsed by the
   safe parser; scalars compare symbolically first (exact forms), then by the numeric policy:
   an integer gold needs an exact value, any other gold accepts ``|p - g| <= 1e-3 |g|`` when
   a decimal is involved; expressions with variables compare at fixed sample points.

Never raises: any error on model text counts as not equivalent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import sympy

from .answer import answer_text
from .conditions import condition_set, has_condition, set_like
from .limits import precheck
from .normalize import choice_letter, normalize_answer, normalize_text
from .realsets import same_set
from .structure import Coll, Equation, Matrix, Node, Scalar, Seq, UnionOf, parse_answer

# method.md section 7: a non-integer gold matches within this relative tolerance.
REL_TOL = 1e-3
_INV_REL_TOL = 1000  # the same, for exact arithmetic on Fractions and sympy Rationals
# Two exact forms are equal when their 40-digit values agree this closely.
_EXACT_TOL = sympy.Float("1e-30", 40)
# Variable expressions: agreement at every sample point within this relative error.
_SYMBOLIC_TOL = 1e-9
# Sample values for variables: irrational-looking, away from 0, 1 and common poles.
_SAMPLES = (
    (0.7310585, 1.3173, 2.1137),
    (1.6180339, 0.4142135, 2.7182818),
    (3.1415926, 1.7320508, 0.5772156),
)
_NUMBER_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
# One comma followed by a count of digits other than three: a decimal comma.
_DECIMAL_COMMA_RE = re.compile(r"-?\d+,(?:\d{1,2}|\d{4,})")


def is_equiv(pred: Any, gold: Any) -> bool:
    """True when ``pred`` is equivalent to ``gold`` under method.md section 7's policy.

    Not symmetric: the gold side decides integer exactness and the choice-letter form.
    Accepts strings, numbers (``27.0`` from a float gold field) and ``ExtractedAnswer``s;
    ``None`` (nothing extracted) is False. A non-answer (list, dict, bool) raises
    ``TypeError``; any string grades False at worst and never raises.
    """
    p, g = answer_text(pred), answer_text(gold)
    if p is None or g is None:
        return False
    try:
        return _is_equiv(p, g)
    except Exception:  # noqa: BLE001 - model junk must grade False, never crash a run
        return False


def _is_equiv(pred: str, gold: str) -> bool:
    precheck(pred)
    precheck(gold)
    p = normalize_answer(pred)
    g = normalize_answer(gold)
    if not p or not g:
        return False
    if p == g:
        return True
    letter = choice_letter(g)
    if letter is not None:
        return choice_letter(p) == letter
    fg = _fast_number(g)
    if _DECIMAL_COMMA_RE.fullmatch(p) and (fg is not None or _one_number(g)):
        p = p.replace(",", ".")  # `1,22` for a one-number gold is a decimal comma (method.md 7.1)
    fp = _fast_number(p)
    if fp is not None and fg is not None:
        return _rational_equal(fg[0], fp[0], inexact=fp[1] or fg[1])
    verdict = _sets_verdict(g, p)
    if verdict is not None:
        return verdict
    return nodes_equal(parse_answer(g), parse_answer(p))


def _one_number(g: str) -> bool:
    """The gold is a single number (``\\frac{1}{2}``, ``x = 2.5``), not a list or tuple."""
    node = parse_answer(g)
    if isinstance(node, Equation) and node.simple:
        node = node.rhs
    parsed = node.parsed if isinstance(node, Scalar) else None
    return parsed is not None and not parsed.expr.free_symbols


def _sets_verdict(g: str, p: str) -> bool | None:
    """Both sides as sets of reals (method.md 7.1: a one-variable inequality is the set it
    describes), or None to compare structures instead.

    Equal sets are equivalent. Unequal ones are not, when either side states a condition;
    two plain interval notations go on to ``nodes_equal``, whose endpoints take the numeric
    tolerance (``(0.333, 1)`` for ``(\\frac13, 1)``).
    """
    if not (set_like(g) or set_like(p)):
        return None
    gs = condition_set(g)
    ps = condition_set(p) if gs is not None else None
    if gs is None or ps is None:
        return None
    if same_set(gs, ps):
        return True
    return False if has_condition(g) or has_condition(p) else None


def _fast_number(s: str) -> tuple[Fraction, bool] | None:
    """A plain decimal literal as an exact Fraction (and whether it had a decimal point)."""
    if len(s) > 400 or not _NUMBER_RE.fullmatch(s):
        return None
    return Fraction(s), "." in s


def _rational_equal(g: Any, p: Any, inexact: bool) -> bool:
    if g == p:
        return True
    if not inexact or g == int(g):
        return False  # exact forms differ, or an integer gold needs an exact match
    return abs(p - g) * _INV_REL_TOL <= abs(g)  # exact: `0.333` vs `1/3` is on the boundary


# -- structures --------------------------------------------------------------------------


def nodes_equal(g: Node, p: Node) -> bool:
    """Compare a gold structure with a predicted one."""
    if isinstance(p, Coll) and p.items and not isinstance(g, (Coll, Seq, UnionOf)):
        # A list whose elements all equal a single gold is that value (method.md 7.1).
        if all(nodes_equal(g, item) for item in p.items):
            return True
    if isinstance(g, Equation) or isinstance(p, Equation):
        return _equations_equal(g, p)
    if isinstance(g, Scalar):
        return isinstance(p, Scalar) and scalars_equal(g, p)
    if isinstance(g, Seq):
        if isinstance(p, Seq):
            return (g.open, g.close) == (p.open, p.close) and _ordered(g.items, p.items)
        # `1, 2` for gold `(1, 2)`: same elements in the same order.
        return isinstance(p, Coll) and g.open + g.close == "()" and _ordered(g.items, p.items)
    if isinstance(g, Coll):
        if isinstance(p, Coll) or (isinstance(p, Seq) and p.open + p.close == "()"):
            return _unordered(g.items, p.items)
        return False
    if isinstance(g, UnionOf):
        return isinstance(p, UnionOf) and _unordered(g.parts, p.parts)
    if isinstance(g, Matrix):
        return (
            isinstance(p, Matrix)
            and len(g.rows) == len(p.rows)
            and all(_ordered(a, b) for a, b in zip(g.rows, p.rows, strict=True))
        )
    return False


def _equations_equal(g: Node, p: Node) -> bool:
    if isinstance(g, Equation) and isinstance(p, Equation):
        if nodes_equal(g.lhs, p.lhs) and nodes_equal(g.rhs, p.rhs):
            return True
        sides = (g.lhs, g.rhs, p.lhs, p.rhs)
        if all(isinstance(n, Scalar) and n.parsed is not None for n in sides):
            gl, gr, pl, pr = (n.parsed for n in sides)  # type: ignore[union-attr]
            dg = gl.expr - gr.expr
            dp = pl.expr - pr.expr
            if _values_equal(dg, dp, False) or _values_equal(dg, -dp, False):
                return True
            # Same solution set: `2x+4y-3=0` is `y=-x/2+3/4` (a constant multiple).
            return bool(dg.free_symbols | dp.free_symbols) and _proportional(dg, dp)
        return False
    if isinstance(g, Equation):
        return g.simple and nodes_equal(g.rhs, p)  # gold `x = 3`, pred `3`
    assert isinstance(p, Equation)
    return p.simple and nodes_equal(g, p.rhs)  # pred `x = 3`, gold `3`


def _ordered(gs: tuple[Node, ...], ps: tuple[Node, ...]) -> bool:
    return len(gs) == len(ps) and all(nodes_equal(a, b) for a, b in zip(gs, ps, strict=True))


def _unordered(gs: tuple[Node, ...], ps: tuple[Node, ...]) -> bool:
    if len(gs) != len(ps):
        return False
    left = list(ps)
    for g in gs:
        for j, p in enumerate(left):
            if nodes_equal(g, p):
                del left[j]
                break
        else:
            return False
    return True


# -- scalars -----------------------------------------------------------------------------


def scalars_equal(g: Scalar, p: Scalar) -> bool:
    """Scalars: identical text, then value equality, then loose text for words."""
    if g.text == p.text:
        return True
    if g.parsed is not None and p.parsed is not None:
        inexact = g.parsed.inexact or p.parsed.inexact
        if _values_equal(g.parsed.expr, p.parsed.expr, inexact):
            return True
    tg, tp = normalize_text(g.text), normalize_text(p.text)
    if re.search(r"[a-z]{3,}", tg.lower()):
        return tg == tp
    return _strict_text(g.text) == _strict_text(p.text)


def _strict_text(s: str) -> str:
    return re.sub(r"[\s{}]", "", s)


def _values_equal(g: Any, p: Any, inexact: bool) -> bool:
    if g == p:
        return True
    gfree, pfree = g.free_symbols, p.free_symbols
    if not gfree and not pfree:
        return _numbers_equal(g, p, inexact)
    # Different symbol sets can still be equal (`\sin^2 x + \cos^2 x` vs `1`): probe them all.
    return _same_at_samples(g, p, sorted(gfree | pfree, key=str))


def _numbers_equal(g: Any, p: Any, inexact: bool) -> bool:
    if not (g.is_finite and p.is_finite):
        return False  # oo == oo was caught above; zoo / nan never match
    if g.is_Rational and p.is_Rational:
        return _rational_equal(g, p, inexact)
    gv, pv = g.evalf(40), p.evalf(40)
    if not (gv.is_number and pv.is_number):
        return False
    diff = abs(gv - pv)
    scale = max(abs(gv), sympy.Integer(1))
    if bool(diff <= _EXACT_TOL * scale):
        return True  # exact forms agree: symbolic equality
    if not inexact or (g.is_Integer):
        return False
    return bool(diff * _INV_REL_TOL <= abs(gv))


def _same_at_samples(g: Any, p: Any, symbols: list[Any]) -> bool:
    """Expressions with variables: equal values at several fixed points.

    Numeric probing instead of ``simplify``/``expand``: it is bounded in time (no expansion of
    ``(x + y + z)^{200}``) and decides the usual answer forms (factored vs expanded, rewritten
    fractions) reliably.
    """
    checked = 0
    for gv, pv in _probe(g, p, symbols):
        if abs(gv - pv) > _SYMBOLIC_TOL * max(1.0, abs(gv)):
            return False
        checked += 1
    return checked >= 2


def _proportional(g: Any, p: Any) -> bool:
    """``p = c * g`` for one nonzero constant ``c``, probed at the fixed sample points."""
    symbols = sorted(g.free_symbols | p.free_symbols, key=str)
    ratios = [pv / gv for gv, pv in _probe(g, p, symbols) if min(abs(gv), abs(pv)) >= 1e-12]
    if len(ratios) < 2:
        return False
    r0 = ratios[0]
    return all(abs(r - r0) <= _SYMBOLIC_TOL * abs(r0) for r in ratios[1:])


def _probe(g: Any, p: Any, symbols: list[Any]) -> Iterator[tuple[complex, complex]]:
    """(g, p) at each fixed sample point where both evaluate to finite numbers."""
    for row in _SAMPLES:
        point = {s: sympy.Float(row[k % len(row)] + 0.1 * (k // len(row)), 30)
                 for k, s in enumerate(symbols)}  # fmt: skip
        try:
            gv = complex(g.evalf(30, subs=point))
            pv = complex(p.evalf(30, subs=point))
        except (TypeError, ValueError, ArithmeticError):
            continue  # unevaluable here (e.g. an unknown function): try the next point
        if _finite(gv) and _finite(pv):
            yield gv, pv


def _finite(z: complex) -> bool:
    return z == z and abs(z) != float("inf")
