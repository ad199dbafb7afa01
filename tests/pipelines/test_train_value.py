"""`svpo train --objective value`: the value head alone on a frozen policy (the ablation "value
terms without policy training"), on the demo model's session annotation (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

DEV = 4  # dev problems for SBS selection: enough to exercise it, cheap on the demo model


def _cfg(model: Path, data: Path, out: Path, **over):
    from svpo_harness.pipelines.train.train_config import TrainConfig

    settings = dict(
        objective="value", model=str(model), data=str(data), out=str(out), max_steps=12,
        batch_size=8, lr=1e-3, device="cpu", seed=0,
    )  # fmt: skip
    return TrainConfig(**{**settings, **over})


def _policy_state(path: Path) -> dict[str, torch.Tensor]:
    from svpo_harness.engines.checkpoint import load_checkpoint

    return load_checkpoint(path, peft="merge", value_head="none").model.state_dict()


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _rank_loss(checkpoint: Path, pair_source: Path) -> float:
    """Mean hinge ranking loss of the checkpoint's head over every training pair (eval mode)."""
    from svpo_harness.engines.checkpoint import load_checkpoint
    from svpo_harness.engines.collate import collate, prepare_examples, score_rows
    from svpo_harness.engines.losses import value_rank_loss
    from svpo_harness.pipelines.train.pref_data import load_preference_data

    loaded = load_checkpoint(checkpoint, peft="merge")
    data = load_preference_data(
        pair_source, "value", tokenizer_fingerprint=loaded.meta.tokenizer_fingerprint,
        step_format=loaded.step_format.name,
    )  # fmt: skip
    examples, _ = prepare_examples(data.records, 512)
    pairs = [e for e in examples if e.kind == "pair"]
    batch = collate(pairs, int(loaded.tokenizer.pad_token_id or 0))
    with torch.no_grad():
        values = score_rows(loaded.model, batch, loaded.value_head).values
    return float(value_rank_loss(values[batch.chosen], values[batch.rejected]).mean())


def test_value_trains_the_head_alone_and_saves_the_policy_unchanged(demo_annotation, tmp_path):
    from svpo_harness.pipelines.train.train import run_training

    model, ann = demo_annotation
    out = tmp_path / "value"
    result = run_training(_cfg(model, ann, out), progress=False)
    assert result.steps == 12 and result.summary["reference"] == "none"
    assert result.summary["policy"] == "frozen"
    # the policy: bit for bit the base's, as full weights (no adapter was added)
    assert _same_weights(_policy_state(out), _policy_state(model))
    assert not (out / "adapter_model.safetensors").exists()
    # the head: moved, and ranks the training pairs better than the base's head did
    from safetensors.torch import load_file

    assert not torch.equal(
        load_file(out / "value_head.safetensors")["linear.weight"],
        load_file(model / "value_head.safetensors")["linear.weight"],
    )
    assert _rank_loss(out, ann) < _rank_loss(model, ann) - 1e-3
    training = json.loads((out / "svpo.json").read_text())["training"]
    assert training["objective"] == "value" and training["value_head_trained"] is True
    assert training["value_head_trained_here"] is True
    assert training["config"]["lambda_rank"] == 1.0 and training["config"]["lambda_mse"] == 0.1
    assert set(training["data"]["records"]) == {"pair", "step_q"}
    last = training["losses_last_10_steps"]
    assert last["dpo"] == 0.0 and last["rank"] > 0.0  # no DPO term; the ranking term trained


def test_only_the_heads_parameters_are_optimized(demo_annotation, tmp_path, monkeypatch):
    """The optimizer holds one group, the head's; an empty policy group is left out."""
    from svpo_harness.pipelines.train import train

    model, ann = demo_annotation
    seen: list[list[int]] = []
    real = train.make_optimizer

    def spy(params, cfg, total, head_params=None):
        optimizer, scheduler = real(params, cfg, total, head_params)
        seen.append([len(g["params"]) for g in optimizer.param_groups])
        assert params == []
        return optimizer, scheduler

    monkeypatch.setattr(train, "make_optimizer", spy)
    train.run_training(_cfg(model, ann, tmp_path / "v", max_steps=1), progress=False)
    assert seen == [[2]]  # the head's linear weight and bias
    with pytest.raises(ValueError, match="no trainable parameter"):
        real([], _cfg(model, ann, tmp_path / "v"), 1, [])


def test_a_lora_child_is_saved_merged(demo_annotation, tmp_path):
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    model, ann = demo_annotation
    child = tmp_path / "svpo"
    cfg = TrainConfig(
        objective="svpo", model=str(model), data=str(ann), out=str(child), max_steps=2,
        batch_size=8, lr=1e-3, device="cpu",
    )  # fmt: skip
    run_training(cfg, progress=False)
    assert (child / "adapter_model.safetensors").is_file()
    out = tmp_path / "value"
    run_training(_cfg(model=child, data=ann, out=out, max_steps=2), progress=False)
    assert not (out / "adapter_model.safetensors").exists()
    assert _same_weights(_policy_state(out), _policy_state(child))


