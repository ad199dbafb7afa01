"""String-level answer normalisation (method.md section 7), before any parsing.

Strips what never changes an answer's value: math delimiters (``$``, ``\\(``), sizing and
spacing commands (``\\left``, ``\\!``, ``\\,``), ``\\dfrac``/``\\tfrac`` spellings, ``\\$``,
``\\%``, degrees (``^\\circ``), trailing units (``\\text{ cm}``, ``5 apples``, ``9 (apples)``),
thousands separators of a lone number (``1,000``, ``1{,}000``) and a trailing period.
Pure ``re``; no sympy, so extraction and step formats stay cheap to import.
"""

from __future__ import annotations

import re

# Commands that only size or space things out; removed outright.
_DROP_RE = re.compile(
    r"\\(?:left|right|big|Big|bigg|Bigg|bigl|bigr|Bigl|Bigr|biggl|biggr|middle)(?![a-zA-Z])"
    r"|\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![a-zA-Z])"
    r"|\\(?:q?quad|enspace|thinspace|medspace|thickspace|negthinspace)(?![a-zA-Z])"
    r"|\\[!,;:> ]"
)
_RENAMES = (
    (re.compile(r"\\[dtc]frac(?![a-zA-Z])"), r"\\frac"),
    (re.compile(r"\\[dt]binom(?![a-zA-Z])"), r"\\binom"),
    # method.md 7.1: one spelling per relation; `\approx`/`\simeq` label an answer like `=`.
    (re.compile(r"\\(?:geqslant|geq)(?![a-zA-Z])|>=|≥|⩾"), r"\\ge "),
    (re.compile(r"\\(?:leqslant|leq)(?![a-zA-Z])|<=|≤|⩽"), r"\\le "),
    (re.compile(r"\\neq(?![a-zA-Z])|(?<=\s)!=|≠"), r"\\ne "),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
    (re.compile(r"\\(?:approx|simeq)(?![a-zA-Z])|≈"), "="),
    (re.compile(r"\\(?:lvert|rvert|vert)(?![a-zA-Z])"), "|"),
    (re.compile(r"\\(?:emptyset|varnothing)(?![a-zA-Z])|∅"), r"\\{\\}"),
    # set notation written in unicode (method.md 7.1: sets compare as sets)
    (re.compile("∪"), r" \\cup "),
    (re.compile("∩"), r" \\cap "),
    (re.compile("∈"), r" \\in "),
    (re.compile("∞"), r"\\infty "),
    (re.compile("ℝ"), r"\\mathbb{R}"),
)
# Degrees and percent: `^\circ`, `^{\circ}`, `°`, `\%`, `%`; `\$` and bare `$` delimiters.
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ(?![a-zA-Z])|°|\\degree(?![a-zA-Z])")
_PERCENT_RE = re.compile(r"\\?%")
_DOLLAR_RE = re.compile(r"\\\$|\$|\\\(|\\\)|\\\[|\\\]")
# `{,}` and `,\!` (MATH's style: `11,\! 111`) are only ever thousands separators in LaTeX.
_BRACE_COMMA_RE = re.compile(r"(?<=\d)(?:\{,\}|,\\!\s*)(?=\d{3}(?!\d))")
THOUSANDS_RE = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# Wrappers whose content is kept as is.
_TEXT_CMD = (
    r"\\(?:text|textbf|textit|textrm|textnormal|mathrm|mathbf|mathit|mbox|operatorname|boxed)"
)
_TEXT_WRAP_RE = re.compile(_TEXT_CMD + r"\s*\{([^{}]*)\}")
_TRAILING_TEXT_RE = re.compile(r"^(.*?\S)\s*" + _TEXT_CMD + r"\s*\{([^{}]*)\}\s*(\^\s*\{?\d\}?)?$")

# A trailing unit: words of letters (and dots), optional `^2`, optional `/s`. No nested
# quantifiers, so a long run of letters cannot make the regex backtrack exponentially.
_TRAILING_UNIT_RE = re.compile(
    r"[a-zA-Z][a-zA-Z.\s]*(?:\^\s*\{?\d\}?)?(?:\s*/\s*[a-zA-Z]+(?:\^\{?\d\}?)?)?\s*$"
)
_PAREN_UNIT_RE = re.compile(r"^(.*?\d)\s+\(([a-zA-Z][a-zA-Z .'-]*)\)$")
# Units that may follow a number with no space (`5cm`); anything else needs a space, so
# `3ab` stays a product.
_KNOWN_UNITS = frozenset(
    "m cm mm km nm g kg mg s ms h hr hrs min l ml L mL in ft yd mi lb lbs oz J kJ N W kW V A K "
    "Pa kPa Hz eV mph kmh cal kcal sq cu units unit dollars dollar cents cent degrees degree "
    "meters meter inches inch feet foot hours hour minutes minute seconds second days day "
    "years year miles mile pounds pound grams gram liters liter percent".split()
)
# Words that are mathematics, not units: never strip them.
_MATH_WORDS = frozenset(
    "sqrt pi sin cos tan cot sec csc log ln exp arcsin arccos arctan sinh cosh tanh "
    "i e x y z n k t a b c d or and infty inf mod pmod".split()
)


