"""Answer grading: the project's one answer checker (method.md section 7).

Two verbs and a batch helper:

- ``extract_answer(text, style="auto")`` -> ``ExtractedAnswer | None``;
  ``has_marked_answer(text)`` decides whether a step is final (method.md section 2);
- ``is_equiv(pred, gold, *, timeout=None)`` -> bool; composes with extraction:
  ``is_equiv(extract_answer(text), gold)`` (``None``, nothing extracted, is False);
- ``grade_many(pairs, timeout=5.0, processes=None)`` -> list[bool] on a persistent pool of
  worker processes that are killed when a check runs past its limit.

Importing this package is cheap: sympy loads on the first ``is_equiv`` call, and the pool
starts on the first ``grade_many`` call. It never imports torch, transformers or lm_eval.
"""

from __future__ import annotations

from typing import Any

from .extract import STYLES, ExtractedAnswer, extract_answer, extract_boxed, has_marked_answer
from .pool import grade_many, shutdown_pool

__all__ = [
    "STYLES",
    "ExtractedAnswer",
    "extract_answer",
    "extract_boxed",
    "grade_many",
    "has_marked_answer",
    "is_equiv",
    "shutdown_pool",
]


def is_equiv(pred: Any, gold: Any, *, timeout: float | None = None) -> bool:
    """True when answer ``pred`` is equivalent to gold answer ``gold``.

    Each side is an answer string, a number, or what ``extract_answer`` returns (an
    ``ExtractedAnswer``, or ``None`` when nothing was extracted: False). Any string grades
    False at worst; a value that is no answer at all (list, dict, bool) raises ``TypeError``
    (method.md 7.1). With ``timeout=None`` the check runs in this process, bounded by the
    structural pre-checks (length, nesting, exponent and factorial size). With a ``timeout``
    in seconds it runs on the worker pool, whose worker is killed if the check runs longer
    (counts False).
    """
    if timeout is not None:
        return grade_many([(pred, gold)], timeout=timeout)[0]
    from .equiv import is_equiv as _is_equiv  # lazy: sympy costs ~0.5 s to import

    return _is_equiv(pred, gold)
