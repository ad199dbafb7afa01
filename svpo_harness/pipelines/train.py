"""`svpo train`: the one training loop. Top to bottom: check, load or resume, build, loop, save.

Objectives plug in as (data builder, loss function) pairs; ``sft`` is token cross-entropy on
solution tokens. Resumable: every ``save_every`` optimizer steps a full checkpoint plus
``trainer_state.pt`` (optimizer, scheduler, RNG, position in the data) is written atomically to
``<out>.run/step_N``; ``--resume`` continues from the newest complete one and reproduces the
uninterrupted run's losses (the data order depends only on seed and epoch).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from svpo_harness.pipelines.train_config import TrainConfig

STATE_FILE = "trainer_state.pt"


@dataclass
class TrainResult:
    out: Path
    steps: int
    losses: list[float] = field(default_factory=list)  # one per optimizer step
    tokens: int = 0
    seconds: float = 0.0
    resumed_from: int | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device(name)


def _latest_step(run_dir: Path) -> Path | None:
    """The newest step_N folder whose trainer state was fully written."""
    done = [p for p in run_dir.glob("step_*") if (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(p.name.split("_")[1]), default=None)


def _lora_config(cfg: TrainConfig, dropout: float | None = None) -> Any:
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


def make_optimizer(
    params: list, cfg: TrainConfig, total_steps: int, head_params: list | None = None
) -> tuple[Any, Any]:
    """AdamW and the schedule every objective uses: linear warm-up, then sqrt decay to 0.

    ``head_params`` form their own group at ``cfg.value_head_lr`` (default ``cfg.lr``); the
    schedule scales both groups alike."""
    groups = [{"params": params, "lr": cfg.lr}]
    if head_params:
        groups.append({"params": head_params, "lr": cfg.value_head_lr or cfg.lr})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - s / max(1, total_steps)) ** 0.5,
    )
    return optimizer, scheduler


def restore_state(step_dir: Path, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Load a step folder's trainer state into the optimizer, scheduler and RNG; return it."""
    state = torch.load(step_dir / STATE_FILE, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    return state


def _batches(examples: list, batch_size: int, seed: int, epoch: int) -> list[list]:
    """The epoch's batches; the order depends only on (seed, epoch) so a resume replays it."""
    order = torch.randperm(
        len(examples), generator=torch.Generator().manual_seed(seed * 1000 + epoch)
    )
    idx = order.tolist()
    return [[examples[i] for i in idx[s : s + batch_size]] for s in range(0, len(idx), batch_size)]


def _collate_sft(batch: list, pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ex in enumerate(batch):
        n = len(ex.input_ids)
        ids[row, :n] = torch.tensor(ex.input_ids)
        labels[row, ex.prompt_len : n] = ids[row, ex.prompt_len : n]
        mask[row, :n] = 1
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }


def _sft_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    from svpo_harness.engines.losses import token_cross_entropy

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return token_cross_entropy(logits, batch["labels"]), int((batch["labels"] != -100).sum())


def run_training(cfg: TrainConfig, *, on_step: Any = None, progress: bool = True) -> TrainResult:
    """Train per ``cfg``; ``on_step(step, loss)`` is called after each optimizer step."""
    from tqdm.auto import tqdm

    from svpo_harness.engines.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
    from svpo_harness.engines.checkpoint_lineage import parent_spec
    from svpo_harness.pipelines.sft_data import build_sft_data

    if cfg.objective != "sft":
        from svpo_harness.pipelines.train_pref import run_preference_training

        # Preference runs continue <out>.run/ by themselves (the same command after a kill);
        # --resume is accepted and means the same.
        return run_preference_training(cfg, on_step=on_step, progress=progress)
    out, run_dir = Path(cfg.out), cfg.run_dir
    resume_from = _latest_step(run_dir) if cfg.resume else None
    if cfg.resume and resume_from is None:
        print(f"--resume: no complete step checkpoint in {run_dir}; starting from the beginning")
    if not cfg.resume and run_dir.exists():
        raise FileExistsError(f"{run_dir} holds an earlier run: pass --resume, or delete it")

    # Load the policy: from the step checkpoint when resuming, else from the base model. The
    # step checkpoint is self-contained (full weights or base + adapter), so no config replay.
    # A LoRA parent is merged first, for a new adapter or for --full (method.md section 5).
    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    source = str(resume_from) if resume_from else cfg.model
    peft_arg = None if resume_from else ("merge" if cfg.full else _lora_config(cfg))
    loaded = load_checkpoint(
        source,
        device=device,
        dtype=cfg.dtype,
        peft=peft_arg,
        step_format=cfg.step_format,
        trainable=True,
    )
    model, tokenizer, fmt = loaded.model, loaded.tokenizer, loaded.step_format
    model.train()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token

    # Data before the optimizer: the scheduler needs the number of steps.
    data = build_sft_data(cfg.data, tokenizer, fmt, cfg.max_length, cfg.arith_n)
    per_epoch = math.ceil(math.ceil(len(data.examples) / cfg.batch_size) / cfg.grad_accum)
    total_steps = cfg.max_steps or per_epoch * cfg.epochs
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer, scheduler = make_optimizer(params, cfg, total_steps)
    step, epoch, batch_pos, losses, tokens = 0, 0, 0, [], 0
    if resume_from is not None:
        state = restore_state(resume_from, optimizer, scheduler)
        step, epoch, batch_pos = state["step"], state["epoch"], state["batch_pos"]
        losses, tokens = state["losses"], state["tokens"]
        if state["config"] != cfg.to_dict() | {"resume": state["config"]["resume"]}:
            print(f"warning: settings differ from {resume_from}; the checkpoint's state wins")

    # The parent is what --model named, not its own base_model: the new adapter sits on exactly
    # that policy (issue 13). save_checkpoint records it relative to the folder + absolute.
    meta = CheckpointMeta(
        base_model=parent_spec(cfg.model),
        step_format=fmt,
        chat_template=loaded.meta.chat_template,
        training={"objective": cfg.objective, "config": cfg.to_dict()},
    )

    def save_step() -> None:
        folder = save_checkpoint(
            run_dir / f"step_{step}", model, tokenizer, loaded.value_head, meta, overwrite=True
        )
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "step": step,
            "epoch": epoch,
            "batch_pos": batch_pos,
            "losses": losses,
            "tokens": tokens,
            "config": cfg.to_dict(),
        }
        tmp = folder / (STATE_FILE + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, folder / STATE_FILE)  # its presence marks the step folder complete
        for old in run_dir.glob("step_*"):  # keep only the newest complete one
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)

    started = time.perf_counter()
    bar = tqdm(
        total=total_steps,
        initial=step,
        desc=f"train {cfg.objective}",
        disable=not progress,
        unit="step",
    )
    while step < total_steps:
        batches = _batches(data.examples, cfg.batch_size, cfg.seed, epoch)
        while batch_pos < len(batches) and step < total_steps:
            group = batches[batch_pos : batch_pos + cfg.grad_accum]
            optimizer.zero_grad(set_to_none=True)
            step_loss, step_tokens = 0.0, 0
            for batch in group:
                loss, n_tok = _sft_loss(model, _collate_sft(batch, tokenizer.pad_token_id, device))
                (loss / len(group)).backward()
                step_loss += loss.item() / len(group)
                step_tokens += n_tok
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            batch_pos += len(group)
            step += 1
            losses.append(step_loss)
            tokens += step_tokens
            elapsed = time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}", tok_s=f"{tokens / max(elapsed, 1e-9):.0f}")
            if on_step is not None:
                on_step(step, step_loss)
            if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
                save_step()
        if batch_pos >= len(batches):
            epoch, batch_pos = epoch + 1, 0
    bar.close()

    model.eval()
    save_checkpoint(out, model, tokenizer, loaded.value_head, meta, overwrite=True)
    if not cfg.keep_run:
        shutil.rmtree(run_dir, ignore_errors=True)
    seconds = time.perf_counter() - started
    return TrainResult(
        out=out,
        steps=step,
        losses=losses,
        tokens=tokens,
        seconds=seconds,
        resumed_from=int(resume_from.name.split("_")[1]) if resume_from else None,
        summary={
            "examples": len(data.examples),
            "truncated": data.truncated,
            "boundary_retokenized": data.boundary_retokenized,
        },
    )
