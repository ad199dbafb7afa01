"""One-variable conditions and set notation read as sets of reals (method.md 7.1).

``condition_set(s)`` turns a normalised answer into a ``realsets.RealSet``, or None when it is
no one-variable set. It reads:

- intervals ``(a, b)``, ``[a, b)``, ``(-\\infty, a]``; ``\\mathbb{R}``; finite sets
  ``\\{1, 2\\}`` (points);
- ``\\cup``, ``\\cap``, ``\\setminus``; ``x \\in S``; set-builder ``\\{x \\mid cond\\}``;
- relation chains in one variable (``a < x \\le b``, ``-y < -3``, ``2 \\le |t| \\le 3``,
  ``x \\ne 3``), each link solved exactly when both sides are piecewise linear in the
  variable (sums of multiples of ``|linear|``); conditions joined by ``or`` (union) or
  ``and`` (intersection).

The variable's name does not matter (an interval has none), but one set uses one variable.
Pure construction of sympy numbers by the safe parser: model text is never evaluated.
Anything else (``x^2 < 4``, two variables, a tuple ``(2, 1)``) is None and is compared as
before by ``equiv.nodes_equal``.
"""

from __future__ import annotations

import re
from typing import Any

import sympy

from .realsets import (
    NEG_OO,
    OO,
    REALS,
    RealSet,
    Undecidable,
    cmp,
    complement,
    intersect,
    interval,
    point,
    union,
)
from .relations import split_relations
from .safe_parse import parse_expression
from .structure import outer_spans, split_joined, split_top

# Text that may be a set: a relation, membership, set operations, infinity, the reals.
_SET_HINT_RE = re.compile(r"[<>]|\\(?:le|ge|ne|in|cup|cap|setminus|mathbb|infty)(?![a-zA-Z])")
# Text that states a condition (not only interval notation).
_CONDITION_RE = re.compile(r"[<>]|\\(?:le|ge|ne|in|mid)(?![a-zA-Z])")
_NAME = r"[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|\\[a-zA-Z]+"
_IN_RE = re.compile(rf"^({_NAME})\s*\\in(?![a-zA-Z])\s*(.+)$", re.DOTALL)
_BUILDER_RE = re.compile(
    rf"^\\\{{\s*({_NAME})\s*(?:\\in\s*\\mathbb\s*\{{?\s*R\s*\}}?\s*)?(?:\\mid(?![a-zA-Z])|\||:)"
    r"(.+)\\\}$",
    re.DOTALL,
)
_REALS_RE = re.compile(r"^\\mathbb\s*\{?\s*R\s*\}?$")
_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le", "\\ne": "\\ne"}
# Most links in one chain, |...| terms in one link, and levels of nesting.
MAX_LINKS = 8
MAX_ABS = 8
MAX_DEPTH = 8


class _NotASet(ValueError):
    """A part of the text is no set; the whole is none."""


def set_like(s: str) -> bool:
    """Cheap test: ``s`` may be a set of reals (worth trying ``condition_set``)."""
    return bool(_SET_HINT_RE.search(s))


def has_condition(s: str) -> bool:
    """``s`` states a condition (a relation or membership), not only interval notation."""
    return bool(_CONDITION_RE.search(s))


def condition_set(s: str) -> RealSet | None:
    """The set of reals that normalised answer ``s`` describes, or None."""
    try:
        return _set(s, {}, 0)
    except (ValueError, TypeError, ArithmeticError, RecursionError):
        return None  # _NotASet, ParseError, Undecidable, LimitExceeded, sympy trouble


def _need(s: str, var: dict[str, Any], depth: int) -> RealSet:
    found = _set(s, var, depth + 1)
    if found is None:
        raise _NotASet(s)
    return found


def _bind(var: dict[str, Any], sym: Any) -> None:
    if not isinstance(sym, sympy.Symbol):
        raise _NotASet("not a variable")
    if var.setdefault("x", sym) != sym:
        raise _NotASet("two variables")


def _set(s: str, var: dict[str, Any], depth: int) -> RealSet | None:
    if depth > MAX_DEPTH:
        raise Undecidable("nested too deeply")
    s = s.strip()
    while s[:1] == "{" and outer_spans(s):
        s = s[1:-1].strip()  # bare braces are grouping
    joined = split_joined(s)
    if joined is not None:
        parts, joiners = joined
        if not all(has_condition(p) for p in parts) or len(set(joiners)) != 1:
            return None  # `(1,2) or (3,4)` is a list of pairs, not a union
        sets = [_need(p, var, depth) for p in parts]
        if joiners[0] == "or":
            return union(*sets)
        return _intersect_all(sets) if joiners[0] == "and" else None
    m = _IN_RE.match(s) or _BUILDER_RE.match(s)
    if m:
        _bind(var, parse_expression(m.group(1)).expr)
        return _need(m.group(2), var, depth)
    for op in ("\\cup", "\\cap"):
        parts = split_top(s, op)
        if len(parts) > 1:
            sets = [_need(p, var, depth) for p in parts]
            return union(*sets) if op == "\\cup" else _intersect_all(sets)
    parts = split_top(s, "\\setminus")
    if len(parts) == 2:
        return intersect(_need(parts[0], var, depth), complement(_need(parts[1], var, depth)))
    if _REALS_RE.match(s):
        return REALS
    if s.startswith("\\{") and s.endswith("\\}") and outer_spans(s[1:]):
        inner = s[2:-2].strip()
        return union(*(point(_number(t)) for t in split_top(inner, ","))) if inner else ()
    if s[:1] in "([" and s[-1:] in ")]" and outer_spans(s):
        return _interval_notation(s)
    return _chain(s, var)


