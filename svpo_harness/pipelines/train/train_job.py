"""What every objective's set-up shares: the run folder, the new LoRA adapter, the
checkpoint's facts, and ``TrainJob``, what an objective hands to ``train.run_training``.

``train`` (SFT, the loop) and ``train_pref`` (the preference objectives) both build on these;
a module of its own so that neither imports the other for them.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from svpo_harness.pipelines.train.train_config import TrainConfig

# Settings that do not change the result (left out of the run folder's manifest): where things
# go, how often to save, and how the same numbers are computed (packing, the reference's mode).
RUNTIME_FIELDS = (
    "out", "device", "resume", "keep_run", "save_every", "log_every", "overwrite",
    "pack", "pack_length", "precompute_ref", "ref_cache",
)  # fmt: skip


def run_settings(cfg: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS}


def data_hash(files: list[str]) -> str:
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:32]


def model_fingerprint(model: str) -> str:
    """The tokenizer fingerprint of ``--model`` without loading weights."""
    from svpo_harness.engines.checkpoint import read_meta, tokenizer_fingerprint

    meta = read_meta(model)
    if meta is not None and meta.tokenizer_fingerprint:
        return meta.tokenizer_fingerprint
    from transformers import AutoTokenizer

    return tokenizer_fingerprint(AutoTokenizer.from_pretrained(model))


def open_training_run(
    cfg: TrainConfig, accelerator: Any, extra: dict[str, Any], fingerprint: str
) -> None:
    """Start or continue ``<out>.run/`` (refusing other settings) before any weights load."""
    from svpo_harness.pipelines.runs.run_dir import open_run_dir

    def open_it() -> None:
        open_run_dir(
            cfg.run_dir,
            {**run_settings(cfg), **extra},
            tokenizer_fingerprint=fingerprint,
            command=f"train {cfg.objective}",
            output_files=(),
        )

    if accelerator.is_main_process:  # one writer; the others read what it wrote
        if cfg.overwrite and cfg.run_dir.exists():
            shutil.rmtree(cfg.run_dir)
        open_it()
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        open_it()


def lora_config(cfg: TrainConfig, dropout: float | None = None) -> Any:
    """The new adapter; ``dropout`` overrides ``cfg.lora_dropout`` (0 for preference objectives,
    whose log-prob ratios must not see dropout noise: method.md section 5)."""
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r,
        lora_dropout=cfg.lora_dropout if dropout is None else dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )


@dataclass
class TrainJob:
    """An objective, set up: what the loop trains and how the checkpoint is described."""

    loaded: Any  # LoadedCheckpoint of --model (the policy being trained)
    spec: Any  # train_loop.LoopSpec
    trained_head: Any  # ValueHead in the loop (None: no value term)
    meta: Callable[[list[dict[str, float]], bool], Any]  # (reports, final) -> CheckpointMeta
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def saved_head(self) -> Any:
        return self.trained_head if self.trained_head is not None else self.loaded.value_head


def last_reports(reports: list[dict[str, float]]) -> dict[str, float]:
    """Each reported number averaged over the last 10 steps that have it."""
    tail = reports[-10:]
    keys = dict.fromkeys(k for r in tail for k in r)
    return {k: sum(r[k] for r in tail if k in r) / sum(k in r for r in tail) for k in keys}
