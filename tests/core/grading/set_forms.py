"""Random one-variable sets written the ways answers write them (issue 27's generated set).

A set is a list of parts ``(lo, lo_closed, hi, hi_closed)`` with ``Fraction`` ends (``None``
for an infinite end). ``canonical`` sorts and merges parts with plain Fraction arithmetic,
independently of the checker, so a pair's expected verdict is known by construction.
``write`` renders a set in a random form: interval notation, ``x \\in``, inequalities
(flipped, negated, scaled, shifted, compound), ``or`` joins, set-builder, ``|x - c|``
conditions and ``x \\neq a``. ``mutate`` changes a set so that it is no longer the same set.
"""

from __future__ import annotations

import random
from fractions import Fraction

Part = tuple[Fraction | None, bool, Fraction | None, bool]

_LE = ["\\le", "\\leq", "<=", "≤", "\\leqslant"]
_GE = ["\\ge", "\\geq", ">=", "≥", "\\geqslant"]
_JOIN = [" or ", " \\text{ or } ", "\\text{ or }", " \\quad\\text{or}\\quad "]
_NEQ = ["\\neq", "\\ne", "!=", "≠"]
_SUCH_THAT = ["\\mid", "|", ":"]
_BARS = [("|", "|"), ("\\lvert ", " \\rvert"), ("\\left|", "\\right|")]


def num(q: Fraction, rng: random.Random) -> str:
    """A rational written as an integer, ``\\frac``, ``a/b`` or a terminating decimal."""
    if q.denominator == 1:
        return str(q.numerator)
    sign = "-" if q < 0 else ""
    p, d = abs(q.numerator), q.denominator
    forms = [f"{sign}\\frac{{{p}}}{{{d}}}", f"{sign}\\dfrac{{{p}}}{{{d}}}", f"{sign}{p}/{d}"]
    if 1000 % d == 0:
        forms.append(str(float(q)))
    return rng.choice(forms)


def canonical(parts: list[Part]) -> list[Part]:
    """Sorted, disjoint, merged parts: two sets are equal exactly when these are equal."""

    def lo_key(p: Part) -> tuple[float, int]:
        return (float("-inf") if p[0] is None else p[0], 0 if p[1] else 1)  # type: ignore[return-value]

    out: list[Part] = []
    for lo, lc, hi, hc in sorted(parts, key=lo_key):
        if out:
            plo, plc, phi, phc = out[-1]
            if phi is None or lo is None or lo < phi or (lo == phi and (phc or lc)):
                if phi is None or (hi is not None and hi < phi):
                    continue
                out[-1] = (plo, plc, hi, hc or (hi == phi and phc))
                continue
        out.append((lo, lc, hi, hc))
    return out


def random_set(rng: random.Random) -> list[Part]:
    """One to two parts with random ends in [-12, 12] (some fractional)."""

    def end() -> Fraction:
        return Fraction(rng.randint(-24, 24), rng.choice([1, 1, 1, 2, 3, 4]))

    kind = rng.choice(["half", "half", "bounded", "bounded", "outside", "two", "point_out"])
    a = end()
    b = a + Fraction(rng.randint(1, 12), rng.choice([1, 2, 3]))
    c = rng.random
    if kind == "half":
        return [(a, c() < 0.5, None, False)] if c() < 0.5 else [(None, False, a, c() < 0.5)]
    if kind == "bounded":
        return [(a, c() < 0.5, b, c() < 0.5)]
    if kind == "outside":
        return [(None, False, a, c() < 0.5), (b, c() < 0.5, None, False)]
    if kind == "point_out":
        return [(None, False, a, False), (a, False, None, False)]
    d, e = b + rng.randint(1, 4), b + rng.randint(5, 9)
    return [(a, c() < 0.5, b, c() < 0.5), (d, c() < 0.5, Fraction(e), c() < 0.5)]


