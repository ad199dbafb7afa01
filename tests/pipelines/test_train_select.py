"""Model selection on held-out data (`svpo train --select-on`, method.md section 7.2) and the
rft baseline, on the demo model's session annotation (tests/pipelines/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from svpo_harness.pipelines.train.train_select import (
    Selection,
    SelectionError,
    dev_accuracy,
    load_selection,
)

DEV = 12  # dev problems: enough to move, cheap with greedy on the demo model


def _cfg(model: Path, data: Path, out: Path, objective: str, **over):
    from svpo_harness.pipelines.train.train_config import TrainConfig

    settings = dict(
        objective=objective, model=str(model), data=str(data), out=str(out), max_steps=6,
        batch_size=8, lr=2e-4, device="cpu", seed=0, select_on="arith:dev", eval_every=2,
        eval_limit=DEV,
    )  # fmt: skip
    return TrainConfig(**{**settings, **over})


def _dev_acc_of(checkpoint: Path, metric: str = "greedy") -> float:
    from svpo_harness.engines.checkpoint import load_checkpoint
    from svpo_harness.pipelines.annotate.annotate_data import load_annotation_questions

    loaded = load_checkpoint(checkpoint, peft="merge", device="cpu")
    questions, _ = load_annotation_questions("arith:dev", limit=DEV)
    sel = Selection(on="arith:dev", metric=metric, every=1, limit=DEV, questions=questions)
    return dev_accuracy(
        loaded.model, loaded.value_head, loaded.tokenizer, loaded.step_format, sel, 0
    )


def test_an_overtrained_run_keeps_its_best_dev_step(demo_annotation, tmp_path) -> None:
    """DPO at a learning rate that wrecks the policy within a few steps (issue 25: DPO at 200
    steps fell to 0.07): the dev curve falls, the checkpoint written is the best step's, and
    its dev accuracy measured afresh is the curve's maximum."""
    from svpo_harness.pipelines.train.train import run_training

    model, ann = demo_annotation
    out = tmp_path / "dpo"
    result = run_training(_cfg(model, ann, out, "dpo", lr=0.05), progress=False)
    selection = json.loads((out / "svpo.json").read_text())["training"]["selection"]
    curve = selection["curve"]
    assert [step for step, _ in curve] == [0, 2, 4, 6]
    best = max(acc for _, acc in curve)
    assert selection["chosen_step"] == next(step for step, acc in curve if acc == best)
    assert curve[-1][1] < best  # the run got worse: the last step is not what was kept
    assert selection["metric"] == "greedy" and selection["problems"] == DEV
    assert selection["lr"] == 0.05 and result.summary["selection"] == selection
    assert _dev_acc_of(out) == pytest.approx(best)
    exposure = json.loads((out / "svpo.json").read_text())["training"]["exposure"]
    assert exposure["optimizer_steps"] == 6
    assert exposure["passes"] == pytest.approx(
        selection["chosen_step"] * 8 / exposure["examples"], abs=1e-4
    )


def test_ties_keep_the_earlier_step() -> None:
    sel = Selection(on="x", metric="greedy", every=1, limit=1, questions=[])
    assert sel.add(0, 0.5) and not sel.add(1, 0.5) and sel.add(2, 0.75) and not sel.add(3, 0.75)
    assert sel.best_step == 2 and sel.best_acc == 0.75
    assert [sel.due(s, 10) for s in (0, 4, 10)] == [False, True, True]  # 0 is done already


