"""The demo-model build: deterministic on one machine, records how it was made; the shipped copy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")


def _weights_digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def _head(folder: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(folder / "value_head.safetensors"), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k).tolist() for k in handle.keys()}
        return tensors, handle.metadata()


@pytest.fixture(scope="module")
def short_builds(tmp_path_factory) -> list:
    """Three 4-step builds: seed 0 twice, seed 1 once (seconds each)."""
    from svpo_harness.pipelines.demo_model import build_demo_model

    root = tmp_path_factory.mktemp("demo-builds")
    return [
        build_demo_model(root / name, seed=seed, steps=4, progress=False)
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    ]


def test_same_seed_gives_byte_identical_weights(short_builds) -> None:
    a, b, c = short_builds
    assert _weights_digest(a.out) == _weights_digest(b.out)
    # The value head's tensors and metadata, not its bytes: safetensors writes the header's
    # metadata map in hash order, which changes from one save to the next.
    assert _head(a.out) == _head(b.out)
    assert a.final_loss == b.final_loss
    assert _weights_digest(a.out) != _weights_digest(c.out)


def test_the_build_leaves_the_runtime_as_it_found_it(short_builds) -> None:
    import torch

    assert not torch.are_deterministic_algorithms_enabled()


def test_svpo_json_records_the_build(short_builds) -> None:
    from svpo_harness.pipelines.demo_model import DEMO_BATCH, DEMO_LR, DEMO_MODEL_SIZE

    a = short_builds[0]
    meta = json.loads((a.out / "svpo.json").read_text())
    record = meta["training"]["demo_build"]
    assert record["seed"] == 0 and record["steps"] == 4 and record["threads"] == a.threads
    assert record["batch_size"] == DEMO_BATCH and record["lr"] == DEMO_LR
    assert record["model_size"] == DEMO_MODEL_SIZE
    assert record["cpu_capability"]  # where it was built: kernels differ across CPUs
    assert "svpo-demo-model" in meta["base_model"]  # not the temp folder it was trained from
    assert "base_model_path" not in meta  # nor its absolute path (issue 13)
    assert not list(a.out.parent.glob("svpo-demo-*"))  # the work folder is gone


def test_thread_count_comes_from_omp_num_threads_else_two(monkeypatch) -> None:
    from svpo_harness.pipelines.demo_model import DEMO_THREADS, default_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == DEMO_THREADS == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "garbage")
    assert default_threads() == 2


def test_existing_folder_is_not_overwritten(short_builds) -> None:
    from svpo_harness.pipelines.demo_model import build_demo_model

    before = _weights_digest(short_builds[0].out)
    with pytest.raises(FileExistsError, match="already exists"):
        build_demo_model(short_builds[0].out, steps=1, progress=False)
    assert _weights_digest(short_builds[0].out) == before


def test_shipped_model_loads_and_writes_marked_answers() -> None:
    """The copy inside the package is a full checkpoint that solves arithmetic problems."""
    from svpo_harness.core.arith import arith_split
    from svpo_harness.core.search import RootState, run_search
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.pipelines.demo_model import shipped_demo_model

    folder = shipped_demo_model()
    meta = json.loads((folder / "svpo.json").read_text())
    assert meta["step_format"]["name"] == "arith"
    assert meta["training"]["demo_build"]["seed"] == 0
    policy = HFStepPolicy.from_checkpoint(folder, device="cpu")
    assert policy.has_value_head
    problems = arith_split("test", 20)
    roots = [RootState(p.question_id, policy.encode_prompt(p.question)) for p in problems]
    results = run_search("greedy", roots, policy)
    assert sum(r.finished for r in results) >= 18  # marked final answers, one step per line
    right = sum(
        r.text.strip().endswith(f"The answer is {p.answer}.")
        for r, p in zip(results, problems, strict=True)
    )
    assert 2 <= right <= 19  # right sometimes and wrong sometimes (0.25-0.75 on 1,000)


def test_cli_copies_the_shipped_model(tmp_path) -> None:
    from click.testing import CliRunner

    from svpo_harness.cli import main
    from svpo_harness.pipelines.demo_model import shipped_demo_model

    out = tmp_path / "copy"
    result = CliRunner().invoke(main, ["demo-model", "--out", str(out), "--shipped"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["shipped"] is True
    assert _weights_digest(out) == _weights_digest(shipped_demo_model())
    again = CliRunner().invoke(main, ["demo-model", "--out", str(out), "--shipped"])
    assert again.exit_code != 0 and "already exists" in again.output
