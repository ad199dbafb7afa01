"""`svpo train --objective svpo --pack --dtype bfloat16` on CUDA (no --device) for 20 steps on
one batch from a small annotation of the demo model made on the device: the loss falls, and the
checkpoint loads back on the CPU with the same logits and values as on the GPU within bf16
tolerance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from gpu_helpers import last_json_line, run_probed

STEPS = 20
BATCH = 8
# bf16 keeps 8 bits of mantissa: logits of size ~10 move by ~0.05 per rounding; the two loads
# also sum in different orders (CPU vs CUDA kernels), so allow a few roundings of the largest.
BF16_LOGIT_REL = 0.03
BF16_VALUE = 0.06  # as test_gpu_bf16.py


def _annotate(demo: Path, root: Path, device: torch.device) -> Path:
    """16 arith:train questions, 16 simulations x 4 children (MCTS batches on the device)."""
    from svpo_harness.pipelines.annotate.annotate_run import AnnotateConfig, run_annotate

    cfg = AnnotateConfig(
        model=str(demo), data="arith:train", out=str(root / "ann"), limit=16, simulations=16,
        children=4, temperature=1.0, min_visits=1, device=str(device), trees_in_flight=16,
    )  # fmt: skip
    run_annotate(cfg, progress=False)
    return root / "ann"


def _one_batch(ann: Path, out: Path) -> int:
    """The annotation's pair records (at most 6) and step values up to one batch of 8: every
    step trains on the same batch, so its loss is comparable from step to step (across batches
    the SVPO loss of the demo annotation moves between 0.02 and 8, measured on the CPU)."""
    records = [json.loads(line) for line in (ann / "pairs.jsonl").read_text().splitlines()]
    pairs = [r for r in records if r["type"] == "pair"][:6]
    values = [r for r in records if r["type"] == "step_q"][: BATCH - len(pairs)]
    assert pairs, "the annotation made no preference pair"
    out.write_text("".join(json.dumps(r) + "\n" for r in pairs + values))
    return len(pairs)


def _logits_and_values(path: Path, device: str, prompts: list[list[int]], dtype: str = "auto"):
    from svpo_harness.engines.checkpoint import load_checkpoint

    loaded = load_checkpoint(path, device=device, dtype=dtype, peft="merge")
    logits, values = [], []
    with torch.no_grad():
        for ids in prompts:
            out = loaded.model(torch.tensor([ids], device=device), output_hidden_states=True)
            logits.append(out.logits[0].float().cpu())
            values.append(float(loaded.value_head(out.hidden_states[-1][0, -1])))
    return logits, values, next(loaded.model.parameters()).dtype


@pytest.mark.gpu
@pytest.mark.gpu_timeout(300)
def test_svpo_train_bf16_packed_on_cuda(demo, device, arith_questions, tmp_path, record_property):
    from transformers import AutoTokenizer

    base = tmp_path / "demo"
    shutil.copytree(demo, base)
    data = tmp_path / "batch.jsonl"
    record_property("pairs", _one_batch(_annotate(base, tmp_path, device), data))
    out = tmp_path / "svpo"
    args = ["train", "--objective", "svpo", "--model", str(base), "--data", str(data),
            "--out", str(out), "--pack", "--dtype", "bfloat16", "--max-steps", str(STEPS),
            "--batch-size", str(BATCH), "--lr", "1e-3", "--seed", "0", "--save-every", "10",
            "--keep-run", "--ref-cache", "none"]  # fmt: skip
    if device.type != "cuda":
        args += ["--device", str(device)]  # the CPU stand-in; on a GPU machine: no --device
    stdout, cuda_bytes = run_probed("svpo", args, cwd=tmp_path, timeout=240)
    final = last_json_line(stdout)
    progress = json.loads((tmp_path / "svpo.run" / "step_10" / "trainer_state.json").read_text())
    first = progress["losses"][0]
    record_property("loss", {"step 1": first, "step 10": progress["losses"][-1], "final": final})
    record_property("cuda_bytes", cuda_bytes)
    assert final["steps"] == STEPS
    if device.type == "cuda":
        assert cuda_bytes > 0, "no --device: training should have run on CUDA"
    # the loss falls (CPU, bf16: 0.84 at step 1, 0.56 at step 20; dropout makes it wobble)
    assert final["final_loss"] < 0.9 * first

    tokenizer = AutoTokenizer.from_pretrained(out)
    prompts = [tokenizer.encode(q) for q in arith_questions[:4]]
    # as it trained (bf16, on the device) against the checkpoint loaded back on the CPU
    on_gpu, gpu_values, _ = _logits_and_values(out, str(device), prompts, "bfloat16")
    on_cpu, cpu_values, dtype = _logits_and_values(out, "cpu", prompts)
    pairs = zip(on_gpu, on_cpu, strict=True)
    worst = max(float((a - b).abs().max() / b.abs().max()) for a, b in pairs)
    record_property("stored_dtype", str(dtype))
    record_property("max_logit_diff_relative", round(worst, 5))
    assert worst <= BF16_LOGIT_REL
    assert gpu_values == pytest.approx(cpu_values, abs=BF16_VALUE)
    base_logits, _, _ = _logits_and_values(base, "cpu", prompts)
    assert not torch.allclose(on_cpu[0], base_logits[0], atol=1e-4)  # the policy was trained
