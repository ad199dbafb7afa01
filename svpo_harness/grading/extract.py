"""Final-answer extraction from model text and gold solutions (pure regex, no sympy).

Marked forms (method.md 2 and 7.1): the answer marked *last* wins, whatever its marker:

- a well-formed ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces; also ``\\boxed 2``); several
  boxes on the line of the last one are one answer, a list (equal elements collapse);
- GSM8K ``#### x``, ``The (final) answer is x``, ``Final Answer: x`` and an ``A: x`` last line
  (GSM8K model solutions); a sentence after the marker is reduced to its answer
  (``sentence.answer_from_tail``: the Minerva ``The final answer is $X$. I hope it is
  correct.`` gives ``X``). A words-only text answer (``correct``) never overrides an earlier
  mathematical one.

Unmarked (``flexible``/``auto`` only, ``is_fallback=True``): the last math span, or the last
number when it is written after that span; a number is never cut at a unit (``12.5cm``).

method.md section 2: a step is final only when a *marked* answer is found, so
``has_marked_answer`` never looks at the last-number fallback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .normalize import THOUSANDS_RE
from .sentence import answer_from_tail, last_math_or_number

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
    ``math_span``, ``last_number``), ``start`` is its offset in the text, and ``is_fallback``
    is True only for the unmarked fallbacks (``math_span``, ``last_number``).
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


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        hint = " (already extracted: use it directly)" if isinstance(text, ExtractedAnswer) else ""
        raise TypeError(f"expected the solution text (str), got {type(text).__name__}{hint}")


_BRACE_TOKEN_RE = re.compile(r"\\.|[{}]", re.DOTALL)


def _brace_pairs(text: str, start: int) -> dict[int, int]:
    """Map each ``{`` offset (from ``start`` on) to its closing ``}`` in one linear pass.

    One pass instead of a scan per ``\\boxed{``: hostile text with thousands of unterminated
    boxes would otherwise cost quadratic time. Escaped characters (``\\{``) are skipped;
    braces before ``start`` cannot change the pairing of the braces after it.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE_TOKEN_RE.finditer(text, start):
        c = m.group(0)
        if c == "{":
            stack.append(m.start())
        elif c == "}" and stack:
            pairs[stack.pop()] = m.start()
    return pairs


def _boxed_candidates(text: str) -> list[tuple[int, str, int]]:
    """All well-formed boxed contents as (start, content, end of the box), in text order."""
    out: list[tuple[int, str, int]] = []
    pairs: dict[int, int] | None = None
    for m in _BOX_RE.finditer(text):
        j = m.end()
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            if pairs is None:
                pairs = _brace_pairs(text, j)
            end = pairs.get(j, -1)
            if end < 0:
                continue  # unterminated: not an answer
            out.append((j + 1, text[j + 1 : end].strip(), end + 1))
        elif j > m.end():
            # Brace-less form `\boxed 2` (two MATH train records): one token up to space or `$`.
            tok = _BARE_TOKEN_RE.match(text, j)
            if tok:
                out.append((j, tok.group(0).rstrip("."), tok.end()))
    return out


def extract_boxed(text: str) -> str | None:
    """Content of the last well-formed ``\\boxed{}``/``\\fbox{}`` in ``text``, or None."""
    _check_text(text)
    cands = _boxed_candidates(text[-MAX_TEXT_CHARS:])
    return cands[-1][1] if cands else None


def _marked_candidates(text: str, kinds: tuple[str, ...], pos: int = 0) -> list[ExtractedAnswer]:
    """Text-marker answers; the regex markers only from offset ``pos`` on."""
    out: list[ExtractedAnswer] = []
    if "gsm8k" in kinds:
        for m in _GSM8K_RE.finditer(text, pos):
            out.append(ExtractedAnswer(m.group(1).strip(), "gsm8k", m.start(1)))
    if "the_answer_is" in kinds:
        for m in _ANSWER_IS_RE.finditer(text, pos):
            out.append(ExtractedAnswer(answer_from_tail(m.group(1)), "the_answer_is", m.start(1)))
    if "final_answer" in kinds:
        for m in _FINAL_ANSWER_RE.finditer(text, pos):
            out.append(ExtractedAnswer(answer_from_tail(m.group(1)), "final_answer", m.start(1)))
    if "a_colon" in kinds:
        # Only the last non-empty line; string ops, not a regex, so junk cannot backtrack.
        body = text.rstrip()
        start = body.rfind("\n") + 1
        line = body[start:]
        stripped = line.lstrip(" \t")
        if stripped.startswith("A:") and stripped[2:].strip():
            pos = start + len(line) - len(stripped) + 2
            out.append(ExtractedAnswer(answer_from_tail(stripped[2:]), "a_colon", pos))
    return [c for c in out if c.answer and len(c.answer) <= MAX_ANSWER_CHARS]


_TEXT_MARKERS = ("gsm8k", "the_answer_is", "final_answer", "a_colon")
# A text answer with nothing mathematical in it (`correct`, `right`) does not override a
# mathematical answer marked earlier (`\\boxed{5}. Our answer is correct.`).
_WORDS_ONLY_RE = re.compile(r"[A-Za-z][A-Za-z '-]*[A-Za-z]")


def _boxed_group(text: str, boxed: list[tuple[int, str, int]]) -> ExtractedAnswer | None:
    """The last box with every other box on its line: one answer, a list (method.md 7.1).

    Equal elements collapse to one (``\\boxed{350} ... \\boxed{350}`` is ``350``); a lone
    number's thousands commas are dropped so they cannot split the list.
    """
    start, content, _ = boxed[-1]
    if len(content) > MAX_ANSWER_CHARS:
        return None
    line_start = text.rfind("\n", 0, start) + 1
    same_line = [c for s, c, _ in boxed if s >= line_start]
    items: dict[str, None] = {}  # ordered set
    size = 0
    for c in same_line:
        c = c.replace(",", "") if THOUSANDS_RE.fullmatch(c) else c
        if c not in items:
            items[c] = None
            size += len(c) + 2
            if size > MAX_ANSWER_CHARS + 2:
                return None  # a line of many different boxes is junk, not an answer
    if len(items) <= 1:
        # An empty `\\boxed{}` is still a marked (wrong) answer: the step is final.
        return ExtractedAnswer(content, "boxed", start)
    joined = ", ".join(items)
    return ExtractedAnswer(joined, "boxed", start) if len(joined) <= MAX_ANSWER_CHARS else None


def _marked(text: str, style: str) -> ExtractedAnswer | None:
    """The marked answer written last, whatever its marker (method.md 7.1)."""
    cands: list[ExtractedAnswer] = []
    pos = 0
    if style in ("auto", "flexible", "strict", "boxed"):
        boxed = _boxed_candidates(text)
        if style == "boxed":  # the data sets' gold: the last box alone
            if not boxed or len(boxed[-1][1]) > MAX_ANSWER_CHARS:
                return None
            return ExtractedAnswer(boxed[-1][1], "boxed", boxed[-1][0])
        group = _boxed_group(text, boxed) if boxed else None
        if group is not None:
            cands.append(group)
            pos = boxed[-1][2]  # only a marker written after the last box can beat it
    kinds = ("gsm8k",) if style == "gsm8k" else _TEXT_MARKERS
    cands += _marked_candidates(text, kinds, pos)
    if not cands:
        return None
    strong = [c for c in cands if c.kind in ("boxed", "gsm8k") or not _words_only(c.answer)]
    return max(strong or cands, key=lambda c: c.start)  # the marker written last wins


def _words_only(answer: str) -> bool:
    return bool(_WORDS_ONLY_RE.fullmatch(answer.strip(" .,;:!?()'\"")))


def _fallback(text: str) -> ExtractedAnswer | None:
    """Unmarked: the last math span, or the last number when it is written after that span."""
    found = last_math_or_number(text)
    if found is None or not found[1] or len(found[1]) > MAX_ANSWER_CHARS:
        return None
    return ExtractedAnswer(found[1], found[2], found[0], is_fallback=True)


def extract_answer(text: str, style: str = "auto") -> ExtractedAnswer | None:
    """Extract the final answer from a solution.

    ``style``:

    - ``auto`` / ``flexible``: the answer marked last, else the last math span or number as a
      fallback (``is_fallback=True``);
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
    return _fallback(text)


def has_marked_answer(text: str) -> bool:
    """True when ``text`` carries a marked final answer (boxed, ####, answer is, Final Answer:).

    Step formats use this to decide that a step is final (method.md section 2); the
    last-number fallback never counts.
    """
    return extract_answer(text, "strict") is not None
