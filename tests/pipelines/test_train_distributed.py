"""Two processes on the CPU (gloo, `accelerate launch`) train as one process with the same
global batch: the loss per step agrees within 1e-4 over 50 steps (issue 14)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def small_annotation(demo_annotation) -> tuple[Path, Path]:
    return demo_annotation  # tests/pipelines/conftest.py


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _launch(processes: int, settings: dict, losses_file: Path) -> list[float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    cmd = [accelerate, "launch", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--num_processes", str(processes)]  # fmt: skip
    if processes > 1:
        cmd += ["--multi_gpu", "--main_process_port", str(_free_port())]  # xdist: no fixed port
    payload = json.dumps({**settings, "losses_file": str(losses_file)})
    cmd += [str(HERE / "distributed_train_script.py"), payload]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(losses_file.read_text())
    assert record["world"] == processes
    return record["losses"]


@pytest.mark.slow
def test_two_cpu_processes_match_one_with_the_same_global_batch(small_annotation, tmp_path):
    model, ann = small_annotation
    common = dict(
        objective="svpo", model=str(model), data=str(ann), max_steps=50, lr=5e-4, device="cpu",
        seed=0, value_head_dropout=0.0, save_every=0, ref_cache="none",
    )  # fmt: skip
    one = _launch(1, {**common, "out": str(tmp_path / "one"), "batch_size": 8}, tmp_path / "1.json")
    two = _launch(2, {**common, "out": str(tmp_path / "two"), "batch_size": 4}, tmp_path / "2.json")
    assert len(one) == len(two) == 50
    assert two == pytest.approx(one, abs=1e-4)
    # one checkpoint, written by rank 0, equal to the one-process run's and moved off --model
    import torch

    from svpo_harness.engines.checkpoint import load_checkpoint

    ids = torch.tensor([[1, 331, 29, 202, 17]])

    def logits_and_value(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
        loaded = load_checkpoint(path, peft="merge")
        with torch.no_grad():
            out = loaded.model(ids, output_hidden_states=True)
            return out.logits[0, -1], loaded.value_head(out.hidden_states[-1][0, -1])

    (l1, v1), (l2, v2), (l0, _) = map(logits_and_value, (tmp_path / "one", tmp_path / "two", model))
    assert torch.allclose(l1, l2, atol=1e-4) and torch.allclose(v1, v2, atol=1e-4)
    assert not torch.allclose(l1, l0, atol=1e-3)
