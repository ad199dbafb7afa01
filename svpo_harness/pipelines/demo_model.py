"""`svpo demo-model`: the offline demo policy, built from scratch in about 3 minutes on 2 CPU cores.

Steps: a locally trained BPE tokenizer and a ~0.9M-parameter Llama (engines.tiny_model), full-
weight SFT on the arithmetic world's train split, then a freshly initialised value head so value-
guided decoding runs on it (its values are uninformative until the head is trained).
The step count is fixed (not a time budget) so the same seed gives the same model anywhere; it was
chosen so greedy decoding still makes step errors (accuracy in BENCHMARKS.md).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from svpo_harness.pipelines.train_config import TrainConfig

# Tuned once on 2 CPU cores (BENCHMARKS.md, "Demo model"), then fixed.
DEMO_STEPS = 600
DEMO_BATCH = 32
DEMO_LR = 3e-3


@dataclass
class DemoModelResult:
    out: Path
    final_loss: float
    seconds: float
    parameters: int


def build_demo_model(
    out: str | Path,
    seed: int = 0,
    *,
    steps: int = DEMO_STEPS,
    progress: bool = True,
    overwrite: bool = False,
) -> DemoModelResult:
    from svpo_harness.engines.checkpoint import init_value_head_checkpoint
    from svpo_harness.engines.tiny_model import build_tiny_model
    from svpo_harness.pipelines.train import run_training

    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (choose another folder or pass --overwrite)")
    work = Path(
        tempfile.mkdtemp(prefix="svpo-demo-", dir=out.parent if out.parent.exists() else None)
    )
    try:
        base = build_tiny_model(work / "base", seed=seed)
        cfg = TrainConfig(
            objective="sft",
            model=str(base),
            data="arith",
            out=str(work / "sft"),
            full=True,
            lr=DEMO_LR,
            max_steps=steps,
            batch_size=DEMO_BATCH,
            warmup_steps=20,
            seed=seed,
            step_format="arith",
            save_every=0,
            max_length=256,
        )
        trained = run_training(cfg, progress=progress)
        init_value_head_checkpoint(work / "sft", out, seed=seed, overwrite=overwrite)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from svpo_harness.engines.checkpoint import load_checkpoint
    from svpo_harness.engines.tiny_model import count_parameters

    params = count_parameters(load_checkpoint(out, value_head="none").model)
    return DemoModelResult(out, trained.losses[-1], trained.seconds, params)