def mutate(parts: list[Part], rng: random.Random) -> list[Part]:
    """A set that differs from ``parts``: an end opened or closed, moved, or a part dropped."""
    while True:
        i = rng.randrange(len(parts))
        lo, lc, hi, hc = parts[i]
        how = rng.choice(["close", "move", "move", "drop", "flip"])
        new = list(parts)
        if how == "close":
            if hi is None or (lo is not None and rng.random() < 0.5):
                new[i] = (lo, not lc, hi, hc)
            else:
                new[i] = (lo, lc, hi, not hc)
        elif how == "move":
            delta = Fraction(rng.choice([-2, -1, 1, 2]), rng.choice([1, 2]))
            if lo is not None and (hi is None or lo + delta < hi) and rng.random() < 0.5:
                new[i] = (lo + delta, lc, hi, hc)
            elif hi is not None and (lo is None or hi + delta > lo):
                new[i] = (lo, lc, hi + delta, hc)
        elif how == "drop" and len(parts) > 1:
            del new[i]
        elif how == "flip" and len(parts) == 1 and (lo is None) != (hi is None):
            end = lo if hi is None else hi
            closed = not (lc if hi is None else hc)  # the complement of a half-line
            new = [(None, False, end, closed)] if hi is None else [(end, closed, None, False)]
        if canonical(new) != canonical(parts) and _valid(new):
            return new


def _valid(parts: list[Part]) -> bool:
    return all(lo is None or hi is None or lo < hi for lo, _, hi, _ in parts)


def split(parts: list[Part], rng: random.Random) -> list[Part]:
    """The same set written with one bounded part cut in two (``[a, c]`` as ``[a, b) \\cup [b,
    c]``)."""
    for i, (lo, lc, hi, hc) in enumerate(parts):
        if lo is not None and hi is not None:
            mid = (lo + hi) / 2
            left_closed = rng.random() < 0.5
            return [*parts[:i], (lo, lc, mid, left_closed), (mid, not left_closed, hi, hc),
                    *parts[i + 1 :]]  # fmt: skip
    return parts


def _notation(p: Part, rng: random.Random) -> str:
    lo, lc, hi, hc = p
    left = "-\\infty" if lo is None else num(lo, rng)
    right = rng.choice(["\\infty", "+\\infty"]) if hi is None else num(hi, rng)
    sep = rng.choice([",", ", ", " , "])
    body = ("[" if lc else "(") + left + sep + right + ("]" if hc else ")")
    if rng.random() < 0.2:
        body = f"\\left{body[0]}{left}{sep}{right}\\right{body[-1]}"
    return body


def _op(closed: bool, less: bool, rng: random.Random) -> str:
    if less:
        return rng.choice(_LE) if closed else rng.choice(["<", "\\lt"])
    return rng.choice(_GE) if closed else rng.choice([">", "\\gt"])


def _lin(v: str, m: Fraction, k: Fraction, rng: random.Random) -> str:
    """``m*v + k`` written out."""
    if m == 1:
        head = v
    elif m == -1:
        head = "-" + v
    elif m.denominator == 1:
        head = f"{m.numerator}{v}"
    else:
        top = v if m.numerator == 1 else f"{m.numerator}{v}"
        head = f"\\frac{{{top}}}{{{m.denominator}}}"
    if k == 0:
        return head
    return f"{head} {'+' if k > 0 else '-'} {num(abs(k), rng)}"


