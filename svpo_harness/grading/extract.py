"""Final-answer extraction from model text and gold solutions (pure regex, no sympy).

Marked forms, in the priority ``extract_answer`` uses:

1. the last well-formed ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces; also ``\\boxed 2``);
2. otherwise the marker that starts latest in the text among GSM8K ``#### x``,
   ``The answer is x``, ``Final Answer: x`` and an ``A: x`` last line (GSM8K model solutions);
3. (``flexible``/``auto`` only) the last number in the text, reported with ``is_fallback=True``.

method.md section 2: a step is final only when a *marked* answer is found, so
``has_marked_answer`` never looks at the last-number fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Style = Literal["auto", "flexible", "strict", "boxed", "gsm8k"]
STYLES: tuple[str, ...] = ("auto", "flexible", "strict", "boxed", "gsm8k")

# Longest text we scan. Model outputs are a few KB; this keeps regex work bounded on junk.
MAX_TEXT_CHARS = 200_000
# Longest marked answer we return; longer spans are junk, not answers.
MAX_ANSWER_CHARS = 1_000


@dataclass(frozen=True)
class ExtractedAnswer:
    """One extracted final answer.

    ``answer`` is the raw answer text (not normalised), ``kind`` names the marker that found
    it (``boxed``, ``gsm8k``, ``the_answer_is``, ``final_answer``, ``a_colon``,
    ``last_number``), ``start`` is its offset in the text, and ``is_fallback`` is True only
    for the unmarked last-number fallback.
    """

    answer: str
    kind: str
    start: int
    is_fallback: bool = False


_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![a-zA-Z])")
_BARE_TOKEN_RE = re.compile(r"[^\s$]+")
_GSM8K_RE = re.compile(r"####[ \t]*([^\n]*)")
_ANSWER_IS_RE = re.compile(r"\b(?:the )?(?:final )?answer is[ \t]*:?[ \t]*([^\n]*)", re.IGNORECASE)
_FINAL_ANSWER_RE = re.compile(r"final answer[ \t]*:[ \t]*([^\n]*)", re.IGNORECASE)
# Last-number fallback: thousands groups, decimals, plain fractions like 3/4.
_NUMBER_RE = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?![\w])|(?<![\w.])-?\.\d+"
)


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        hint = " (already extracted: use it directly)" if isinstance(text, ExtractedAnswer) else ""
        raise TypeError(f"expected the solution text (str), got {type(text).__name__}{hint}")


def _brace_pairs(text: str) -> dict[int, int]:
    """Map each ``{`` offset to its closing ``}`` in one linear pass (escaped braces skipped).

    One pass instead of a scan per ``\\boxed{``: hostile text with thousands of unterminated
    boxes would otherwise cost quadratic time.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            pairs[stack.pop()] = i
        i += 1
    return pairs


def _boxed_candidates(text: str) -> list[tuple[int, str]]:
    """All well-formed boxed contents as (start, content), in text order."""
    out: list[tuple[int, str]] = []
    pairs: dict[int, int] | None = None
    for m in _BOX_RE.finditer(text):
        j = m.end()
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            if pairs is None:
                pairs = _brace_pairs(text)
            end = pairs.get(j, -1)
            if end < 0:
                continue  # unterminated: not an answer
            out.append((j + 1, text[j + 1 : end].strip()))
        elif j > m.end():
            # Brace-less form `\boxed 2` (two MATH train records): one token up to space or `$`.
            tok = _BARE_TOKEN_RE.match(text, j)
            if tok:
                out.append((j, tok.group(0).rstrip(".")))
    return out


def extract_boxed(text: str) -> str | None:
    """Content of the last well-formed ``\\boxed{}``/``\\fbox{}`` in ``text``, or None."""
    _check_text(text)
    cands = _boxed_candidates(text[-MAX_TEXT_CHARS:])
    return cands[-1][1] if cands else None


def _clean_tail(span: str) -> str:
    """Cut a marker's captured line down to the answer: `$...$` content or the first sentence."""
    s = span.split("</", 1)[0].strip()  # tool format: `<p>Final Answer: 12</p>`
    if s.startswith("$"):
        # `$5$. I hope it is correct.` -> `5`; `$$x$$` too.
        inner = s.lstrip("$")
        end = inner.find("$")
        if end >= 0:
            return inner[:end].strip()
    # Sentence end: a period followed by a space/end, not a decimal point.
    m = re.search(r"\.(?:\s|$)", s)
    if m:
        s = s[: m.start()]
    return s.strip().rstrip(".").strip()


def _marked_candidates(text: str, kinds: tuple[str, ...]) -> list[ExtractedAnswer]:
    out: list[ExtractedAnswer] = []
    if "gsm8k" in kinds:
        for m in _GSM8K_RE.finditer(text):
            out.append(ExtractedAnswer(m.group(1).strip(), "gsm8k", m.start(1)))
    if "the_answer_is" in kinds:
        for m in _ANSWER_IS_RE.finditer(text):
            out.append(ExtractedAnswer(_clean_tail(m.group(1)), "the_answer_is", m.start(1)))
    if "final_answer" in kinds:
        for m in _FINAL_ANSWER_RE.finditer(text):
            out.append(ExtractedAnswer(_clean_tail(m.group(1)), "final_answer", m.start(1)))
    if "a_colon" in kinds:
        # Only the last non-empty line; string ops, not a regex, so junk cannot backtrack.
        body = text.rstrip()
        start = body.rfind("\n") + 1
        line = body[start:]
        stripped = line.lstrip(" \t")
        if stripped.startswith("A:") and stripped[2:].strip():
            pos = start + len(line) - len(stripped) + 2
            out.append(ExtractedAnswer(_clean_tail(stripped[2:]), "a_colon", pos))
    return [c for c in out if c.answer and len(c.answer) <= MAX_ANSWER_CHARS]


_TEXT_MARKERS = ("gsm8k", "the_answer_is", "final_answer", "a_colon")


def _marked(text: str, style: str) -> ExtractedAnswer | None:
    if style in ("auto", "flexible", "strict", "boxed"):
        boxed = _boxed_candidates(text)
        if boxed:
            start, content = boxed[-1]
            # An empty `\boxed{}` is still a marked (wrong) answer: the step is final.
            if len(content) <= MAX_ANSWER_CHARS:
                return ExtractedAnswer(content, "boxed", start)
        if style == "boxed":
            return None
    kinds = ("gsm8k",) if style == "gsm8k" else _TEXT_MARKERS
    cands = _marked_candidates(text, kinds)
    if not cands:
        return None
    return max(cands, key=lambda c: c.start)  # the marker written last wins


def _last_number(text: str) -> ExtractedAnswer | None:
    last = None
    for m in _NUMBER_RE.finditer(text):
        last = m
    if last is None:
        return None
    return ExtractedAnswer(last.group(0), "last_number", last.start(), is_fallback=True)


def extract_answer(text: str, style: str = "auto") -> ExtractedAnswer | None:
    """Extract the final answer from a solution.

    ``style``:

    - ``auto`` / ``flexible``: marked forms (boxed first, then the latest text marker), else the
      last number as a fallback (``is_fallback=True``);
    - ``strict``: marked forms only, never a fallback;
    - ``boxed``: only ``\\boxed{}``/``\\fbox{}``;
    - ``gsm8k``: only ``#### x``.

    Never raises on model text (any string); returns None when nothing is found. A value that
    is not text (None, an ``ExtractedAnswer``, a list) raises ``TypeError``.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; expected one of {', '.join(STYLES)}")
    _check_text(text)
    if not text:
        return None
    text = text[-MAX_TEXT_CHARS:]
    found = _marked(text, style)
    if found is not None or style in ("strict", "boxed", "gsm8k"):
        return found
    return _last_number(text)


def has_marked_answer(text: str) -> bool:
    """True when ``text`` carries a marked final answer (boxed, ####, answer is, Final Answer:).

    Step formats use this to decide that a step is final (method.md section 2); the
    last-number fallback never counts.
    """
    return extract_answer(text, "strict") is not None