def _intersect_all(sets: list[RealSet]) -> RealSet:
    out = REALS
    for x in sets:
        out = intersect(out, x)
    return out


def _number(text: str) -> Any:
    """A real number or infinity written in ``text``; raises ``_NotASet`` otherwise."""
    expr = parse_expression(text).expr
    if expr.free_symbols or not (expr.is_extended_real or expr in (OO, NEG_OO)):
        raise _NotASet(text)
    return expr


def _interval_notation(s: str) -> RealSet | None:
    items = split_top(s[1:-1], ",")
    if len(items) != 2:
        return None
    lo, hi = _number(items[0]), _number(items[1])
    lo_closed, hi_closed = s[0] == "[", s[-1] == "]"
    if lo == OO or hi == NEG_OO or (lo == NEG_OO and lo_closed) or (hi == OO and hi_closed):
        return None  # `[-\infty, 2]`, `(\infty, 1)`: no interval of reals
    c = cmp(lo, hi)
    if c > 0 or (c == 0 and not (lo_closed and hi_closed)):
        return None  # `(2, 1)`, `(2, 2)`: a pair, not an interval
    return interval(lo, lo_closed, hi, hi_closed)


def _chain(s: str, var: dict[str, Any]) -> RealSet | None:
    """``e0 op1 e1 op2 e2 ...`` in one variable: the intersection of its links."""
    rel = split_relations(s)
    if rel is None:
        return None
    parts, ops = rel
    if len(ops) > MAX_LINKS or any(not p for p in parts):
        return None
    exprs = [parse_expression(p).expr for p in parts]
    symbols = set().union(*(e.free_symbols for e in exprs))
    if len(symbols) != 1:
        return None
    x = symbols.pop()
    _bind(var, x)
    out = REALS
    for i, op in enumerate(ops):
        out = intersect(out, _link(exprs[i], op, exprs[i + 1], x))
    return out


def _link(lhs: Any, op: str, rhs: Any, x: Any) -> RealSet:
    """``{x : lhs op rhs}`` for piecewise-linear sides, exactly."""
    inf = (OO, NEG_OO)
    if lhs in inf or rhs in inf:
        if lhs in inf and rhs in inf:
            raise _NotASet("infinity on both sides")
        if lhs in inf:
            lhs, op, rhs = rhs, _FLIP[op], lhs
        if op == "\\ne":
            return REALS
        return REALS if (op in ("<", "\\le")) == (rhs == OO) else ()
    h = lhs - rhs
    atoms = [a for a in h.atoms(sympy.Abs) if a.has(x)]
    if len(atoms) > MAX_ABS:
        raise Undecidable("too many |...| terms")
    breaks = []
    for a in atoms:
        slope, const = _affine(a.args[0], x)
        breaks.append(point(-const / slope))
    cuts = [iv.lo for iv in union(*breaks)]
    bounds = [NEG_OO, *cuts, OO]
    out: list[RealSet] = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        sample = _inside(lo, hi)
        signs = {a: a.args[0] if cmp(a.args[0].subs(x, sample), 0) > 0 else -a.args[0]
                 for a in atoms}  # fmt: skip
        slope, const = _affine(h.xreplace(signs), x)
        out.append(intersect(_linear(slope, const, op), interval(lo, False, hi, False)))
    for c in cuts:
        if _holds(cmp(h.subs(x, c), 0), op):
            out.append(point(c))
    return union(*out)


def _affine(e: Any, x: Any) -> tuple[Any, Any]:
    """(slope, constant) of ``e`` in ``x``; raises ``Undecidable`` when it is not linear."""
    slope = sympy.diff(e, x)
    if slope.free_symbols:
        raise Undecidable("not linear in the variable")
    const = e.subs(x, 0)
    if const.free_symbols or not (slope.is_finite and const.is_finite):
        raise Undecidable("not linear in the variable")
    return slope, const


def _inside(lo: Any, hi: Any) -> Any:
    """A point strictly inside the open interval (lo, hi)."""
    if lo == NEG_OO:
        return sympy.Integer(0) if hi == OO else hi - 1
    return lo + 1 if hi == OO else (lo + hi) / 2


def _holds(sign: int, op: str) -> bool:
    return {"<": sign < 0, "\\le": sign <= 0, ">": sign > 0, "\\ge": sign >= 0, "\\ne": sign != 0}[
        op
    ]


def _linear(slope: Any, const: Any, op: str) -> RealSet:
    """``{x : slope * x + const op 0}``."""
    s = cmp(slope, 0)
    if s == 0:
        return REALS if _holds(cmp(const, 0), op) else ()
    root = -const / slope
    if s < 0:
        op = _FLIP[op]
    if op == "\\ne":
        return complement(point(root))
    if op in ("<", "\\le"):
        return interval(NEG_OO, False, root, op == "\\le")
    return interval(root, op == "\\ge", OO, False)
