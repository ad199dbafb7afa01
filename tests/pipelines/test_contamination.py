"""Contamination guard: training questions matching evaluation problems by text or unique_id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svpo_harness.pipelines.annotate.annotate_data import (
    AnnotationQuestion,
    load_annotation_questions,
)
from svpo_harness.pipelines.annotate.contamination import (
    build_eval_index,
    check_contamination,
    default_eval_sets,
)


def test_default_eval_sets_cover_in_domain_ood_and_arith() -> None:
    sets = default_eval_sets()
    for name in ("gsm8k/test", "math/test", "math500/test", "gaokao2023en/test", "ocw/test"):
        assert name in sets
    assert "arith/test" in sets and "gsm8k/train" not in sets


def test_planted_gsm8k_test_question_is_found(shared_data: Path, tmp_path: Path) -> None:
    test_lines = (shared_data / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    planted = json.loads(test_lines[7])
    # Re-spaced, re-cased, trailing punctuation dropped: still the same problem.
    disguised = "  " + planted["question"].upper().rstrip("?.").replace(" ", "   ") + "\n"
    train_lines = (shared_data / "gsm8k" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(x) for x in train_lines[:3]]
    records.insert(1, {"question": disguised, "answer": planted["answer"]})
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    questions, _ = load_annotation_questions(str(path))
    report = check_contamination(questions, data_dir=shared_data)
    assert report.unavailable == {}
    assert set(report.checked) == set(default_eval_sets())
    assert [(m.question_id, m.eval_set, m.eval_id, m.by) for m in report.matches] == [
        (questions[1].question_id, "gsm8k/test", "gsm8k/test/7", "text")
    ]
    assert report.question_ids == [questions[1].question_id]
    assert report.to_dict()["contaminated_questions"] == 1
    warning = report.as_warnings(str(path))[0]
    assert (warning.kind, warning.field) == ("contamination", "question")
    assert "gsm8k/test/7" in warning.message
    assert "1 training question(s)" in report.summary()


def test_math_unique_id_matches_math_test_and_math500(shared_data: Path) -> None:
    # prm800k's train split holds MATH test problems under their test ids; a rewording still
    # carries the id.
    first = (shared_data / "math500" / "test.jsonl").read_text(encoding="utf-8").split("\n", 1)[0]
    uid = json.loads(first)["unique_id"]
    reworded = AnnotationQuestion("p1", "A reworded problem", "1", "prm800k", unique_id=uid)
    report = check_contamination([reworded], data_dir=shared_data)
    assert {(m.eval_set, m.by) for m in report.matches} == {
        ("math/test", "unique_id"),
        ("math500/test", "unique_id"),
    }
    assert {m.eval_id for m in report.matches} == {f"math/test/{uid}", f"math500/test/{uid}"}


def test_arith_train_is_clean(shared_data: Path) -> None:
    questions, _ = load_annotation_questions("arith:train")
    report = check_contamination(questions, data_dir=shared_data)
    assert report.matches == () and report.unavailable == {}


def test_missing_eval_sets_are_reported_not_skipped(tmp_path: Path) -> None:
    questions, _ = load_annotation_questions("arith:train", limit=50)
    report = check_contamination(questions, data_dir=tmp_path)  # an empty data folder
    assert report.checked == ("arith/test", "arith/dev", "arith_hard/test", "arith_hard/dev")
    assert "gsm8k/test" in report.unavailable and "math500/test" in report.unavailable
    assert "not available: " in report.summary()
    # One index serves several batches; arith test questions are caught.
    index = build_eval_index(["arith/test"])
    test_q = load_annotation_questions("arith:test", limit=2)[0]
    assert len(check_contamination(test_q, index=index).matches) == 2
    hard = build_eval_index(["arith_hard/dev"])  # the hard split's held-out problems too
    hard_q = load_annotation_questions("arith_hard:dev", limit=3)[0]
    assert len(check_contamination(hard_q, index=hard).matches) == 3
    with pytest.raises(ValueError, match="unknown eval set"):
        build_eval_index(["gsm8k/train"])


def test_the_built_in_sets_are_checked_when_the_hub_is_down(monkeypatch, tmp_path: Path) -> None:
    """An unreachable hub skips the other hub sets (each costs ~30 s of retries), never the
    arithmetic world's sets, which are generated here."""
    from svpo_harness.data.problems import DataUnavailableError
    from svpo_harness.pipelines.annotate import contamination

    real = contamination._eval_problems

    def hub_down(eval_set, data_dir):
        if eval_set.split("/")[0] not in contamination.BUILT_IN_SETS:
            raise DataUnavailableError(f"{eval_set}: hub is unreachable (ConnectionError)")
        return real(eval_set, data_dir)

    monkeypatch.setattr(contamination, "_eval_problems", hub_down)
    monkeypatch.setattr(contamination, "local_path", lambda *_: None)  # no local folder: hub
    index = build_eval_index(data_dir=tmp_path)
    assert set(index.checked) == {"arith/test", "arith/dev", "arith_hard/test", "arith_hard/dev"}
    assert any(v.startswith("not tried") for v in index.unavailable.values()), index.unavailable
