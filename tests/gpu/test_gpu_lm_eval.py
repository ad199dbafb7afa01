"""`lm_eval --model svpo` (the stock console script, found through the start-up hook) on
svpo_arith, limit 50, greedy: with no `device` it runs on CUDA (measured: CUDA memory used) and
scores exactly what the CPU run scores, with the same responses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpu_helpers import run_probed

LIMIT = 50


def _lm_eval(demo: Path, out: Path, device: str | None) -> tuple[float, list[str], int]:
    """(acc, responses in doc order, largest CUDA allocation) of one CLI run."""
    out.mkdir()
    args = f"pretrained={demo},decoding=greedy" + (f",device={device}" if device else "")
    _, cuda_bytes = run_probed(
        "lm_eval",
        ["--model", "svpo", "--model_args", args, "--tasks", "svpo_arith",
         "--limit", str(LIMIT), "--batch_size", "25", "--output_path", str(out),
         "--log_samples"],
        cwd=out,
        timeout=240,
    )  # fmt: skip
    results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
    samples = [json.loads(x) for x in next(out.rglob("samples_svpo_arith*.jsonl")).open()]
    samples.sort(key=lambda s: s["doc_id"])
    assert len(samples) == LIMIT
    return results["svpo_arith"]["acc,none"], [s["resps"][0][0] for s in samples], cuda_bytes


@pytest.mark.gpu
@pytest.mark.gpu_timeout(300)
def test_lm_eval_svpo_on_cuda_scores_what_the_cpu_scores(demo, device, tmp_path, record_property):
    gpu_acc, gpu_texts, gpu_bytes = _lm_eval(demo, tmp_path / "default-device", None)
    cpu_acc, cpu_texts, cpu_bytes = _lm_eval(demo, tmp_path / "cpu", "cpu")
    record_property("acc", {"no device (CUDA)": gpu_acc, "device=cpu": cpu_acc})
    record_property("cuda_bytes", {"no device": gpu_bytes, "device=cpu": cpu_bytes})
    same = sum(a == b for a, b in zip(gpu_texts, cpu_texts, strict=True))
    record_property("same_responses", f"{same}/{LIMIT}")
    if device.type == "cuda":
        assert gpu_bytes > 0, "no device given: the run should have used CUDA"
        assert cpu_bytes == 0, "device=cpu: the run should not have touched CUDA"
    assert gpu_acc == cpu_acc
    assert gpu_texts == cpu_texts
    assert all(text.strip() for text in gpu_texts)
