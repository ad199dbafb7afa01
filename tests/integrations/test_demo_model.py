"""`svpo demo-model`: a policy that writes delimited steps, right sometimes and wrong sometimes,
whose quality is a property of the world (a plateau), not of the seed or of where training stops.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from svpo_harness.core.arith import greedy_ceiling
from svpo_harness.core.step_format import ARITH

# lm-eval's `hf` model, greedy, on every svpo_arith test problem (BENCHMARKS.md section 2).
USEFUL_RANGE = (0.25, 0.75)
# seen 0.037 (seed 1 vs 0) + 3 stderr of a difference of two 1,000-problem accuracies (0.022)
SEED_AGREEMENT = 0.11
# A model at the plateau imitates the careless teacher: its greedy accuracy sits just under the
# world's ceiling (core.arith.greedy_ceiling, 0.56), the gap being its own arithmetic slips.
PLATEAU_GAP = 0.09  # seen 0.038 below the ceiling (seed 1) + 3 stderr (0.016)


def _lm_eval_hf(model: Path, out: Path, limit: int | None = None) -> tuple[float, list[dict]]:
    """Greedy accuracy of lm-eval's own `hf` model on svpo_arith, and its logged samples."""
    lm_eval = Path(sys.executable).with_name("lm_eval")
    cmd = [str(lm_eval), "--model", "hf", "--model_args", f"pretrained={model}",
           "--device", "cpu", "--tasks", "svpo_arith", "--batch_size", "64",
           "--output_path", str(out), "--log_samples"]  # fmt: skip
    if limit:
        cmd += ["--limit", str(limit)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=out)
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    samples = [json.loads(x) for x in next(out.rglob("samples_svpo_arith*.jsonl")).open()]
    return results["svpo_arith"]["acc,none"], samples


@pytest.fixture(scope="module")
def shipped_accuracy(tmp_path_factory) -> tuple[float, list[dict]]:
    """The shipped model (a seed-0 build, what every machine starts from) through lm-eval."""
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    return _lm_eval_hf(shipped_demo_model(), tmp_path_factory.mktemp("eval-shipped"))


@pytest.mark.slow
def test_the_shipped_model_is_in_the_useful_range(shipped_accuracy):
    """Greedy on all 1,000 test problems lands in [0.25, 0.75], with real delimited steps."""
    accuracy, samples = shipped_accuracy
    assert len(samples) == 1000
    assert USEFUL_RANGE[0] <= accuracy <= USEFUL_RANGE[1], accuracy
    assert abs(accuracy - greedy_ceiling("test")) <= PLATEAU_GAP, accuracy  # trained to a plateau
    marked = 0
    for sample in samples:
        text = sample["resps"][0][0]
        steps = ARITH.split_steps(text)
        assert len(steps) >= 2, text  # several delimited steps, not one blob
        marked += ARITH.is_final_step(steps[-1])
    assert marked / len(samples) >= 0.95  # solutions end in a marked answer


@pytest.mark.slow
def test_a_rebuild_with_another_seed_reaches_the_shipped_quality(shipped_accuracy, tmp_path):
    """The slow suite's one full build: `build_demo_model` as it is today, with seed 1, gives
    other weights than the shipped seed-0 build but the same greedy accuracy within 0.05, at the
    plateau. (Byte-identical rebuilds of one seed: tests/pipelines/test_demo_model_build.py.)"""
    from svpo_harness.pipelines.demo.demo_model import build_demo_model, shipped_demo_model

    other = build_demo_model(tmp_path / "seed1", seed=1, progress=False)
    accuracy, samples = _lm_eval_hf(other.out, tmp_path)
    assert abs(accuracy - shipped_accuracy[0]) <= SEED_AGREEMENT, (accuracy, shipped_accuracy[0])
    assert abs(accuracy - greedy_ceiling("test")) <= PLATEAU_GAP, accuracy
    assert len(samples) == 1000
    meta = json.loads((other.out / "svpo.json").read_text())
    assert meta["training"]["demo_build"]["seed"] == 1
    shipped = (shipped_demo_model() / "model.safetensors").read_bytes()
    assert (other.out / "model.safetensors").read_bytes() != shipped


@pytest.mark.slow
def test_the_shipped_tool_variant_sits_at_the_same_plateau(tmp_path):
    """The tool variant (Python does the sums) on all 1,000 test problems, greedy through lm-eval's
    CLI with `--model svpo`: at the world's ceiling like the arith model, every solution made of
    code steps whose outputs the sandbox printed, ending in a marked answer."""
    from svpo_harness.core.step_format import TOOL
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model
    from svpo_harness.sandbox import SandboxUnavailable, sandbox_mode

    try:
        sandbox_mode()
    except SandboxUnavailable as exc:
        pytest.skip(f"sandbox unavailable: {exc}")
    lm_eval = Path(sys.executable).with_name("lm_eval")
    cmd = [str(lm_eval), "--model", "svpo", "--model_args",
           f"pretrained={shipped_demo_model('tool')},decoding=greedy", "--device", "cpu",
           "--tasks", "svpo_arith", "--batch_size", "64", "--output_path", str(tmp_path),
           "--log_samples"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tmp_path)
    results = json.loads(next(tmp_path.rglob("results_*.json")).read_text())["results"]
    accuracy = results["svpo_arith"]["acc,none"]
    assert abs(accuracy - greedy_ceiling("test")) <= PLATEAU_GAP, accuracy
    samples = [json.loads(x) for x in next(tmp_path.rglob("samples_svpo_arith*.jsonl")).open()]
    assert len(samples) == 1000
    for sample in samples:
        assert sample["arguments"]["gen_args_0"]["arg_0"].startswith("<question> ")
    finished = 0
    for sample in samples:
        steps = TOOL.split_steps(sample["resps"][0][0])
        assert "\n</code>\n<output>\n" in steps[0], steps[0]  # the first step computes
        finished += TOOL.is_final_step(steps[-1])
    assert finished / len(samples) >= 0.95
