"""`svpo train --objective svpo|dpo|alphamath` on pairs from annotating the demo model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from svpo_harness.pipelines.train.pref_data import PreferenceDataError, load_preference_data


@pytest.fixture
def annotated(demo_annotation) -> tuple[Path, Path]:
    return demo_annotation  # tests/pipelines/conftest.py


def _train(model: Path, data: Path, out: Path, objective: str, steps: int = 25):
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    cfg = TrainConfig(
        objective=objective, model=str(model), data=str(data), out=str(out), max_steps=steps,
        batch_size=8, lr=1e-3, device="cpu", seed=0,
    )  # fmt: skip
    return run_training(cfg, progress=False)


def _logits(path: Path, ids: list[int]) -> torch.Tensor:
    from svpo_harness.engines.checkpoint import load_checkpoint

    loaded = load_checkpoint(path, peft="merge")
    with torch.no_grad():
        return loaded.model(torch.tensor([ids])).logits[0, -1]


def test_svpo_training_lowers_the_dpo_loss_and_saves_a_usable_checkpoint(annotated, tmp_path):
    model, ann = annotated
    result = _train(model, ann, tmp_path / "svpo", "svpo", steps=30)
    meta = json.loads((tmp_path / "svpo" / "svpo.json").read_text())
    training = meta["training"]
    assert training["objective"] == "svpo" and training["value_head_trained"] is True
    assert training["data"]["hash"].startswith("sha256:") and training["data"]["records"]["pair"]
    assert result.steps == 30 and len(result.losses) == 30
    # the policy moved away from the reference (the model given to --model)
    ids = [1, 331, 29, 202]
    assert not torch.allclose(_logits(tmp_path / "svpo", ids), _logits(model, ids), atol=1e-4)
    # and loads in lm-eval's model unchanged
    from svpo_harness.lm_eval_model import SVPOLM

    lm = SVPOLM.create_from_arg_obj(
        {"pretrained": str(tmp_path / "svpo"), "device": "cpu", "decoding": "greedy"}
    )
    assert lm.loaded.value_head is not None


def test_dpo_builds_solution_pairs_and_its_loss_goes_down(annotated, tmp_path):
    model, ann = annotated
    losses = []
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    cfg = TrainConfig(
        objective="dpo", model=str(model), data=str(ann), out=str(tmp_path / "dpo"), max_steps=20,
        batch_size=8, lr=1e-3, device="cpu",
    )  # fmt: skip
    run_training(cfg, progress=False, on_step=lambda step, loss: losses.append(loss))
    assert losses[0] == pytest.approx(0.693147, abs=1e-4)  # policy == reference at step 0
    assert sum(losses[-5:]) / 5 < losses[0] - 0.05
    meta = json.loads((tmp_path / "dpo" / "svpo.json").read_text())
    assert meta["training"]["objective"] == "dpo"


def test_alphamath_trains_on_correct_paths_and_q_values(annotated, tmp_path):
    model, ann = annotated
    result = _train(model, ann, tmp_path / "am", "alphamath", steps=5)
    assert set(result.summary["records"]) == {"path", "step_q"}
    meta = json.loads((tmp_path / "am" / "svpo.json").read_text())
    assert meta["training"]["value_head_trained"] is True


def test_data_made_with_another_tokenizer_or_format_is_refused_before_training(annotated, tmp_path):
    model, ann = annotated
    fingerprint = json.loads((model / "svpo.json").read_text())["tokenizer_fingerprint"]
    lines = (ann / "pairs.jsonl").read_text().splitlines()
    bad = tmp_path / "pairs.jsonl"
    first = json.loads(lines[0])
    bad.write_text("\n".join([*lines[:3], json.dumps({**first, "tokenizer_fingerprint": "x"})]))
    with pytest.raises(PreferenceDataError, match=rf"{bad}:4: made with tokenizer x"):
        load_preference_data(bad, "svpo", tokenizer_fingerprint=fingerprint, step_format="arith")
    with pytest.raises(PreferenceDataError, match="step format 'arith'"):
        load_preference_data(ann, "svpo", tokenizer_fingerprint=fingerprint, step_format="cot")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(PreferenceDataError, match="no pair records"):
        load_preference_data(empty, "svpo", tokenizer_fingerprint=fingerprint, step_format="arith")
    folder = tmp_path / "not-annotation"
    folder.mkdir()
    with pytest.raises(PreferenceDataError, match="has no trees.jsonl"):
        load_preference_data(folder, "dpo", tokenizer_fingerprint=fingerprint, step_format="arith")
    shutil.rmtree(folder)


class Killed(Exception):
    pass


def test_a_killed_run_continues_with_the_same_command_and_refuses_other_settings(
    annotated, tmp_path
):
    from svpo_harness.pipelines.runs.run_dir import RunSettingsError
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    model, ann = annotated

    def config(out, **kw):
        base = dict(
            objective="svpo", model=str(model), data=str(ann), out=str(out), max_steps=14,
            batch_size=8, lr=1e-3, device="cpu", save_every=5,
        )  # fmt: skip
        return TrainConfig(**{**base, **kw})

    whole = run_training(config(tmp_path / "whole"), progress=False)

    def die(step, loss):
        if step == 12:
            raise Killed

    with pytest.raises(Killed):
        run_training(config(tmp_path / "cut"), progress=False, on_step=die)
    assert (tmp_path / "cut.run" / "step_10").is_dir()
    with pytest.raises(RunSettingsError, match="lr"):
        run_training(config(tmp_path / "cut", lr=2e-3), progress=False)
    resumed = run_training(config(tmp_path / "cut"), progress=False)
    assert resumed.resumed_from == 10
    assert resumed.losses == pytest.approx(whole.losses, abs=1e-5)
    ids = [1, 331, 29, 202]
    assert torch.allclose(
        _logits(tmp_path / "cut", ids), _logits(tmp_path / "whole", ids), atol=1e-5
    )
    assert not (tmp_path / "cut.run").exists()
    again = run_training(config(tmp_path / "cut", lr=2e-3, overwrite=True), progress=False)
    assert again.resumed_from is None


def test_value_head_lr_sets_the_heads_own_learning_rate(annotated, tmp_path):
    """--value-head-lr moves the head alone: near 0 the head stays, while the policy moves."""
    from safetensors.torch import load_file

    from svpo_harness.engines.checkpoint import load_checkpoint
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    model, ann = annotated

    def head_weight(path: Path) -> torch.Tensor:
        return load_checkpoint(path).value_head.linear.weight.detach()

    def train(out: Path, head_lr: float | None) -> Path:
        cfg = TrainConfig(
            objective="svpo", model=str(model), data=str(ann), out=str(out), max_steps=3,
            batch_size=8, lr=1e-3, value_head_lr=head_lr, device="cpu",
        )  # fmt: skip
        run_training(cfg, progress=False)
        return out

    start = head_weight(model)
    frozen = train(tmp_path / "frozen", 1e-12)
    moved = train(tmp_path / "moved", None)
    assert torch.allclose(head_weight(frozen), start, atol=1e-9)
    assert not torch.allclose(head_weight(moved), start, atol=1e-4)
    adapter = load_file(frozen / "adapter_model.safetensors")  # the policy still trained
    assert any(t.abs().sum() > 0 for k, t in adapter.items() if "lora_B" in k)


def test_reference_modes_packing_and_the_reference_cache_agree(annotated, tmp_path):
    """--precompute-ref (cached on disk), the live reference (LoRA adapter disabled; a frozen
    copy for --full) and --pack all train the same numbers; a second run reads the cache."""
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    model, ann = annotated
    cache = tmp_path / "cache"

    def run(name: str, **over):
        settings = dict(
            objective="svpo", model=str(model), data=str(ann), out=str(tmp_path / name),
            max_steps=4, batch_size=8, lr=1e-3, device="cpu", ref_cache=str(cache),
            value_head_dropout=0.0,
        )  # fmt: skip
        cfg = TrainConfig(**{**settings, **over})
        return run_training(cfg, progress=False)

    first = run("pre")
    assert first.summary["reference"] == "precompute"
    assert len(list(cache.glob("*.pt"))) == 1 and len(list(cache.glob("*.json"))) == 1
    live = run("live", precompute_ref=False)
    assert live.summary["reference"] == "adapter"
    assert live.losses == pytest.approx(first.losses, abs=1e-5)
    packed = run("packed", pack=True)
    assert packed.losses == pytest.approx(first.losses, abs=1e-5)
    # another beta: other losses, the same reference rows: read from the cache, not recomputed
    from svpo_harness.pipelines.train import ref_cache

    calls = []
    original = ref_cache.ReferenceStore.save
    ref_cache.ReferenceStore.save = lambda self, refs: calls.append(1) or original(self, refs)
    try:
        other = run("beta", beta=0.2)
    finally:
        ref_cache.ReferenceStore.save = original
    # at step 0 the policy is the reference whatever beta: the same loss, DPO term log 2
    assert calls == [] and other.losses[0] == pytest.approx(first.losses[0], abs=1e-6)
    full_pre = run("full_pre", full=True, lr=1e-4)
    full_live = run("full_live", full=True, lr=1e-4, precompute_ref=False)
    assert full_live.summary["reference"] == "model"
    assert full_live.losses == pytest.approx(full_pre.losses, abs=1e-5)
