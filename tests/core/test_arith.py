"""The synthetic arithmetic world: determinism, correct gold solutions, disjoint fixed splits."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from svpo_harness.core.arith import (
    DEFAULT_DIFFICULTY,
    SPLIT_SIZES,
    WORLD_VERSION,
    ArithDifficulty,
    ArithProblem,
    arith_split,
    check_solution_steps,
    generate_problems,
    greedy_ceiling,
    teacher_mode_answer,
    to_record,
    write_jsonl,
)
from svpo_harness.core.step_format import ARITH

EQUATION = re.compile(r"\d+ [-+*/] \d+ = \d+")


def test_generation_is_deterministic_under_a_seed() -> None:
    assert generate_problems(50, seed=7) == generate_problems(50, seed=7)
    assert generate_problems(50, seed=7) != generate_problems(50, seed=8)
    # problem i depends on (seed, i) only, not on how many were asked for
    assert generate_problems(10, seed=7) == generate_problems(50, seed=7)[:10]


def test_gold_answers_are_right_when_every_step_is_recomputed() -> None:
    problems = generate_problems(500, seed=3) + arith_split("test", 200)
    for p in problems:
        assert check_solution_steps(p.solution_steps, p.answer) == [], p
        assert len(p.solution_steps) == p.n_ops + 1
        for step in p.solution_steps[:-1]:
            assert len(EQUATION.findall(step)) == 1, step  # exactly one operation per step
            assert "\n" not in step
        assert p.solution_steps[-1] == f"The answer is {p.answer}."
        values = [int(v) for s in p.solution_steps[:-1] for v in re.findall(r"\d+", s)]
        assert all(0 <= v <= DEFAULT_DIFFICULTY.max_value for v in values)


def test_the_checker_finds_wrong_steps() -> None:
    p = ArithProblem(
        "x",
        "q",
        ("Tom buys 4 more, so 8 + 4 = 12.", "He sells 2, so 12 - 2 = 10.", "The answer is 10."),
        10,
        2,
    )
    assert check_solution_steps(p.solution_steps, p.answer) == []
    wrong = ("Tom buys 4 more, so 8 + 4 = 13.", "He sells 2, so 13 - 2 = 11.", "The answer is 11.")
    errors = check_solution_steps(wrong, 10)
    assert any("step 0" in e and "wrong" in e for e in errors)
    assert any("gold answer 10" in e for e in errors)
    broken_chain = (
        "Tom buys 4 more, so 8 + 4 = 12.",
        "He sells 2, so 11 - 2 = 9.",
        "The answer is 9.",
    )
    assert any("previous result was 12" in e for e in check_solution_steps(broken_chain))
    inexact = ("7 / 2 = 3.", "The answer is 3.")
    assert any("exact division" in e for e in check_solution_steps(inexact))
    assert any("no 'The answer is" in e for e in check_solution_steps(("8 + 4 = 12.",)))


def test_every_last_step_is_a_marked_final_answer() -> None:
    for p in arith_split("dev", 100):
        assert p.solution_steps[-1].startswith("The answer is ")
        assert not any("The answer is" in s for s in p.solution_steps[:-1])
    from svpo_harness.grading import extract_answer, has_marked_answer, is_equiv

    for p in arith_split("dev", 20):
        assert has_marked_answer(p.solution_steps[-1])
        assert not any(has_marked_answer(s) for s in p.solution_steps[:-1])
        found = extract_answer(p.solution)
        assert found is not None and not found.is_fallback
        assert is_equiv(found.answer, str(p.answer))


def test_difficulty_knob_changes_the_number_of_operations() -> None:
    easy = ArithDifficulty(min_ops=2, max_ops=2)
    hard = ArithDifficulty(min_ops=6, max_ops=6, max_value=999, max_addend=50, max_factor=9)
    assert {p.n_ops for p in generate_problems(100, 1, easy)} == {2}
    hard_problems = generate_problems(100, 1, hard)
    assert {p.n_ops for p in hard_problems} == {6}
    for p in hard_problems:
        assert check_solution_steps(p.solution_steps, p.answer) == []
    default_ops = Counter(p.n_ops for p in generate_problems(300, 1))
    lo, hi = DEFAULT_DIFFICULTY.min_ops, DEFAULT_DIFFICULTY.max_ops
    assert set(default_ops) == set(range(lo, hi + 1))
    ops_used = Counter(
        m
        for p in generate_problems(300, 1)
        for s in p.solution_steps[:-1]
        for m in re.findall(r" ([-+*/]) ", s)
    )
    assert set(ops_used) == {"+", "-", "*", "/"}
    with pytest.raises(ValueError):
        ArithDifficulty(min_ops=3, max_ops=2)


def test_default_difficulty_is_pinned() -> None:
    # Fixed before any method is compared on the world; a change here must be deliberate.
    assert DEFAULT_DIFFICULTY == ArithDifficulty(
        min_ops=2,
        max_ops=4,
        max_start=20,
        max_addend=9,
        max_factor=3,
        max_value=50,
        teacher_slip=0.65,
    )
    assert WORLD_VERSION == 2
    first = arith_split("test", 1)[0]
    assert first.question_id == "arith-test-00000"
    # the world's first test problem, pinned: a change to the generator changes it
    assert first.question == (
        "Max has 15 stickers. Max gives away 7 stickers. Then he buys 3 more stickers. "
        "Then he buys 2 more stickers. How many stickers does Max have now?"
    )
    assert first.answer == 13


def test_fixed_splits_have_their_sizes_and_are_disjoint_by_question_text() -> None:
    splits = {name: arith_split(name) for name in ("train", "dev", "test")}
    texts = {name: {p.question for p in probs} for name, probs in splits.items()}
    for name, probs in splits.items():
        assert len(probs) == SPLIT_SIZES[name]
        assert len(texts[name]) == len(probs), f"{name} repeats a question"
        assert len({p.question_id for p in probs}) == len(probs)
    assert not texts["test"] & texts["train"]
    assert not texts["test"] & texts["dev"]
    assert not texts["dev"] & texts["train"]
    # a smaller n is a prefix of the full split; train may grow, dev/test may not
    assert arith_split("dev", 10) == splits["dev"][:10]
    bigger = arith_split("train", SPLIT_SIZES["train"] + 5)
    assert bigger[: SPLIT_SIZES["train"]] == splits["train"]
    assert not {p.question for p in bigger} & texts["test"]
    with pytest.raises(ValueError):
        arith_split("test", SPLIT_SIZES["test"] + 1)
    with pytest.raises(ValueError):
        arith_split("valid")  # type: ignore[arg-type]


def test_records_and_jsonl(tmp_path) -> None:
    p = arith_split("dev", 1)[0]
    rec = to_record(p)
    assert rec == {
        "question_id": p.question_id,
        "question": p.question,
        "answer": str(p.answer),
        "solution": "\n".join(p.solution_steps),
    }
    assert ARITH.split_steps(rec["solution"]) == [s + "\n" for s in p.solution_steps[:-1]] + [
        p.solution_steps[-1]
    ]
    out = tmp_path / "dev.jsonl"
    assert write_jsonl("dev", out, n=25) == 25
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [to_record(q) for q in arith_split("dev", 25)]


def test_the_careless_teacher_subtracts_where_the_story_divides() -> None:
    """Teacher steps equal the gold except slipped divisions, which subtract and carry on."""
    slipped_steps = divisions = 0
    for p in arith_split("train", 3000):
        assert len(p.teacher_steps) == len(p.solution_steps)
        gold_chain_intact = True
        for gold, teacher in zip(p.solution_steps[:-1], p.teacher_steps[:-1], strict=True):
            lead_g, _, _ = gold.partition(" so ")
            lead_t, _, _ = teacher.partition(" so ")
            assert lead_g == lead_t  # same story sentence, only the arithmetic differs
            if " / " in gold:
                divisions += 1
                if " - " in teacher:
                    slipped_steps += 1
                    gold_chain_intact = False
            elif gold_chain_intact:
                assert gold == teacher
        assert p.teacher_slipped == (not gold_chain_intact)
        assert p.teacher_steps[-1] == f"The answer is {p.teacher_answer}."
        if not p.teacher_slipped:
            assert p.teacher_answer == p.answer
    assert abs(slipped_steps / divisions - DEFAULT_DIFFICULTY.teacher_slip) < 0.05


def test_teacher_slip_changes_only_the_teacher() -> None:
    careful = ArithDifficulty(teacher_slip=0.0)
    careless = ArithDifficulty(teacher_slip=1.0)
    a, b = generate_problems(200, 5, careful), generate_problems(200, 5, careless)
    assert [p.question for p in a] == [p.question for p in b]
    assert [p.solution_steps for p in a] == [p.solution_steps for p in b]
    assert all(p.teacher_steps == p.solution_steps for p in a)
    assert all(p.teacher_slipped == (p.n_divisions > 0) for p in b)
    with pytest.raises(ValueError, match="teacher_slip"):
        ArithDifficulty(teacher_slip=1.5)


def test_about_half_the_test_problems_have_no_division() -> None:
    """The share a perfect imitator of the teacher gets right greedily (BENCHMARKS.md 2)."""
    test = arith_split("test")
    share = sum(p.n_divisions == 0 for p in test) / len(test)
    assert share == pytest.approx(0.538, abs=1e-9)


def test_the_greedy_ceiling_is_what_a_perfect_imitator_gets_right() -> None:
    """A teacher who always slips (teacher_slip=1) writes exactly the mode answer."""
    always = ArithDifficulty(teacher_slip=1.0)
    for p in generate_problems(300, 9, always):
        assert teacher_mode_answer(p) == p.teacher_answer
        assert (teacher_mode_answer(p) == p.answer) == (
            p.n_divisions == 0 or p.teacher_answer == p.answer
        )
    assert greedy_ceiling("test") == pytest.approx(0.56, abs=1e-9)
