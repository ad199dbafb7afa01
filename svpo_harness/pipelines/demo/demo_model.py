"""`svpo demo-model`: the offline demo policy, built from scratch in about 3 minutes on 2 CPU cores.

Steps: a locally trained BPE tokenizer and a tiny Llama (engines.tiny_model), full-weight SFT on
the arithmetic world's train split, then a freshly initialised value head so value-guided
decoding runs on it (its values are uninformative until the head is trained).

Why the settings are what they are (BENCHMARKS.md section 2 has the measurements): the model is
trained until its accuracy has stopped moving (a plateau), so its quality is a property of the
world's difficulty and the model's size, not of where training happened to stop or of which
float kernels the CPU has. A build is deterministic on one machine: a fixed thread count,
deterministic algorithms, every random stream seeded. Across machines it is not bit-identical
(other CPUs use other matmul kernels), which is why the package also ships one built copy
(``shipped_demo_model()``): every machine can start from the same weights.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from svpo_harness.pipelines.train import TrainConfig

# Chosen once on 2 CPU cores (BENCHMARKS.md section 2), then fixed: small batches learn this
# world's arithmetic in the fewest examples, and 2,800 steps of 8 reach the plateau (greedy
# accuracy near the world's ceiling, the share of test problems without a division).
DEMO_STEPS = 2800
DEMO_BATCH = 8
DEMO_LR = 2e-3
DEMO_WARMUP = 20
DEMO_MODEL_SIZE: dict[str, int] = {"hidden_size": 128, "layers": 4, "heads": 4}
DEMO_THREADS = 2  # the build's fixed thread count unless OMP_NUM_THREADS or --threads says
SHIPPED_FOLDER = "demo-model"  # under svpo_harness/assets/; the tool variant: "demo-model-tool"
DEMO_STEP_FORMATS = ("arith", "tool")
# Per layout: the longest training example (tool solutions are ~2.7x the tokens: their tags
# split into pieces, as in real tokenizers) and the recorded per-step token cap (the tiny model
# has 512 positions; the longest demonstrated step is 22 tokens in arith, 54 in tool).
DEMO_MAX_LENGTH = {"arith": 256, "tool": 384}
DEMO_MAX_STEP_TOKENS = {"arith": 48, "tool": 96}


@dataclass
class DemoModelResult:
    out: Path
    final_loss: float
    seconds: float
    parameters: int
    threads: int


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set (so a single-thread build is one variable away), else 2."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else DEMO_THREADS


def _check_format(step_format: str) -> str:
    if step_format not in DEMO_STEP_FORMATS:
        raise ValueError(
            f"the demo model is built with step format arith or tool, not {step_format!r}"
        )
    return step_format


def shipped_demo_model(step_format: str = "arith") -> Path:
    """The demo model built once and shipped inside the package (read-only; copy to change it);
    ``step_format="tool"``: its tool-integrated variant (core/arith_tool.py)."""
    name = SHIPPED_FOLDER if _check_format(step_format) == "arith" else SHIPPED_FOLDER + "-tool"
    folder = Path(str(resources.files("svpo_harness") / "assets" / name))
    if not (folder / "svpo.json").is_file():
        raise FileNotFoundError(
            f"{folder}: the shipped demo model is missing from this install; "
            f"build one with `svpo demo-model --step-format {step_format} --out DIR`"
        )
    return folder


def copy_shipped_demo_model(
    out: str | Path, *, overwrite: bool = False, step_format: str = "arith"
) -> Path:
    """Copy the shipped demo model to ``out`` (a normal, writable checkpoint folder)."""
    out = Path(out)
    source = shipped_demo_model(step_format)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} already exists (choose another folder or --overwrite)")
        shutil.rmtree(out)
    shutil.copytree(source, out)
    return out


def build_record(
    seed: int, steps: int, threads: int, seconds: float, loss: float, step_format: str = "arith"
) -> dict:
    """What svpo.json records about a build, so a model says how it was made and where."""
    import torch
    import transformers

    return {
        "seed": seed,
        "step_format": step_format,
        "steps": steps,
        "batch_size": DEMO_BATCH,
        "lr": DEMO_LR,
        "model_size": DEMO_MODEL_SIZE,
        "threads": threads,
        "final_loss": round(loss, 5),
        "build_seconds": round(seconds, 1),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.machine(),
    }


def build_demo_model(
    out: str | Path,
    seed: int = 0,
    *,
    steps: int = DEMO_STEPS,
    threads: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    step_format: str = "arith",
) -> DemoModelResult:
    """Build the demo checkpoint into ``out`` (deterministic for a seed on one machine).

    ``step_format="tool"``: the same world and teacher written with tool-integrated steps
    (core/arith_tool.py): its own tokenizer, fitted on that layout, and the same model size,
    optimizer and steps."""
    from svpo_harness.engines.checkpoint import init_value_head_checkpoint, load_checkpoint
    from svpo_harness.engines.tiny_model import build_tiny_model, count_parameters
    from svpo_harness.pipelines.train import run_training

    out = Path(out)
    _check_format(step_format)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (choose another folder or pass --overwrite)")
    threads = threads or default_threads()
    saved = _pin_runtime(threads)
    work = Path(
        tempfile.mkdtemp(prefix="svpo-demo-", dir=out.parent if out.parent.exists() else None)
    )
    started = time.perf_counter()
    try:
        base = build_tiny_model(
            work / "base", seed=seed, step_format=step_format, **DEMO_MODEL_SIZE
        )
        cfg = TrainConfig(
            objective="sft",
            model=str(base),
            data="arith",
            out=str(work / "sft"),
            full=True,
            lr=DEMO_LR,
            max_steps=steps,
            batch_size=DEMO_BATCH,
            warmup_steps=DEMO_WARMUP,
            seed=seed,
            step_format=step_format,
            save_every=0,
            max_length=DEMO_MAX_LENGTH[step_format],
            device="cpu",  # the build is defined on the CPU (threads, kernels): see the doc
        )
        trained = run_training(cfg, progress=progress)
        init_value_head_checkpoint(work / "sft", out, seed=seed, overwrite=overwrite)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _restore_runtime(saved)
    seconds = time.perf_counter() - started
    final_loss = sum(trained.losses[-20:]) / len(trained.losses[-20:])
    record = build_record(seed, steps, threads, seconds, final_loss, step_format)
    _record_build(out, record, step_format)
    params = count_parameters(load_checkpoint(out, value_head="none").model)
    return DemoModelResult(out, final_loss, seconds, params, threads)


def _pin_runtime(threads: int) -> dict[str, Any]:
    """Fixed thread count and deterministic algorithms for the build; returns what to restore."""
    import torch

    saved = {
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
    }
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)  # CPU ops here all have one
    return saved


def _restore_runtime(saved: dict[str, Any]) -> None:
    import torch

    torch.set_num_threads(saved["threads"])
    torch.use_deterministic_algorithms(saved["deterministic"])


def _record_build(out: Path, record: dict[str, Any], step_format: str = "arith") -> None:
    """Name the model for what it is (its base was a temp folder), add the build record and
    record its step format with the demo's per-step token cap.

    Its full weights need no base; a model trained on it names this folder as its parent."""
    from svpo_harness.core.step_format import get_step_format

    meta_path = out / "svpo.json"
    meta = json.loads(meta_path.read_text())
    fmt = get_step_format(step_format)
    meta["step_format"] = fmt.with_overrides(
        max_step_tokens=DEMO_MAX_STEP_TOKENS[step_format]
    ).to_dict()
    meta["base_model"] = "svpo-demo-model (built from scratch by `svpo demo-model`)"
    meta.pop("base_model_path", None)  # the deleted build folder: no fallback to record
    meta["training"] = {**meta.get("training", {}), "demo_build": record}
    tmp = meta_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp, meta_path)