def _condition(p: Part, v: str, rng: random.Random) -> str:
    """One part as an inequality in ``v``: maybe scaled by ``m`` and shifted by ``k``."""
    lo, lc, hi, hc = p
    m = rng.choice([Fraction(1)] * 4 + [Fraction(2), Fraction(-1), Fraction(-3), Fraction(1, 2)])
    k = Fraction(rng.choice([0, 0, 0, 1, -2, 5]))
    lhs = _lin(v, m, k, rng)

    def at(x: Fraction) -> str:
        return num(m * x + k, rng)

    if lo is not None and hi is not None:
        a, b, ca, cb = (lo, hi, lc, hc) if m > 0 else (hi, lo, hc, lc)
        if rng.random() < 0.5:  # increasing: a op lhs op b
            return f"{at(a)} {_op(ca, True, rng)} {lhs} {_op(cb, True, rng)} {at(b)}"
        return f"{at(b)} {_op(cb, False, rng)} {lhs} {_op(ca, False, rng)} {at(a)}"
    if lo is None and hi is None:
        return f"{lhs} > {at(Fraction(0))} {rng.choice(_JOIN).strip()} {lhs} \\le {at(Fraction(0))}"
    end, closed, below = (hi, hc, True) if lo is None else (lo, lc, False)
    assert end is not None
    below_lhs = below if m > 0 else not below
    if rng.random() < 0.5:
        return f"{lhs} {_op(closed, below_lhs, rng)} {at(end)}"
    return f"{at(end)} {_op(closed, not below_lhs, rng)} {lhs}"  # flipped: `5 < x`


def _abs_form(parts: list[Part], v: str, rng: random.Random) -> str | None:
    """``|x - c| < r`` for a symmetric bounded part, ``|x - c| \\ge r`` for its outside."""
    if len(parts) == 1 and parts[0][0] is not None and parts[0][2] is not None:
        lo, lc, hi, hc = parts[0]
        op = {(False, False): "<", (True, True): rng.choice(_LE)}.get((lc, hc))
    elif len(parts) == 2 and parts[0][0] is None and parts[1][2] is None:
        lo, lc, hi, hc = parts[0][2], parts[1][1], parts[1][0], parts[0][3]
        op = {(False, False): ">", (True, True): rng.choice(_GE)}.get((lc, hc))
    else:
        return None
    assert lo is not None and hi is not None
    if op is None or lo >= hi:
        return None
    c, r = (lo + hi) / 2, (hi - lo) / 2
    m = rng.choice([Fraction(1), Fraction(1), Fraction(2), Fraction(-1)])
    left, right = rng.choice(_BARS)
    return f"{left}{_lin(v, m, -m * c, rng)}{right} {op} {num(abs(m) * r, rng)}"


def write(parts: list[Part], v: str, rng: random.Random) -> str:
    """``parts`` in a random form (all forms describe exactly this set)."""
    forms = ["notation", "in", "conditions", "conditions", "builder"]
    if _abs_form(parts, v, rng) is not None:
        forms += ["abs", "abs"]
    if len(parts) == 2 and parts[0][2] == parts[1][0] and parts[0][0] is None \
            and parts[1][2] is None and not parts[0][3] and not parts[1][1]:  # fmt: skip
        forms += ["neq", "neq"]
    form = rng.choice(forms)
    if form == "notation":
        return " \\cup ".join(_notation(p, rng) for p in parts)
    if form == "in":
        return f"{v} \\in " + " \\cup ".join(_notation(p, rng) for p in parts)
    if form == "abs":
        return _abs_form(parts, v, rng) or ""
    if form == "neq":
        assert parts[0][2] is not None
        return f"{v} {rng.choice(_NEQ)} {num(parts[0][2], rng)}"
    text = rng.choice(_JOIN).join(_condition(p, v, rng) for p in parts)
    if form == "builder":
        return f"\\{{{v} {rng.choice(_SUCH_THAT)} {text}\\}}"
    return text


def generated_pairs(n: int, seed: int) -> list[tuple[str, str, bool]]:
    """``n`` pairs (gold, pred, equal?): every other pair equal, the rest mutated."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        s = random_set(rng)
        if i % 2 == 0:  # equal: the same set, maybe cut into more parts
            other = split(s, rng) if rng.random() < 0.3 else s
        else:
            other = mutate(s, rng)
        v = rng.choice("xxxtya")
        pairs.append((write(s, v, rng), write(other, v, rng), canonical(s) == canonical(other)))
    return pairs