def strip_math_delimiters(s: str) -> str:
    """Remove ``$``/``\\(``/``\\[`` delimiters and ``\\$`` currency signs."""
    return _DOLLAR_RE.sub("", s)


def _strip_trailing_unit(s: str) -> str:
    """Drop a trailing unit written as ``\\text{ cm}``, ``cm^2``, ``5 apples`` or ``9 (apples)``."""
    m = _TRAILING_TEXT_RE.match(s)
    if m and _looks_like_unit(m.group(2)):
        return m.group(1).strip()
    m = _PAREN_UNIT_RE.match(s)
    if m:
        return m.group(1).strip()
    m = _TRAILING_UNIT_RE.search(s)
    if m and m.start() > 0:
        head = s[: m.start()]
        spaced = head[-1].isspace()
        head = head.rstrip()
        if head and head[-1] in "0123456789})" and _looks_like_unit(m.group(0), spaced):
            return head
    return s


def _looks_like_unit(text: str, spaced: bool = True) -> bool:
    words = re.findall(r"[a-zA-Z]+", text)
    if not words or len(words) > 4 or any(w in _MATH_WORDS for w in words):
        return False
    if not spaced:
        return all(w in _KNOWN_UNITS for w in words)
    return all(len(w) >= 2 or w in _KNOWN_UNITS for w in words)


def unwrap_text(s: str) -> str:
    """Replace ``\\text{...}``-like wrappers by their content (innermost first)."""
    for _ in range(8):  # bounded: each pass removes one nesting level
        new = _TEXT_WRAP_RE.sub(lambda m: m.group(1), s)
        if new == s:
            break
        s = new
    return s


def normalize_answer(s: str) -> str:
    """Normalise an answer string for comparison (idempotent, never raises on str input)."""
    s = s.replace("\n", " ").replace("\t", " ").replace("\u2212", "-").strip()
    s = strip_math_delimiters(s)
    # A `\\` row break becomes `\cr` (kept only inside environments) before `\,`-style
    # spacing commands are dropped, which would otherwise eat its second backslash.
    s = s.replace("\\\\", " \\cr ") if "\\begin" in s else s.replace("\\\\", " ")
    s = _BRACE_COMMA_RE.sub("", s)  # before `\!` is dropped
    s = _DROP_RE.sub("", s)
    for pat, rep in _RENAMES:
        s = pat.sub(rep, s)
    s = s.replace("~", " ")
    s = _DEGREE_RE.sub("", s)
    s = _PERCENT_RE.sub("", s)
    s = re.sub(r"\s+", " ", s).strip()
    s = s.rstrip(".").strip()  # sentence end, `5.` -> `5`
    s = _strip_trailing_unit(s)
    s = unwrap_text(s).strip()
    s = _strip_trailing_unit(s)
    if THOUSANDS_RE.fullmatch(s):
        s = s.replace(",", "")
    return s.rstrip(".").strip()


# `1\frac{4}{5}` is the mixed number 9/5, not a product (MATH writes them this way).
_MIXED_RE = re.compile(r"^(-?)(\d+)\s*\\frac(?:\{(\d+)\}\{(\d+)\}|(\d)(\d))$")


def mixed_to_sum(s: str) -> str:
    """Rewrite a whole-answer mixed number ``2\frac{1}{3}`` as ``(2+\frac{1}{3})``."""
    m = _MIXED_RE.match(s)
    if not m:
        return s
    sign, whole = m.group(1), m.group(2)
    num, den = (m.group(3), m.group(4)) if m.group(3) else (m.group(5), m.group(6))
    return f"{sign}({whole}+\\frac{{{num}}}{{{den}}})"


_CHOICE_RE = re.compile(r"^\(?\s*([A-E])\s*\)?$|^\(\s*([a-e])\s*\)$")
_CHOICE_PREFIX_RE = re.compile(r"^\(([A-E])\)")


def choice_letter(s: str) -> str | None:
    """The letter of a multiple-choice answer (``C``, ``(C)``, ``\\text{(C)}``), else None."""
    t = unwrap_text(s).strip().strip(".").strip()
    while len(t) > 2 and t[0] == "(" and t[-1] == ")" and t[1:-1].strip()[:1] == "(":
        t = t[1:-1].strip()  # `((C))`
    m = _CHOICE_RE.match(t)
    if m:
        return (m.group(1) or m.group(2)).upper()
    m = _CHOICE_PREFIX_RE.match(t)  # `(C) 12`: the letter is the answer
    return m.group(1) if m else None


def normalize_text(s: str) -> str:
    """Loose form for plain-string answers: text wrappers gone, lower case, no spaces."""
    t = unwrap_text(s)
    t = re.sub(r"\\(?=[a-zA-Z])", "", t)  # `\infty` and `infty` compare equal as text
    t = re.sub(r"[\s{}]", "", t.lower())
    return t.strip(".")
