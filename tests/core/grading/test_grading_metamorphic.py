"""Metamorphic suite over gold answers (MATH-500 and GSM8K test).

Surface variants of a gold answer must stay equivalent to it; perturbations that change
the value (integer + 1, swapped tuple, open interval end made closed) must not.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from grading_data import load_jsonl

from svpo_harness.grading import extract_answer, grade_many
from svpo_harness.grading.structure import split_top

_INT_RE = re.compile(r"-?\d+")


def gold_answers(shared_data: Path) -> list[str]:
    m500 = [r["answer"] for r in load_jsonl(shared_data / "math500/test.jsonl")]
    gsm_rows = load_jsonl(shared_data / "gsm8k/test.jsonl")
    gsm = [r["answer"].split("#### ")[-1].strip() for r in gsm_rows]
    return m500 + [g.replace(",", "") for g in gsm]


def _is_choice_or_text(a: str) -> bool:
    return "\\text" in a or bool(re.fullmatch(r"\(?[A-E]\)?", a))


def variants(a: str) -> dict[str, str]:
    """name -> variant that must be equivalent to `a`."""
    out = {
        "boxed": "The answer is $\\boxed{" + a + "}$.",  # graded through extract_answer
        "dollars": "$" + a + "$",
        "spaces": "  " + a.replace("+", " + ") + " ",
    }
    if not re.search(r"\d,(?:\\!)?\s*\d{3}", a):  # commas that are not thousands separators
        out["comma_spaces"] = a.replace(",", " , ")
    if "\\frac" in a:
        out["dfrac"] = a.replace("\\frac", "\\dfrac")
    if a.startswith("(") and a.endswith(")") and len(split_top(a[1:-1], ",")) > 1:
        out["left_right"] = "\\left(" + a[1:-1] + "\\right)"
    if "=" not in a and not _is_choice_or_text(a) and "\\begin" not in a:
        out["x_equals"] = "x = " + a
    if _INT_RE.fullmatch(a) or re.fullmatch(r"-?\d+\.\d+", a):
        out["unit_text"] = a + "\\text{ cm}"
        out["unit_word"] = a + " dollars"
    if _INT_RE.fullmatch(a) and abs(int(a)) >= 1000:
        out["thousands"] = f"{int(a):,}"
    return out


def perturbations(a: str) -> dict[str, str]:
    """name -> perturbation that must NOT be equivalent to `a`."""
    out = {}
    if _INT_RE.fullmatch(a):
        out["plus_one"] = str(int(a) + 1)
    if a.startswith("(") and a.endswith(")"):
        items = split_top(a[1:-1], ",")
        if len(items) == 2 and items[0].strip() != items[1].strip():
            out["swapped"] = "(" + items[1] + "," + items[0] + ")"
        if len(items) == 2:
            out["closed_end"] = "(" + a[1:-1] + "]"
    if a.startswith("[") and a.endswith(")"):
        out["closed_end"] = a[:-1] + "]"
    return out


def _answer_of(pred: str) -> str:
    got = extract_answer(pred, "strict")
    return got.answer if got else pred


def test_metamorphic_variants_and_perturbations(shared_data: Path) -> None:
    golds = gold_answers(shared_data)
    pos, neg = [], []
    for g in golds:
        pos += [(name, _answer_of(v), g) for name, v in variants(g).items()]
        neg += [(name, v, g) for name, v in perturbations(g).items()]
    got_pos = grade_many([(p, g) for _, p, g in pos], processes=2)
    got_neg = grade_many([(p, g) for _, p, g in neg], processes=2)
    bad_pos = [c for c, ok in zip(pos, got_pos, strict=True) if not ok]
    bad_neg = [c for c, ok in zip(neg, got_neg, strict=True) if ok]
    kinds = {name for name, _, _ in pos} | {name for name, _, _ in neg}
    assert {"boxed", "dfrac", "left_right", "x_equals", "thousands", "plus_one", "swapped",
            "closed_end"} <= kinds  # fmt: skip
    assert len(pos) > 4000 and len(neg) > 1000
    assert bad_pos == [], f"{len(bad_pos)} variants not equivalent"
    assert bad_neg == [], f"{len(bad_neg)} perturbations equivalent"


@pytest.mark.parametrize(
    ("gold", "variant"),
    [("\\frac{1}{2}", "\\dfrac{1}{2}"), ("(1,2)", "\\left(1,2\\right)"), ("5000", "5,000")],
)
def test_variant_helper_examples(gold: str, variant: str) -> None:
    assert variant in variants(gold).values()
