"""Reading an answer out of the prose models write around it (method.md 2 and 7.1).

Pure string scanning, no sympy: math spans (``$...$``, ``$$...$$``, ``\\(...\\)``,
``\\[...\\]``), the first sentence of a marker's tail, and the rule for a sentence after a
marker (``Final Answer: The volume of $ABCD$ is 120.`` gives ``120``): what follows its last
``is``, ``=`` or ``:`` outside math, else its last math span or number. Every scan is linear.
"""

from __future__ import annotations

import re

# A number never cut at a unit written without a space (`12.5cm`, `3.50USD`, `1,000.99m^2`),
# never the exponent or subscript of something else (`m^2`, `x_2`, `10^{3}`).
NUMBER_RE = re.compile(
    r"(?<![\w.^,])(?<!\^\{)-?\d+,(?:\d{1,2}|\d{4,})(?![\d,]|\.\d)"  # decimal comma `3,45`
    r"|(?<![\w.^])(?<!\^\{)-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?(?:/\d+)?(?!\d)"
    r"|(?<![\w.^])(?<!\^\{)-?\.\d+(?!\d)"
)
# Prose: a word of three or more letters that is no LaTeX command; `and`/`or` join lists.
_WORD_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")
_LIST_WORDS = frozenset({"and", "or", "infty", "sqrt", "frac", "pmatrix", "text"})
# A clause that follows the answer (`12, since ...`, `5 because ...`): cut there.
_TRAILING_CLAUSE_RE = re.compile(
    r"(?:[,;]\s*|\s+)(?:because|since|which|where|when|as|so|for|if|but|hence|thus|"
    r"therefore|then|while|given|using|by|from|with|after|that)\b",
    re.IGNORECASE,
)
# `5! = 120` is a factorial, `yes! ...` ends a sentence.
_SENTENCE_END_RE = re.compile(r"\.(?=\s|$)|\?|(?<=[A-Za-z])!(?=\s|$)")
_TEXT_GROUP_RE = re.compile(r"\\(?:text\w*|math\w+|mbox|operatorname)\s*\{[^{}]*\}")
# `$5`, `$ 5`, `$.5`, `$-5`: digits right after the dollar sign.
_CURRENCY_RE = re.compile(r"\s*-?\.?\d")
_LABEL_RE = re.compile(r"\s(?:is|are|was|equals|be)\s|=|:")


