"""What counts as an answer value (method.md 7.1), shared by ``is_equiv`` and ``grade_many``.

An answer is a string, a number (``27.0`` from a float gold field) or an ``ExtractedAnswer``
(what ``extract_answer`` returns); ``None`` means nothing was extracted and grades False.
Anything else (a list, a dict, a bool) is a programming error: ``TypeError``, never a silent
False. Any *string*, however hostile, is an answer.
"""

from __future__ import annotations

from typing import Any

from .extract import ExtractedAnswer


def answer_text(x: Any) -> str | None:
    """The answer string of ``x``; None for None; raises ``TypeError`` for a non-answer."""
    if isinstance(x, str):
        return x
    if isinstance(x, ExtractedAnswer):
        return x.answer
    if x is None:
        return None
    if isinstance(x, bool):
        raise TypeError("a bool is not an answer (expected str, number or ExtractedAnswer)")
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        return repr(x)
    raise TypeError(
        f"a {type(x).__name__} is not an answer (expected str, int, float, ExtractedAnswer or "
        "None); pass one answer per call"
    )
