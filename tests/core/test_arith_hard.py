"""The hard split of the arithmetic world (core/arith_hard.py): what defines it, disjointness,
determinism, and the loaders that name it (annotation data, contamination guard, lm-eval task)."""

from __future__ import annotations

from collections import Counter

import pytest

from svpo_harness.core.arith import (
    SPLIT_SIZES,
    arith_split,
    check_solution_steps,
    teacher_mode_answer,
)
from svpo_harness.core.arith_hard import (
    HARD_BASE_MEASURED,
    HARD_DIFFICULTY,
    HARD_MIN_DIVISIONS,
    HARD_SPLIT_SIZES,
    arith_hard_split,
)


def test_every_problem_has_the_defining_properties_and_a_right_gold() -> None:
    for split in ("test", "dev"):
        for p in arith_hard_split(split):  # type: ignore[arg-type]
            assert HARD_DIFFICULTY.min_ops <= p.n_ops <= HARD_DIFFICULTY.max_ops
            assert p.n_divisions >= HARD_MIN_DIVISIONS
            assert check_solution_steps(p.solution_steps, p.answer) == [], p


def test_splits_are_disjoint_from_each_other_and_from_every_arith_split() -> None:
    hard = {s: {p.question for p in arith_hard_split(s)} for s in HARD_SPLIT_SIZES}  # type: ignore[arg-type]
    assert [len(v) for v in hard.values()] == list(HARD_SPLIT_SIZES.values())  # unique texts
    assert not hard["test"] & hard["dev"] and not hard["train"] & (hard["test"] | hard["dev"])
    world = set()
    for split, size in SPLIT_SIZES.items():
        world |= {p.question for p in arith_split(split, size)}  # type: ignore[arg-type]
    for texts in hard.values():
        assert not texts & world


def test_prefixes_ids_and_a_growable_train_split() -> None:
    assert arith_hard_split("test", 20) == arith_hard_split("test")[:20]
    assert [p.question_id for p in arith_hard_split("dev", 3)] == [
        "arith-hard-dev-00000", "arith-hard-dev-00001", "arith-hard-dev-00002"
    ]  # fmt: skip
    more = arith_hard_split("train", HARD_SPLIT_SIZES["train"] + 5)
    assert more[: HARD_SPLIT_SIZES["train"]] == arith_hard_split("train")
    with pytest.raises(ValueError, match="n must be in"):
        arith_hard_split("test", HARD_SPLIT_SIZES["test"] + 1)
    with pytest.raises(ValueError, match="unknown split"):
        arith_hard_split("validation")  # type: ignore[arg-type]


def test_the_teacher_slips_on_most_of_it() -> None:
    """Greedy imitation of the teacher (every division subtracted) is right on few problems: the
    split is hard for the base by construction (the measured numbers are HARD_BASE_MEASURED)."""
    problems = arith_hard_split("test")
    assert sum(teacher_mode_answer(p) == p.answer for p in problems) / len(problems) < 0.15
    assert Counter(p.n_divisions for p in problems)[0] == 0
    assert {p.n_ops for p in problems} == {4}


def test_the_definition_records_the_base_numbers_it_was_chosen_by() -> None:
    assert HARD_BASE_MEASURED["problems"] == HARD_SPLIT_SIZES["test"]
    assert HARD_BASE_MEASURED["greedy"] <= 0.5
    assert HARD_BASE_MEASURED["pass@16"] >= 0.85


def test_loaders_name_the_hard_split() -> None:
    from svpo_harness.pipelines.annotate.annotate_data import load_annotation_questions
    from svpo_harness.pipelines.annotate.contamination import _eval_problems, default_eval_sets

    questions, _ = load_annotation_questions("arith_hard:train", limit=4)
    assert [q.question_id for q in questions] == [
        p.question_id for p in arith_hard_split("train", 4)
    ]
    assert {"arith_hard/test", "arith_hard/dev"} <= set(default_eval_sets())
    dev = _eval_problems("arith_hard/dev", None)
    assert dev[0] == (
        arith_hard_split("dev", 1)[0].question_id,
        arith_hard_split("dev", 1)[0].question,
    )


def test_the_lm_eval_task_loads_the_test_split() -> None:
    import importlib.util

    from svpo_harness.lm_eval_plugin import tasks_dir

    spec = importlib.util.spec_from_file_location("svpo_task_utils", tasks_dir() / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    rows = utils.load_arith_hard(n=5)["test"]
    assert list(rows["question_id"]) == [p.question_id for p in arith_hard_split("test", 5)]
    assert set(rows["dataset"]) == {"arith_hard"} and set(rows["step_format"]) == {"arith"}
