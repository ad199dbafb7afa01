"""MATH-500 golds written the ways models write them: 100% with flexible, 0% when perturbed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from grading_data import load_jsonl
from model_written_forms import FORMS, model_form_pairs, perturb, write_forms

from svpo_harness.grading import extract_answer, is_equiv


def test_forms_look_like_model_output() -> None:
    forms = write_forms("(3,2)")
    assert forms["minerva"].endswith(
        "Final Answer: The final answer is $(3,2)$. I hope it is correct."
    )
    assert forms["unmarked_last_line"].endswith("the result is $(3,2)$.")
    assert extract_answer(forms["unmarked_last_line"], "strict") is None  # really unmarked
    assert forms["boxes_on_one_line"].count("\\boxed{(3,2)}") == 2
    assert perturb("(3,2)") == "(4,2)" and perturb("\\pi") == "2\\pi"


def test_math500_model_written_forms(shared_data: Path) -> None:
    golds = [r["answer"] for r in load_jsonl(shared_data / "math500/test.jsonl")]
    good, bad = model_form_pairs(golds)
    assert len(good) == len(bad) == len(golds) * len(FORMS) == 2500
    assert all(perturb(g) != g for g in golds)
    missed = Counter(n for n, text, g in good if not is_equiv(extract_answer(text, "flexible"), g))
    assert missed == Counter()  # 100% with the flexible style
    wrong = Counter(n for n, text, g in bad if is_equiv(extract_answer(text, "flexible"), g))
    assert wrong == Counter()  # 0% with a perturbed answer
