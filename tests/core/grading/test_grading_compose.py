"""``is_equiv(extract_answer(text), gold)`` composes (method.md 7.1), on every gold solution."""

from __future__ import annotations

from pathlib import Path

import pytest
from grading_data import load_jsonl

from svpo_harness.grading import (
    ExtractedAnswer,
    extract_answer,
    extract_boxed,
    grade_many,
    has_marked_answer,
    is_equiv,
)

NOT_ANSWERS = [["1"], ("1",), {"answer": "1"}, True, False, object(), b"1", {1}]


def test_extracted_answer_is_accepted_everywhere() -> None:
    got = extract_answer(r"so the total is $\boxed{12}$.")
    assert isinstance(got, ExtractedAnswer)
    assert is_equiv(got, "12")
    assert not is_equiv(got, "13")
    assert is_equiv("12", got)  # a gold extracted from a gold solution
    assert is_equiv(got, 12) and is_equiv(got, 12.0)
    assert is_equiv(got, "12", timeout=5.0)
    gold = extract_answer("She pays 5 + 7 = 12.\n#### 12")
    assert grade_many([(got, gold), (got, "13")], processes=0) == [True, False]
    assert grade_many([(got, gold), (got, "13")], processes=1) == [True, False]


def test_nothing_extracted_grades_false() -> None:
    assert extract_answer("no answer here", "strict") is None
    assert not is_equiv(extract_answer("no answer here", "strict"), "5")
    assert not is_equiv(None, "5")
    assert not is_equiv("5", None)
    assert grade_many([(None, "5")], processes=0) == [False]
    assert grade_many([(None, "5")], processes=1) == [False]


@pytest.mark.parametrize("bad", NOT_ANSWERS, ids=lambda x: type(x).__name__)
def test_non_answers_raise_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        is_equiv(bad, "1")
    with pytest.raises(TypeError):
        is_equiv("1", bad)
    with pytest.raises(TypeError):
        is_equiv(bad, "1", timeout=5.0)
    with pytest.raises(TypeError):
        grade_many([("1", "1"), (bad, "1")], processes=1)
    with pytest.raises(TypeError):
        grade_many([("1", bad)], processes=0)


@pytest.mark.parametrize("bad", [None, ExtractedAnswer("1", "boxed", 0), ["1"], 1])
def test_extraction_needs_text(bad: object) -> None:
    # The same trap the other way round: extracting from an answer object is a bug, not None.
    with pytest.raises(TypeError):
        extract_answer(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        has_marked_answer(bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        extract_boxed(bad)  # type: ignore[arg-type]


def test_hostile_strings_grade_false_not_raise() -> None:
    for s in ("", "\x00", "\\boxed{", "__import__('os')", "9^{9^{9^9}}", "1" * 100_000):
        assert is_equiv(s, "1") is False
        assert is_equiv(extract_answer(s), "1") is False


def test_gsm8k_gold_solutions(shared_data: Path) -> None:
    for split in ("test", "train"):
        rows = load_jsonl(shared_data / f"gsm8k/{split}.jsonl")
        failed = []
        for r in rows:
            solution, answer = r["answer"], r["answer"].split("#### ")[-1].strip()
            if not is_equiv(extract_answer(solution), answer):
                failed.append(answer)
        assert failed == [], split


def test_math500_gold_solutions(shared_data: Path) -> None:
    rows = load_jsonl(shared_data / "math500/test.jsonl")
    failed = [
        r["unique_id"] for r in rows if not is_equiv(extract_answer(r["solution"]), r["answer"])
    ]
    assert failed == []
