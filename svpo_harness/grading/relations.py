"""Relations in answers (method.md 7.1): one-variable inequalities read as intervals.

``x > 5`` is ``(5, \\infty)``, ``x \\ge 5`` is ``[5, \\infty)``, ``-2 < x \\le 7`` is
``(-2, 7]``, ``x \\ne 3`` is ``(-\\infty, 3) \\cup (3, \\infty)``, and inequalities joined by
``or`` are the union of their intervals; so an inequality equals the same set written as an
interval and ``x \\ge 5`` is not ``x > 5``. Relation spellings (``\\geq``, ``>=``, ``≥``...)
are unified by ``normalize.normalize_answer`` before this runs. Pure string work.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

# After normalisation a relation is one of these (outside brackets).
_REL_RE = re.compile(r"\\le(?![a-zA-Z])|\\ge(?![a-zA-Z])|\\ne(?![a-zA-Z])|<|>")
_NAME_RE = re.compile(r"^(?:[a-zA-Z](?:_\{?[a-zA-Z0-9]+\}?)?|\\[a-zA-Z]+)$")
_LESS = {"<": False, "\\le": True}  # op -> closed end
_MORE = {">": False, "\\ge": True}
_FLIP = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le", "\\ne": "\\ne"}


def _depths(s: str) -> list[int]:
    out, d = [], 0
    for c in s:
        if c in ")]}":
            d -= 1
        out.append(d)
        if c in "([{":
            d += 1
    return out


def split_relations(s: str) -> tuple[list[str], list[str]] | None:
    """Operands and operators of a top-level relation chain, or None when there is none."""
    if "<" not in s and ">" not in s and "\\le" not in s and "\\ge" not in s and "\\ne" not in s:
        return None
    depths = _depths(s)
    parts, ops, start = [], [], 0
    for m in _REL_RE.finditer(s):
        if depths[m.start()] == 0:
            parts.append(s[start : m.start()].strip())
            ops.append(m.group(0))
            start = m.end()
    if not ops:
        return None
    parts.append(s[start:].strip())
    return parts, ops


def inequality_text(s: str) -> list[str] | None:
    """An interval (or two, for ``\\ne``) in text form for a one-variable inequality, else None.

    ``x > 5`` -> ``["(5, \\infty)"]``; ``1 < x \\le 2`` -> ``["(1, 2]"]``; ``5 < x`` too.
    """
    rel = split_relations(s)
    if rel is None:
        return None
    parts, ops = rel
    if any(not p for p in parts):
        return None
    if len(ops) == 1:
        (a, b), (op,) = parts, ops
        if _NAME_RE.match(a) and not _NAME_RE.match(b):
            return _one_sided(op, b)
        if _NAME_RE.match(b) and not _NAME_RE.match(a):
            return _one_sided(_FLIP[op], a)
        return None
    if len(ops) == 2 and _NAME_RE.match(parts[1]) and "\\ne" not in ops:
        lo, hi = parts[0], parts[2]
        if ops[0] in _LESS and ops[1] in _LESS:
            return [_interval(lo, _LESS[ops[0]], hi, _LESS[ops[1]])]
        if ops[0] in _MORE and ops[1] in _MORE:
            return [_interval(hi, _MORE[ops[1]], lo, _MORE[ops[0]])]
    return None


def _interval(lo: str, lo_closed: bool, hi: str, hi_closed: bool) -> str:
    return ("[" if lo_closed else "(") + f"{lo}, {hi}" + ("]" if hi_closed else ")")


def _one_sided(op: str, bound: str) -> list[str]:
    if op in _LESS:
        return [_interval("-\\infty", False, bound, _LESS[op])]
    if op in _MORE:
        return [_interval(bound, _MORE[op], "\\infty", False)]
    return [_interval("-\\infty", False, bound, False), _interval(bound, False, "\\infty", False)]


def inequality_node(s: str, parse: Callable[[str], Any], union: Callable[..., Any]) -> Any:
    """The parsed interval(s) of inequality ``s`` (``union`` builds a union), else None."""
    texts = inequality_text(s)
    if texts is None:
        return None
    nodes = tuple(parse(t) for t in texts)
    return nodes[0] if len(nodes) == 1 else union(nodes)