def test_a_killed_run_resumes_with_its_curve_and_best_weights(demo_annotation, tmp_path) -> None:
    """Killed after step 3 (the newest resumable step is 2), the same command continues: the
    curve, the chosen step and the written weights equal an uninterrupted run's."""
    from svpo_harness.engines.checkpoint import load_checkpoint
    from svpo_harness.pipelines.train.train import run_training

    model, ann = demo_annotation
    whole = tmp_path / "whole"
    run_training(_cfg(model, ann, whole, "svpo", lr=3e-3, select_metric="greedy"), progress=False)

    class Killed(Exception):
        pass

    def kill_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise Killed

    out = tmp_path / "killed"
    cfg = _cfg(model, ann, out, "svpo", lr=3e-3, select_metric="greedy", save_every=2)
    with pytest.raises(Killed):
        run_training(cfg, on_step=kill_at_3, progress=False)
    state = json.loads((cfg.run_dir / "step_2" / "trainer_state.json").read_text())
    assert [s for s, _ in state["selection"]["curve"]] == [0, 2]
    result = run_training(cfg, progress=False)
    assert result.resumed_from == 2
    expected = json.loads((whole / "svpo.json").read_text())["training"]["selection"]
    got = json.loads((out / "svpo.json").read_text())["training"]["selection"]
    assert got["curve"] == expected["curve"] and got["chosen_step"] == expected["chosen_step"]
    a = load_checkpoint(whole, peft="merge").model.state_dict()
    b = load_checkpoint(out, peft="merge").model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_the_selection_set_must_be_held_out(demo_annotation, tmp_path) -> None:
    from svpo_harness.core.arith import arith_split
    from svpo_harness.pipelines.train.train import training_questions

    model, ann = demo_annotation
    train_qs = training_questions(_cfg(model, ann, tmp_path / "x", "svpo"))
    assert len(train_qs) == 24 and all(text for _, text in train_qs)
    # the training questions themselves, as a file
    overlap = tmp_path / "overlap.jsonl"
    trees = [json.loads(line) for line in (ann / "trees.jsonl").read_text().splitlines()]
    overlap.write_text(
        "".join(
            json.dumps({"question": t["question"], "answer": t["gold_answer"]}) + "\n"
            for t in trees[:3]
        )
    )
    with pytest.raises(SelectionError, match="3 problem.*training questions"):
        load_selection(str(overlap), metric="greedy", every=1, limit=None, train_questions=train_qs)
    # a test problem (an evaluation set) in the selection set
    test_problem = arith_split("test", 1)[0]
    leaked = tmp_path / "leaked.jsonl"
    leaked.write_text(json.dumps({"question": test_problem.question, "answer": "1"}) + "\n")
    with pytest.raises(SelectionError, match="arith/test"):
        load_selection(str(leaked), metric="greedy", every=1, limit=None, train_questions=train_qs)
    # the test split itself (what reported numbers are measured on) is refused by name
    with pytest.raises(SelectionError, match="arith/test"):
        load_selection("arith:test", metric="greedy", every=1, limit=5, train_questions=train_qs)
    # a named set that cannot be loaded is a one-line error, not a traceback
    with pytest.raises(SelectionError, match="--select-on nosuch:dev"):
        load_selection("nosuch:dev", metric="greedy", every=1, limit=5, train_questions=train_qs)
    # the dev split passes, checked against the test split
    ok = load_selection("arith:dev", metric="greedy", every=1, limit=5, train_questions=train_qs)
    assert len(ok.questions) == 5 and "arith/test" in ok.checked_against
    assert "arith/dev" not in ok.checked_against


def test_rft_trains_on_the_unique_correct_paths_only(demo_annotation, tmp_path) -> None:
    from svpo_harness.grading import is_equiv
    from svpo_harness.pipelines.train.pref_data import load_preference_data
    from svpo_harness.pipelines.train.train import run_training

    model, ann = demo_annotation
    meta = json.loads((model / "svpo.json").read_text())
    data = load_preference_data(
        ann, "rft", tokenizer_fingerprint=meta["tokenizer_fingerprint"], step_format="arith"
    )
    trees = [json.loads(line) for line in (ann / "trees.jsonl").read_text().splitlines()]
    gold = {t["question_id"]: t["gold_answer"] for t in trees}
    # every correct terminal node of the trees (one tree per question: no duplicate paths)
    correct = {
        (tree["question_id"], tree["tree_index"], node["node_id"])
        for tree in trees
        for node in tree["nodes"]
        if node.get("reward") == 1.0 and node.get("terminal_reason") == "answer"
    }
    assert {r.KIND for r in data.records} == {"path"}
    found = [(r.question_id, r.tree_index, r.node_ids[-1]) for r in data.records]
    assert len(found) == len(set(found)) and set(found) == correct
    keys = [(r.question_id, tuple(r.step_ids)) for r in data.records]
    assert len(keys) == len(set(keys))  # unique paths
    assert all(is_equiv(r.answer, gold[r.question_id]) for r in data.records)
    result = run_training(
        _cfg(model, ann, tmp_path / "rft", "rft", select_on=None, max_steps=2), progress=False
    )
    training = json.loads((tmp_path / "rft" / "svpo.json").read_text())["training"]
    assert training["objective"] == "rft" and training["value_head_trained"] is False
    assert result.summary["records"] == {"path": len(correct)}
