"""Sets of real numbers as finite unions of intervals with exact endpoints (method.md 7.1).

A ``RealSet`` is a tuple of disjoint ``Interval``s in increasing order, merged wherever two
touch (``(1, 2) \\cup [2, 3)`` is ``(1, 3)``; ``(1, 2) \\cup (2, 3)`` stays two parts), so two
sets are equal exactly when their tuples agree endpoint by endpoint and end by end. Endpoints
are sympy numbers (or ``-oo``/``oo``, always open). Order is decided exactly when the
difference of two endpoints is rational (always for rational endpoints); other exact forms
(``\\sqrt{2}`` vs ``\\frac{7}{5}``) are ordered by a 60-digit value of the difference and count
as equal when it is below 1e-40, as ``equiv`` treats exact forms. A non-real endpoint raises
``Undecidable``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sympy

# Most intervals in one set; bounds the quadratic intersection.
MAX_PARTS = 64
_ZERO = sympy.Float("1e-40", 60)
OO = sympy.oo
NEG_OO = -sympy.oo


class Undecidable(ValueError):
    """The order of two endpoints cannot be decided (not real numbers)."""


@dataclass(frozen=True)
class Interval:
    lo: Any
    hi: Any
    lo_closed: bool
    hi_closed: bool


RealSet = tuple[Interval, ...]


def _num(a: Any) -> Any:
    """A sympy number; Python ints are converted (never a string: no ``sympify``)."""
    if isinstance(a, int):
        return sympy.Integer(a)
    if not isinstance(a, sympy.Basic):
        raise TypeError(f"not a sympy number: {type(a).__name__}")
    if a.is_extended_real is False:
        raise Undecidable(f"not a real number: {a}")
    return a


def cmp(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` is below, equal to or above ``b`` (real numbers or infinities)."""
    a, b = _num(a), _num(b)
    if a == b:
        return 0
    if a == OO or b == NEG_OO:
        return 1
    if a == NEG_OO or b == OO:
        return -1
    d = a - b
    if d.is_Rational:  # both rational, or radicals that cancel (`(\sqrt{2} + 1) - \sqrt{2}`)
        return 0 if d == 0 else (1 if d.is_positive else -1)
    d = d.evalf(60)
    if not (d.is_number and d.is_real) or not d.is_finite:
        raise Undecidable(f"cannot order {a} and {b}")
    if abs(d) < _ZERO:
        return 0
    return 1 if d > 0 else -1


def interval(lo: Any, lo_closed: bool, hi: Any, hi_closed: bool) -> RealSet:
    """The interval from ``lo`` to ``hi`` (empty when ``lo > hi``); infinite ends are open."""
    lo, hi = _num(lo), _num(hi)
    lo_closed = lo_closed and lo != NEG_OO
    hi_closed = hi_closed and hi != OO
    c = cmp(lo, hi)
    if c > 0 or (c == 0 and not (lo_closed and hi_closed)):
        return ()
    return (Interval(lo, hi, lo_closed, hi_closed),)


def point(a: Any) -> RealSet:
    return interval(a, True, a, True)


REALS: RealSet = (Interval(NEG_OO, OO, False, False),)


def _by_lo(a: Interval, b: Interval) -> int:
    c = cmp(a.lo, b.lo)
    return c if c else int(b.lo_closed) - int(a.lo_closed)  # the closed start first


def union(*sets: RealSet) -> RealSet:
    """The union, sorted and merged."""
    parts = [iv for s in sets for iv in s]
    if len(parts) > MAX_PARTS:
        raise Undecidable("too many intervals")
    parts.sort(key=functools.cmp_to_key(_by_lo))
    out: list[Interval] = []
    for iv in parts:
        if out and _touches(out[-1], iv):
            out[-1] = _merge(out[-1], iv)
        else:
            out.append(iv)
    return tuple(out)


def _touches(a: Interval, b: Interval) -> bool:
    """``b`` (which starts no earlier than ``a``) overlaps or meets ``a`` with no gap."""
    c = cmp(b.lo, a.hi)
    return c < 0 or (c == 0 and (a.hi_closed or b.lo_closed))


def _merge(a: Interval, b: Interval) -> Interval:
    c = cmp(b.hi, a.hi)
    if c > 0:
        return Interval(a.lo, b.hi, a.lo_closed, b.hi_closed)
    if c == 0:
        return Interval(a.lo, a.hi, a.lo_closed, a.hi_closed or b.hi_closed)
    return a


def intersect(a: RealSet, b: RealSet) -> RealSet:
    """The intersection."""
    out: list[RealSet] = []
    for x in a:
        for y in b:
            c = cmp(x.lo, y.lo)
            lo, lc = (x.lo, x.lo_closed) if c > 0 else (y.lo, y.lo_closed)
            if c == 0:
                lc = x.lo_closed and y.lo_closed
            c = cmp(x.hi, y.hi)
            hi, hc = (x.hi, x.hi_closed) if c < 0 else (y.hi, y.hi_closed)
            if c == 0:
                hc = x.hi_closed and y.hi_closed
            out.append(interval(lo, lc, hi, hc))
    return union(*out)


def complement(a: RealSet) -> RealSet:
    """The reals not in ``a``."""
    out: list[RealSet] = []
    lo, lc = NEG_OO, False
    for iv in a:
        out.append(interval(lo, lc, iv.lo, not iv.lo_closed))
        lo, lc = iv.hi, not iv.hi_closed
    out.append(interval(lo, lc, OO, False))
    return union(*out)


def same_set(a: RealSet, b: RealSet) -> bool:
    """Equal sets: the same intervals with the same open and closed ends."""
    return len(a) == len(b) and all(
        x.lo_closed == y.lo_closed
        and x.hi_closed == y.hi_closed
        and cmp(x.lo, y.lo) == 0
        and cmp(x.hi, y.hi) == 0
        for x, y in zip(a, b, strict=True)
    )
