"""Answer structure: scalars, tuples/intervals, sets, unions, matrices and equations.

``parse_answer`` splits a normalised answer at top-level separators (``,``, ``\\cup``, ``=``,
``&``/``\\cr`` in matrices) and hands each scalar to the safe expression parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .normalize import THOUSANDS_RE, mixed_to_sum
from .relations import inequality_node, inequality_text
from .safe_parse import Parsed, ParseError, parse_expression

# Most elements in one tuple/set/matrix; bounds the quadratic unordered matching.
MAX_ITEMS = 64


@dataclass(frozen=True)
class Scalar:
    """One expression; ``parsed`` is None when it is plain text."""

    text: str
    parsed: Parsed | None


@dataclass(frozen=True)
class Seq:
    """Ordered: tuple ``(a, b)``, interval ``[a, b)``, vector ``\\langle a, b\\rangle``."""

    open: str
    close: str
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Coll:
    """Unordered: a ``\\{...\\}`` set or a bare list ``a, b`` (all solutions); ``bare`` for a
    list (joined by ``,``, ``;``, ``and``, ``or``, or written ``a \\pm b``), which flattens
    into a list it is joined to: ``7, 12 or 3`` is the list 7, 12, 3."""

    items: tuple[Node, ...]
    bare: bool = False


@dataclass(frozen=True)
class UnionOf:
    """``A \\cup B``: compared as an unordered collection of parts."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Matrix:
    rows: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs``; ``simple`` when lhs is a lone name (``x``, ``f(x)``, ``\\theta``)."""

    lhs: Node
    rhs: Node
    simple: bool


Node = Scalar | Seq | Coll | UnionOf | Matrix | Equation

_OPEN = "([{"
_CLOSE = ")]}"
_NAME = r"(?:[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|\\[a-zA-Z]+)"
# A product of up to four names (`AM`, `V_{1}`, `ab`): the parts of a ratio or fraction label.
_NAMES = r"(?:(?:[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|\\[a-zA-Z]+\s*){1,4})"
# A label before `=` (method.md 7.1): `x`, `f(x)`, `\theta`, `(p,q)`, `AB`, `|AB|`,
# `\overline{AB}`, `m\angle ABC`, and ratios or fractions of names: `V_1:V_2`, `AM/MC`,
# `\frac{AM}{MC}`.
_SIMPLE_LHS_RE = re.compile(
    rf"^(?:{_NAME}(?:\s*\(\s*[a-zA-Z]\s*\))?"
    rf"|\(\s*{_NAME}(?:\s*,\s*{_NAME})+\s*\)"
    r"|[A-Z]{1,4}|\|\s*[A-Z]{1,4}\s*\||\\overline\{[A-Z]{1,4}\}"
    r"|(?:m\s*)?\\angle\s*[A-Z]{1,3}"
    rf"|{_NAMES}(?:\s*[:/]\s*{_NAMES})+"
    rf"|\\frac\s*\{{\s*{_NAMES}\s*\}}\s*\{{\s*{_NAMES}\s*\}})$"
)
# Top-level list joiners besides `,` (method.md 7.1): `2 and 3`, `x = 1 or x = 2`, `1; 2`,
# `(9,2)or(2,9)`, `1, 2, and 3`: `and`/`or` as words, with or without spaces (and a comma
# before them), never inside a word or command.
JOIN_RE = re.compile(r"\s*,?\s*(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])\s*|\s*;\s*")
_MATRIX_RE = re.compile(
    r"^\\begin\{([pbvBV]?matrix|smallmatrix|array)\}(.*)\\end\{\1\}$", re.DOTALL
)


def _depth_map(s: str) -> list[int]:
    """Bracket depth before each character, counting ``\\{``/``\\}`` like braces."""
    depths = []
    d = 0
    for c in s:
        if c in _CLOSE:
            d -= 1
        depths.append(d)
        if c in _OPEN:
            d += 1
    return depths


def split_top(s: str, sep: str) -> list[str]:
    """Split ``s`` at occurrences of ``sep`` outside any bracket."""
    if sep not in s:
        return [s]
    depths = _depth_map(s)
    parts = []
    start = 0
    i = 0
    while i < len(s):
        if depths[i] == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            i += len(sep)
            start = i
        else:
            i += 1
    parts.append(s[start:])
    return parts


def outer_spans(s: str) -> bool:
    """True when the bracket opened at ``s[0]`` closes at the last character."""
    depths = _depth_map(s)
    return len(s) >= 2 and all(d > 0 for d in depths[1:-1]) and depths[-1] == 0


def _split_equation(s: str) -> list[str]:
    """Split at top-level ``=`` that are not part of ``<=``, ``>=``, ``!=``, ``\\le``."""
    parts = split_top(s, "=")
    if len(parts) < 2:
        return parts
    for left in parts[:-1]:
        if left.endswith(("<", ">", "!", ":")):
            return [s]
    return parts


def _items(inner: str) -> tuple[Node, ...]:
    parts = split_top(inner, ",")
    if len(parts) > MAX_ITEMS:
        raise ValueError("too many items")
    return tuple(parse_answer(p) for p in parts)


def _scalar(s: str) -> Scalar:
    s = mixed_to_sum(s)
    try:
        return Scalar(s, parse_expression(s))
    except ParseError:
        return Scalar(s, None)


def _matrix(body: str, env: str) -> Matrix:
    if env == "array":
        body = re.sub(r"^\s*\{[^{}]*\}", "", body)  # column spec `{cc}`
    rows = [r for r in re.split(r"\\cr(?![a-zA-Z])", body) if r.strip() and r.strip() != "\\hline"]
    if len(rows) > MAX_ITEMS:
        raise ValueError("too many rows")
    cells = []
    for r in rows:
        cols = r.replace("\\hline", "").split("&")
        if len(cols) > MAX_ITEMS:
            raise ValueError("too many columns")
        cells.append(tuple(parse_answer(c) for c in cols))
    return Matrix(tuple(cells))


def split_joined(s: str) -> tuple[list[str], list[str]] | None:
    """Parts and joiners (``and``, ``or``, ``;``) of ``s`` at top level, or None."""
    if ";" not in s and "and" not in s and "or" not in s:
        return None
    depths = _depth_map(s)
    cuts = [m for m in JOIN_RE.finditer(s) if depths[m.start()] == 0]
    if not cuts:
        return None
    if len(cuts) >= MAX_ITEMS:
        raise ValueError("too many items")
    bounds = [0, *(x for m in cuts for x in (m.start(), m.end())), len(s)]
    parts = [s[bounds[i] : bounds[i + 1]].strip() for i in range(0, len(bounds), 2)]
    if any(not p for p in parts):
        return None
    return parts, [m.group(0).strip(" ,") for m in cuts]


def _split_joined(s: str) -> Node | None:
    """``a and b`` / ``a or b`` / ``a; b`` at top level: a list, flat (``7, 12 or 3`` is three
    elements); inequalities joined by ``or`` are the union of their intervals."""
    found = split_joined(s)
    if found is None:
        return None
    parts, joiners = found
    if all(j == "or" for j in joiners):
        intervals = [inequality_text(p) for p in parts]
        if all(iv is not None for iv in intervals):
            return UnionOf(tuple(parse_answer(t) for iv in intervals for t in iv))  # type: ignore[union-attr]
    items: list[Node] = []
    for p in parts:
        node = parse_answer(p)
        items.extend(node.items if isinstance(node, Coll) and node.bare else (node,))
    if len(items) > MAX_ITEMS:
        raise ValueError("too many items")
    return Coll(tuple(items), bare=True)


def parse_answer(s: str) -> Node:
    """Parse a normalised answer into its structure (never evaluates text as code)."""
    s = s.strip()
    while s[:1] == "{" and outer_spans(s):
        s = s[1:-1].strip()  # bare braces are grouping (method.md 7.1): `{1,2}` is the list 1, 2
    if THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")  # also on the right of `x = 58,500`
    if s.count("\\pm") == 1 and "\\mp" not in s:
        # `1 \pm \sqrt{2}` is the set of both values.
        plus, minus = parse_answer(s.replace("\\pm", "+")), parse_answer(s.replace("\\pm", "-"))
        return Coll((plus, minus), bare=True)
    joined = _split_joined(s)
    if joined is not None:
        return joined
    parts = split_top(s, "\\cup")
    if len(parts) > 1:
        return UnionOf(tuple(parse_answer(p) for p in parts))
    m = _MATRIX_RE.match(s)
    if m:
        return _matrix(m.group(2), m.group(1))
    commas = split_top(s, ",")
    if len(commas) > 1 and not THOUSANDS_RE.fullmatch(_split_equation(s)[-1].strip()):
        if len(commas) > MAX_ITEMS:
            raise ValueError("too many items")
        return Coll(tuple(parse_answer(p) for p in commas), bare=True)
    ineq = inequality_node(s, parse_answer, UnionOf)
    if ineq is not None:
        return ineq
    eq = _split_equation(s)
    if len(eq) >= 2:
        lhs, rhs = eq[0].strip(), eq[-1].strip()
        return Equation(parse_answer(lhs), parse_answer(rhs), bool(_SIMPLE_LHS_RE.match(lhs)))
    m = re.match(r"^(.+?)\\in(?![a-zA-Z])(.+)$", s)
    if m and _SIMPLE_LHS_RE.match(m.group(1).strip()):
        return parse_answer(m.group(2))  # `x \in [1, 2]`
    if s.startswith("\\{") and s.endswith("\\}") and outer_spans(s[1:]):
        inner = s[2:-2].strip()
        return Coll(_items(inner) if inner else ())
    if s.startswith("\\langle") and s.endswith("\\rangle"):
        return Seq("(", ")", _items(s[len("\\langle") : -len("\\rangle")]))
    if s[:1] in "([" and s[-1:] in ")]" and outer_spans(s):
        inner = s[1:-1]
        if len(split_top(inner, ",")) >= 2:
            return Seq(s[0], s[-1], _items(inner))
        if s[0] + s[-1] in ("()", "[]") and inner.strip():
            return parse_answer(inner)  # redundant brackets: `(52_8)`, `(\begin{pmatrix}..)`
    return _scalar(s)
