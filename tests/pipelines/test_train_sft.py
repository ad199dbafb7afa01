"""The SFT training loop: learns, resumes after a kill with the same losses, LoRA and full."""

from __future__ import annotations

import json
import math

import pytest

from svpo_harness.pipelines.train.train import run_training
from svpo_harness.pipelines.train.train_config import TrainConfig


def _cfg(model, out, **over) -> TrainConfig:
    base = dict(
        objective="sft",
        model=str(model),
        data="arith",
        out=str(out),
        full=True,
        lr=3e-3,
        max_steps=6,
        batch_size=8,
        arith_n=96,
        step_format="arith",
        save_every=2,
        seed=3,
        max_length=128,
    )
    base.update(over)
    return TrainConfig(**base)


class Killed(Exception):
    pass


def test_loss_goes_down_and_checkpoint_loads(micro_model, tmp_path):
    from svpo_harness.engines.checkpoint import load_checkpoint

    result = run_training(_cfg(micro_model, tmp_path / "ckpt", max_steps=12), progress=False)
    assert result.steps == 12 and len(result.losses) == 12
    assert result.losses[-1] < result.losses[0]
    assert all(math.isfinite(x) for x in result.losses)
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert loaded.step_format.name == "arith"
    assert loaded.meta.training["objective"] == "sft"
    assert not (tmp_path / "ckpt.run").exists()  # removed after success unless --keep-run


def test_resume_after_a_kill_reproduces_the_uninterrupted_losses(micro_model, tmp_path):
    straight = run_training(_cfg(micro_model, tmp_path / "a"), progress=False).losses

    def kill_at_5(step, loss):
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        run_training(_cfg(micro_model, tmp_path / "b"), on_step=kill_at_5, progress=False)
    assert (tmp_path / "b.run" / "step_4" / "trainer_state.json").is_file()
    # the same command continues (annotate's convention); --resume means the same
    resumed = run_training(_cfg(micro_model, tmp_path / "b"), progress=False)
    assert resumed.resumed_from == 4
    assert resumed.losses[:4] == straight[:4]  # history restored from the state file
    assert resumed.losses[4:] == pytest.approx(straight[4:], rel=1e-5, abs=1e-6)


def test_lora_trains_only_the_adapter(micro_model, tmp_path):
    from svpo_harness.engines.checkpoint import load_checkpoint

    result = run_training(
        _cfg(micro_model, tmp_path / "lora", full=False, lora_r=4, max_steps=2, lr=1e-2),
        progress=False,
    )
    assert result.steps == 2
    meta = json.loads((tmp_path / "lora" / "svpo.json").read_text())
    assert meta["policy"] == "lora"
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    assert load_checkpoint(tmp_path / "lora").meta.policy == "lora"


def test_an_earlier_run_with_other_settings_is_refused_not_clobbered(micro_model, tmp_path):
    from svpo_harness.pipelines.runs.run_dir import RunSettingsError

    def stop(step, loss):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        run_training(_cfg(micro_model, tmp_path / "c"), on_step=stop, progress=False)
    with pytest.raises(RunSettingsError, match="lr"):
        run_training(_cfg(micro_model, tmp_path / "c", lr=1e-3), progress=False)
    assert (tmp_path / "c.run" / "step_2" / "trainer_state.json").is_file()  # nothing lost
    again = run_training(_cfg(micro_model, tmp_path / "c", lr=1e-3, overwrite=True), progress=False)
    assert again.resumed_from is None and again.steps == 6


def test_sft_records_file_and_bad_line(micro_model, tmp_path):
    good = {
        "type": "sft",
        "schema_version": 1,
        "question_id": "q1",
        "question": "Tom has 3 apples.",
        "steps": ["He buys 2, so 3 + 2 = 5.", "The answer is 5."],
        "step_format": "arith",
    }
    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps(good) + "\n" + json.dumps(good | {"question_id": "q2"}) + "\n")
    result = run_training(
        _cfg(micro_model, tmp_path / "d", data=str(data), max_steps=2), progress=False
    )
    assert result.summary["examples"] == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(good) + "\n" + json.dumps({**good, "steps": "oops"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: field 'steps'"):
        run_training(_cfg(micro_model, tmp_path / "e", data=str(bad)), progress=False)


def test_config_is_checked_before_anything_loads():
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(model="x", out="y", batch_size=0)
    with pytest.raises(ValueError, match="annotation records"):
        TrainConfig(model="x", out="y", objective="dpo", data="arith")


@pytest.mark.slow
def test_a_hard_exit_then_resume_from_the_command_line(micro_model, tmp_path):
    """`svpo train` exits hard (os._exit, as under `kill -9`) right after step 6 and its
    checkpoint (SVPO_FAULT_EXIT_AT); the same command then finishes from step 6."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from svpo_harness.core.fault import FAULT_ENV, FAULT_EXIT_CODE

    svpo = str(Path(sys.executable).with_name("svpo"))
    out = tmp_path / "killed"
    cmd = [
        svpo, "train", "--model", str(micro_model), "--data", "arith", "--out", str(out),
        "--full", "--max-steps", "40", "--batch-size", "8", "--arith-n", "200",
        "--save-every", "2", "--step-format", "arith", "--lr", "3e-3",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    killed = subprocess.run(
        cmd, env={**env, FAULT_ENV: "train:6"}, capture_output=True, text=True, timeout=600
    )
    assert killed.returncode == FAULT_EXIT_CODE, killed.stderr[-3000:]
    run_dir = tmp_path / "killed.run"
    assert [p.parent.name for p in run_dir.glob("step_*/trainer_state.json")] == ["step_6"]
    assert not (out / "svpo.json").exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, timeout=600)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 40 and summary["resumed_from"] == 6
    assert (out / "svpo.json").is_file()
