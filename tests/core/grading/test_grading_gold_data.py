"""Gold answers of the shared data sets: extraction coverage and consistency.

Quick tests read `sample.jsonl`; the full-set tests grade every record on the pool and
still take only seconds, so they are not marked slow.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from grading_data import load_jsonl

from svpo_harness.grading import extract_answer, grade_many


def gsm8k_gold(r: dict) -> str:
    return r["answer"].split("#### ")[-1].strip()


def boxed_gold(r: dict) -> str:
    got = extract_answer(r["solution"], "boxed")
    assert got is not None, r.get("unique_id", r.get("idx"))
    return got.answer


# set -> (gold answer of a record); data/README.md says where each gold lives.
GOLD: dict[str, Callable[[dict], object]] = {
    "gsm8k": gsm8k_gold,
    "math": boxed_gold,
    "math500": lambda r: r["answer"],
    "gaokao2023en": lambda r: r["answer"],
    "ocw": boxed_gold,
    "svamp": lambda r: r["Answer"],
    "asdiv": lambda r: r["answer"],
    "mawps": lambda r: r["target"],
    "tabmwp": lambda r: r["answer"],
    "gsm_hard": lambda r: r["target"],
    "college_math": lambda r: r["answer"],
}
# Gold answers that are empty in the source data itself (not an extraction failure).
EMPTY_GOLD = {"gaokao2023en": 2}
# MATH train records whose solution ends in an empty `\boxed{}` in the original release.
EMPTY_BOX_MATH_TRAIN = 2
# MATH train solutions with a text marker after their last box ("so our answer is then
# \[...64\]", "the answer is 24?"): the answer marked last wins (method.md 7.1).
TEXT_MARKER_AFTER_BOX = {"train/algebra/1074.json", "train/counting_and_probability/841.json"}


# Neighbouring golds (record i against record i + 1, the last against the first) that grade as
# equivalent: the same answer twice, or forms the grader calls equal ("\\frac{3}{4}" and
# "\\frac34", "7 (bracelets)" and "7 (students)", "928" and "927.5" within OCW's tolerance).
NEIGHBOURS_EQUAL_SAMPLE = {"tabmwp": 1}
NEIGHBOURS_EQUAL_TEST = {
    "asdiv": 47, "college_math": 1, "gaokao2023en": 9, "gsm8k": 15, "gsm_hard": 0, "math": 44,
    "math500": 3, "mawps": 94, "ocw": 1, "svamp": 18, "tabmwp": 10,
}  # fmt: skip


def _boxed(gold: object) -> object:
    """The gold written as a model would mark it, extracted again (strict)."""
    return extract_answer(f"So the answer is $\\boxed{{{gold}}}$.", style="strict")


def _check_golds(golds: list, neighbours_equal: int) -> None:
    """Each gold matches its own boxed rendering; its neighbour only as often as known."""
    verdicts = grade_many([(_boxed(g), g) for g in golds], processes=2)
    assert [g for g, ok in zip(golds, verdicts, strict=True) if not ok] == []
    rotated = golds[1:] + golds[:1]
    assert sum(grade_many(list(zip(golds, rotated, strict=True)), processes=2)) == neighbours_equal


@pytest.mark.parametrize("name", sorted(GOLD))
def test_sample_gold_matches_its_boxed_form_and_not_its_neighbour(
    shared_data: Path, name: str
) -> None:
    rows = load_jsonl(shared_data / name / "sample.jsonl")
    _check_golds([GOLD[name](r) for r in rows], NEIGHBOURS_EQUAL_SAMPLE.get(name, 0))


@pytest.mark.parametrize("name", sorted(GOLD))
def test_full_gold_matches_its_boxed_form_and_not_its_neighbour(
    shared_data: Path, name: str
) -> None:
    rows = load_jsonl(shared_data / name / "test.jsonl")
    golds = [GOLD[name](r) for r in rows]
    nonempty = [g for g in golds if str(g).strip()]
    assert len(golds) - len(nonempty) == EMPTY_GOLD.get(name, 0)
    _check_golds(nonempty, NEIGHBOURS_EQUAL_TEST[name])


@pytest.mark.parametrize(
    ("path", "field", "kind"),
    [
        ("gsm8k/train.jsonl", "answer", "gsm8k"),
        ("gsm8k/test.jsonl", "answer", "gsm8k"),
        ("math/train.jsonl", "solution", "boxed"),
        ("math/test.jsonl", "solution", "boxed"),
        ("math500/test.jsonl", "solution", "boxed"),
        ("ocw/test.jsonl", "solution", "boxed"),
    ],
)
def test_answer_extracted_from_every_gold_solution(
    shared_data: Path, path: str, field: str, kind: str
) -> None:
    rows = load_jsonl(shared_data / path)
    got = [extract_answer(r[field]) for r in rows]
    assert all(g is not None and not g.is_fallback for g in got)
    other = {r.get("unique_id") for r, g in zip(rows, got, strict=True) if g.kind != kind}
    assert other == (TEXT_MARKER_AFTER_BOX if path == "math/train.jsonl" else set())
    empty = sum(not g.answer for g in got)
    assert empty == (EMPTY_BOX_MATH_TRAIN if path == "math/train.jsonl" else 0)


def test_brace_less_boxed_in_math_train(shared_data: Path) -> None:
    rows = {r["unique_id"]: r for r in load_jsonl(shared_data / "math/train.jsonl")}
    for uid, ans in (("train/algebra/24014.json", "2"), ("train/algebra/25040.json", "9")):
        assert extract_answer(rows[uid]["solution"]).answer == ans


def test_math500_solution_matches_answer(shared_data: Path) -> None:
    rows = load_jsonl(shared_data / "math500/test.jsonl")
    pairs = [(extract_answer(r["solution"]).answer, r["answer"]) for r in rows]
    assert all(grade_many(pairs, processes=2))


@pytest.mark.parametrize("split", ["train", "test"])
def test_gsm8k_solution_matches_gold(shared_data: Path, split: str) -> None:
    rows = load_jsonl(shared_data / f"gsm8k/{split}.jsonl")
    # The gold is the text after `#### `, thousands commas stripped (data/README.md).
    pairs = [(extract_answer(r["answer"]).answer, gsm8k_gold(r).replace(",", "")) for r in rows]
    assert all(grade_many(pairs, processes=2))