def math_spans(text: str) -> list[tuple[int, int, int, int]]:
    """(open start, content start, content end, close end) of each math span, in order.

    ``$...$`` pairs that look like currency (``$5 and $6``: content with an outer space or a
    digit right after the closing ``$``) are not math. Escaped ``\\$`` is text.
    """
    out: list[tuple[int, int, int, int]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in "([":
                close = "\\)" if nxt == "(" else "\\]"
                end = text.find(close, i + 2)
                if end < 0:
                    return out
                out.append((i, i + 2, end, end + 2))
                i = end + 2
                continue
            i += 2
            continue
        if c == "$":
            delim = "$$" if text.startswith("$$", i) else "$"
            start = i + len(delim)
            end = _find_unescaped(text, delim, start)
            if end < 0:
                return out
            content = text[start:end]
            after = text[end + len(delim) : end + len(delim) + 1]
            if content.strip() and (delim == "$$" or _is_math(content, after)):
                out.append((i, start, end, end + len(delim)))
                i = end + len(delim)
            else:
                i = end  # currency: the closing `$` may open the next span
            continue
        i += 1
    return out


def _is_math(content: str, after: str) -> bool:
    """Whether ``$content$`` is math. A ``$`` followed by digits is currency (``$5 and $``)
    unless the span is tight (``$5$``, ``$7,12,3$``) or holds LaTeX (``$ 1 \\pm \\sqrt{2} $``);
    other content may have spaces inside the dollars (``$ \\begin{pmatrix}..\\end{pmatrix} $``).
    Prose inside means currency either way."""
    if after.isdigit() or _prose_in_math(content):
        return False
    if _CURRENCY_RE.match(content):
        return content == content.strip() or "\\" in content
    return True


def _find_unescaped(text: str, delim: str, start: int) -> int:
    j = text.find(delim, start)
    while j > 0 and text[j - 1] == "\\":
        j = text.find(delim, j + 1)
    return j


def _outside_math(text: str) -> list[bool]:
    mask = [True] * len(text)
    for a, _, _, d in math_spans(text):
        for k in range(a, d):
            mask[k] = False
    return mask


def _prose_in_math(content: str) -> bool:
    """Prose in a ``$...$`` candidate (currency, not math), words in ``\\text{}`` aside."""
    return has_prose(_TEXT_GROUP_RE.sub(" ", content))


def has_prose(text: str) -> bool:
    """True when ``text`` has a word of prose (not a LaTeX command, not ``and``/``or``)."""
    return any(m.group(0).lower() not in _LIST_WORDS for m in _WORD_RE.finditer(text))


def _prose_outside_math(text: str) -> bool:
    mask = _outside_math(text)
    return any(
        mask[m.start()] and m.group(0).lower() not in _LIST_WORDS for m in _WORD_RE.finditer(text)
    )


def first_sentence(text: str) -> str:
    """``text`` up to the first sentence end (``. ``, ``?``, ``yes!``) outside math spans."""
    mask = _outside_math(text)
    for m in _SENTENCE_END_RE.finditer(text):
        if mask[m.start()]:
            return text[: m.start()]
    return text


def strip_delimiters(text: str) -> str:
    """A whole-span answer without its delimiters: ``$5$`` -> ``5``."""
    spans = math_spans(text)
    if len(spans) == 1 and spans[0][0] == 0 and spans[0][3] == len(text):
        return text[spans[0][1] : spans[0][2]].strip()
    return text.strip()


def last_math_or_number(text: str) -> tuple[int, str, str] | None:
    """(offset, answer, ``math_span``/``last_number``): the last math span, or the last number
    when it comes after that span.

    A number inside or before the last math span loses to it (``so the pair is $(3,2)$.``);
    a number written after it wins (``$x = 2$, so the area is 12.``).
    """
    spans = math_spans(text)
    num = None
    for m in NUMBER_RE.finditer(text):
        num = m
    if spans and (num is None or num.start() < spans[-1][3]):
        _, a, b, _ = spans[-1]
        return a, text[a:b].strip(), "math_span"
    if num is not None:
        return num.start(), num.group(0), "last_number"
    return None


def answer_from_tail(span: str) -> str:
    """The answer in the text that follows a marker (``The answer is``, ``Final Answer:``).

    The first sentence only; a clause after the answer (``, since ...``) is cut; a sentence
    with prose gives what follows its last ``is``/``=``/``:`` outside math, and if that still
    has prose, its last math span or number; text with nothing numeric (``Monday``) stays.
    """
    s = span.split("</", 1)[0].strip()  # tool format: `<p>Final Answer: 12</p>`
    s = first_sentence(s).strip()
    if not _prose_outside_math(s):
        return strip_delimiters(s).rstrip(".").strip()
    mask = _outside_math(s)
    cut = None
    for m in _TRAILING_CLAUSE_RE.finditer(s):
        if mask[m.start()] and m.start() > 0:
            cut = m.start()
            break
    if cut is not None:
        s = s[:cut].rstrip(" ,;")
        mask = mask[: len(s)]
    tail = s
    for m in _LABEL_RE.finditer(s):
        if mask[m.start()]:
            tail = s[m.end() :]
    tail = tail.strip()
    if tail and not _prose_outside_math(tail):
        return strip_delimiters(tail).rstrip(".").strip()
    found = last_math_or_number(tail) or last_math_or_number(s)
    return found[1] if found else s.rstrip(".").strip()
