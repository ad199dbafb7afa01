"""GSM8K model solutions: flexible-mode verdicts against the authors' `is_correct` labels."""

from __future__ import annotations

from pathlib import Path

from grading_data import load_jsonl

from svpo_harness.grading import extract_answer, grade_many

MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def test_flexible_verdicts_agree_with_labels(shared_data: Path) -> None:
    rows = load_jsonl(shared_data / "gsm8k/model_solutions.jsonl")
    pairs, labels = [], []
    for r in rows:
        gold = extract_answer(r["ground_truth"], "strict")
        assert gold is not None and gold.kind == "a_colon"
        for m in MODELS:
            got = extract_answer(r[m]["solution"], "flexible")
            pairs.append((got.answer if got else "", gold.answer))
            labels.append(r[m]["is_correct"])
    verdicts = grade_many(pairs, processes=2)
    disagree = [(p, lab) for p, v, lab in zip(pairs, verdicts, labels, strict=True) if v != lab]
    print(f"agreement {len(pairs) - len(disagree)}/{len(pairs)}")
    assert len(pairs) == 5276 and sum(labels) == 2001
    assert disagree == []  # every disagreement was investigated; there are none left