def test_settings_that_mean_nothing_for_value_are_refused(demo_annotation, tmp_path):
    from click.testing import CliRunner

    from svpo_harness.cli import main

    model, ann = demo_annotation
    for over, message in (
        ({"lambda_rank": 0.0, "lambda_mse": 0.0}, "nothing to train"),
        ({"full": True}, "leave out full"),
        ({"select_on": "arith:dev", "select_metric": "greedy"}, "cannot change greedy"),
    ):
        with pytest.raises(ValueError, match=message):
            _cfg(model, ann, tmp_path / "x", **over)
    _cfg(model, ann, tmp_path / "x", lambda_rank=0.0)  # the Q regression alone is a run
    args = ["train", "--objective", "value", "--model", str(model), "--data", str(ann),
            "--out", str(tmp_path / "x"), "--lambda-rank", "0", "--lambda-mse", "0"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "has nothing to train" in result.output
    assert "Traceback" not in result.output


class Killed(Exception):
    pass


def test_selection_uses_sbs_and_a_killed_run_resumes(demo_annotation, tmp_path):
    """--select-on with metric auto picks SBS (greedy cannot change on a frozen policy); killed
    after step 3, the same command continues to the uninterrupted run's curve and head."""
    from safetensors.torch import load_file

    from svpo_harness.pipelines.train.train import run_training

    model, ann = demo_annotation
    over = dict(max_steps=4, select_on="arith:dev", eval_every=2, eval_limit=DEV, save_every=2)
    whole = tmp_path / "whole"
    run_training(_cfg(model, ann, whole, **over), progress=False)

    def kill_at_3(step: int, loss: float) -> None:
        if step == 3:
            raise Killed

    cfg = _cfg(model, ann, tmp_path / "cut", **over)
    with pytest.raises(Killed):
        run_training(cfg, on_step=kill_at_3, progress=False)
    resumed = run_training(cfg, progress=False)
    assert resumed.resumed_from == 2
    expected = json.loads((whole / "svpo.json").read_text())["training"]["selection"]
    got = json.loads((tmp_path / "cut" / "svpo.json").read_text())["training"]["selection"]
    assert got["metric"] == "sbs-3-5" and got["problems"] == DEV
    assert got["curve"] == expected["curve"] and got["chosen_step"] == expected["chosen_step"]
    training = json.loads((tmp_path / "cut" / "svpo.json").read_text())["training"]
    assert training["value_head_trained"] is (got["chosen_step"] > 0)
    a = load_file(whole / "value_head.safetensors")
    b = load_file(tmp_path / "cut" / "value_head.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert _same_weights(_policy_state(tmp_path / "cut"), _policy_state(model))


def test_step_level_dpo_alone_trains_through_windows_without_a_pair(demo_annotation, tmp_path):
    """svpo with both value terms 0 (the Step-DPO setting) keeps svpo's records and windows; a
    window of step_q rows only has no term, and still steps (it used to fail in backward)."""
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    model, ann = demo_annotation
    out = tmp_path / "step-dpo"
    cfg = TrainConfig(
        objective="svpo", model=str(model), data=str(ann), out=str(out), max_steps=8,
        batch_size=1, lr=1e-3, device="cpu", lambda_rank=0.0, lambda_mse=0.0,
    )  # fmt: skip
    result = run_training(cfg, progress=False)
    assert set(result.summary["records"]) == {"pair", "step_q"}
    assert 0.0 in result.losses  # a window without a pair: nothing to learn, one step still
    training = json.loads((out / "svpo.json").read_text())["training"]
    assert training["value_head_trained"] is False and training["value_head_trained_here"] is False


def test_a_head_kept_at_step_0_by_selection_is_not_called_trained(demo_annotation, tmp_path):
    """Dev selection that keeps step 0 (nothing improved) saves the head as loaded: svpo.json
    must not claim it was trained (the report labels its SBS rows "untrained head")."""
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    model, ann = demo_annotation
    out = tmp_path / "kept-0"
    cfg = TrainConfig(
        objective="svpo", model=str(model), data=str(ann), out=str(out), max_steps=2,
        batch_size=8, lr=1e-12, value_head_lr=1e-12, device="cpu", select_on="arith:dev",
        select_metric="greedy", eval_every=2, eval_limit=DEV,
    )  # fmt: skip
    run_training(cfg, progress=False)
    training = json.loads((out / "svpo.json").read_text())["training"]
    assert training["selection"]["chosen_step"] == 0  # a tie with step 2 keeps the earlier
    assert training["value_head_trained"] is False and training["value_head_trained_here"] is False
