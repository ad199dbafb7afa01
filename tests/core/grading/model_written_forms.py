"""Model-written answer forms built from gold answers (issue 9; method.md 7.1).

Each gold ``X`` is written the ways models write final answers: the Minerva sentence
(lm-eval's math tasks), ``The final answer is $X$``, a box followed by prose, an unmarked
last line ending in a math span, and several boxes on one line. ``perturb`` changes the
answer so that it is no longer equivalent, for the negative half of the set. Used by
``test_grading_model_forms.py`` and ``scripts/bench_grading.py``.
"""

from __future__ import annotations

import re

PREAMBLE = "We first note that $2 + 3 = 5$ and that 7 more steps follow.\n\n"
FORMS: dict[str, str] = {
    "minerva": "Final Answer: The final answer is ${X}$. I hope it is correct.",
    "final_answer_is": "Putting it all together, the final answer is ${X}$.",
    "boxed_then_prose": "So we get $\\boxed{{{X}}}$. We checked this with 3 other methods.",
    "unmarked_last_line": "Putting everything together, the result is ${X}$.",
    "boxes_on_one_line": "That gives $\\boxed{{{X}}}$, and by symmetry again $\\boxed{{{X}}}$.",
}


def write_forms(answer: str) -> dict[str, str]:
    """One model-written solution text per form for gold ``answer``."""
    return {name: PREAMBLE + tpl.format(X=answer) for name, tpl in FORMS.items()}


_DIGIT_RE = re.compile(r"\d")


def perturb(answer: str) -> str:
    """A non-equivalent answer: its first digit changed (``(3,2)`` -> ``(4,2)``), else a
    factor 2 written in front (``\\pi`` -> ``2\\pi``, ``\\text{(C)}`` -> ``2\\text{(C)}``)."""
    m = _DIGIT_RE.search(answer)
    if m is None:
        return "2" + answer
    d = int(m.group(0))
    return answer[: m.start()] + str((d + 1) % 10) + answer[m.end() :]


def model_form_pairs(
    golds: list[str],
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """(form name, text, gold) for every gold and form: correct ones and perturbed ones."""
    good, bad = [], []
    for g in golds:
        for name, text in write_forms(g).items():
            good.append((name, text, g))
        for name, text in write_forms(perturb(g)).items():
            bad.append((name, text, g))
    return good, bad
