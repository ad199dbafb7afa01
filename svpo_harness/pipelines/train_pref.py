"""`svpo train --objective svpo|dpo|alphamath`: step-level DPO + value ranking + Q regression.

Top to bottom: check the data against the model (before any weights load), load the policy
(LoRA with dropout 0, or full weights; a LoRA parent is merged first) and its value head (a
fresh one if the checkpoint has none), compute the reference log-probs once (the reference is
the policy given to ``--model``: at step 0 the trained policy equals it, so one no-grad pass
over every row before training is exactly the reference and needs no second model), then the
loop: micro-batches accumulate ``combine_losses`` over the window's global counts (engines/
losses.py), AdamW over the policy's trainable weights and the head, a progress bar with each
loss part and both accuracies, and a checkpoint whose ``svpo.json`` records the objective, the
losses, a hash of the data and whether the head was trained.

Long runs: ``<out>.run/`` holds a manifest of the settings, the reference log-probs (computed
once, at step 0) and the newest ``step_N`` checkpoint with the trainer state every
``save_every`` steps; re-running the same command continues from it and reproduces the
uninterrupted run (the data order depends only on seed and epoch), other settings are refused
naming them, ``--overwrite`` starts over (the annotate convention).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from svpo_harness.pipelines.train_config import TrainConfig


def loss_weights(cfg: TrainConfig) -> Any:
    from svpo_harness.engines.losses import LossWeights

    common = {"beta": cfg.beta, "rank_loss": cfg.rank_loss, "margin": cfg.rank_margin}
    if cfg.objective == "dpo":  # solution-level DPO only: the baseline without a value head
        return LossWeights(**common, lambda_dpo=1.0, lambda_rank=0.0, lambda_mse=0.0)
    if cfg.objective == "alphamath":  # CE on correct paths + lambda_mse x MSE(V, Q)
        return LossWeights(
            **common, lambda_dpo=0.0, lambda_rank=0.0, lambda_mse=cfg.lambda_mse, lambda_sft=1.0
        )
    return LossWeights(
        **common, lambda_dpo=1.0, lambda_rank=cfg.lambda_rank, lambda_mse=cfg.lambda_mse
    )


# Settings that do not change the result (left out of the run folder's manifest).
RUNTIME_FIELDS = ("out", "device", "resume", "keep_run", "save_every", "log_every", "overwrite")
REFS_FILE = "reference_logps.pt"


def run_settings(cfg: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in cfg.to_dict().items() if k not in RUNTIME_FIELDS}


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def data_hash(files: list[str]) -> str:
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return "sha256:" + digest.hexdigest()[:32]


@torch.no_grad()
def reference_logps(model: Any, examples: list, pad_id: int, device: Any, batch: int) -> list:
    """Per example, its rows' summed log-probs under the model as it is now (the reference)."""
    from svpo_harness.engines.collate import collate, score_rows

    out: list[torch.Tensor] = []
    for start in range(0, len(examples), batch):
        chunk = examples[start : start + batch]
        scores = score_rows(model, collate(chunk, pad_id, device)).logps.detach()
        offset = 0
        for ex in chunk:
            out.append(scores[offset : offset + len(ex.rows)])
            offset += len(ex.rows)
    return out


def run_preference_training(cfg: TrainConfig, *, on_step: Any = None, progress: bool = True):
    """Train ``cfg.objective`` in (svpo, dpo, alphamath); returns a ``TrainResult``."""
    from tqdm.auto import tqdm

    from svpo_harness.engines.checkpoint import (
        CheckpointMeta,
        load_checkpoint,
        read_meta,
        save_checkpoint,
        tokenizer_fingerprint,
    )
    from svpo_harness.engines.collate import (
        batch_loss_sums,
        collate,
        prepare_examples,
        score_rows,
        window_counts,
    )
    from svpo_harness.engines.losses import LossSums, combine_losses, loss_report
    from svpo_harness.engines.value_head import ValueHead
    from svpo_harness.pipelines.pref_data import load_preference_data
    from svpo_harness.pipelines.train import TrainResult, _batches, _device, _lora_config

    weights = loss_weights(cfg)
    needs_head = weights.lambda_rank > 0 or weights.lambda_mse > 0
    # Check the data before any weights load: tokenizer and format come from the checkpoint.
    meta = read_meta(cfg.model)
    if meta is None:
        raise ValueError(f"{cfg.model}: preference training needs an svpo checkpoint (svpo.json)")
    from transformers import AutoTokenizer

    fmt_name = cfg.step_format or meta.step_format.name
    fingerprint = meta.tokenizer_fingerprint or tokenizer_fingerprint(
        AutoTokenizer.from_pretrained(cfg.model)
    )
    data = load_preference_data(
        cfg.data, cfg.objective, tokenizer_fingerprint=fingerprint, step_format=fmt_name
    )
    examples, prep = prepare_examples(data.records, cfg.max_length)
    if not examples:
        raise ValueError(f"no training example fits --max-length {cfg.max_length}: {prep}")

    # The run folder <out>.run/: the same command continues it after a kill (annotate's
    # convention), other settings are refused naming them, --overwrite starts over.
    from svpo_harness.pipelines.run_dir import open_run_dir
    from svpo_harness.pipelines.train import STATE_FILE, _latest_step, make_optimizer, restore_state

    run_dir = cfg.run_dir
    if cfg.overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    open_run_dir(
        run_dir,
        {**run_settings(cfg), "data_hash": data_hash(data.source)},
        tokenizer_fingerprint=fingerprint,
        command=f"train {cfg.objective}",
        output_files=(REFS_FILE,),
    )
    resume_from = _latest_step(run_dir)

    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    lora = None if cfg.full else _lora_config(cfg, dropout=0.0)  # no dropout: method.md 5
    fresh_peft = "merge" if cfg.full else lora
    loaded = load_checkpoint(
        str(resume_from) if resume_from else cfg.model,
        device=device,
        dtype=cfg.dtype,
        peft=None if resume_from else fresh_peft,
        step_format=cfg.step_format,
        trainable=True,
    )
    model, tokenizer = loaded.model, loaded.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    head = loaded.value_head
    if head is None and needs_head:
        hidden = model.config.get_text_config().hidden_size
        head = ValueHead(hidden, generator=torch.Generator().manual_seed(cfg.seed)).to(device)
    pad = int(tokenizer.pad_token_id)
    model.eval()  # dropout off in every policy forward (method.md section 5)
    refs_file = run_dir / REFS_FILE
    if refs_file.is_file():  # the reference is the step-0 policy: never recompute on resume
        refs = torch.load(refs_file, map_location="cpu")
    else:
        if resume_from is not None:
            raise ValueError(f"{run_dir}: {REFS_FILE} is missing; pass --overwrite to start over")
        refs = reference_logps(model, examples, pad, device, cfg.batch_size)
        _atomic_torch_save([r.cpu() for r in refs], refs_file)

    policy_params = [p for p in model.parameters() if p.requires_grad]
    head_params: list = []
    if head is not None:
        head.requires_grad_(True).train()
        head_params = list(head.parameters())
    params = policy_params + head_params
    per_epoch = math.ceil(math.ceil(len(examples) / cfg.batch_size) / cfg.grad_accum)
    total_steps = cfg.max_steps or per_epoch * cfg.epochs
    optimizer, scheduler = make_optimizer(policy_params, cfg, total_steps, head_params)
    index = list(range(len(examples)))
    step, epoch, pos, losses, reports = 0, 0, 0, [], []
    if resume_from is not None:
        state = restore_state(resume_from, optimizer, scheduler)
        step, epoch, pos = state["step"], state["epoch"], state["batch_pos"]
        losses, reports = state["losses"], state["reports"]

    from svpo_harness.engines.checkpoint_lineage import parent_spec

    def checkpoint_meta(final: bool) -> Any:
        tail = reports[-10:]  # windows without pairs report no accuracies: average what exists
        keys = dict.fromkeys(k for r in tail for k in r)
        last = {k: sum(r[k] for r in tail if k in r) / sum(k in r for r in tail) for k in keys}
        return CheckpointMeta(
            base_model=parent_spec(cfg.model),
            step_format=loaded.step_format,
            chat_template=loaded.meta.chat_template,
            training={
                "objective": cfg.objective,
                "config": cfg.to_dict(),
                "value_head_trained": head is not None and needs_head and final,
                "losses_last_10_steps": last,
                "data": {
                    "files": data.source,
                    "hash": data_hash(data.source),
                    "records": data.counts,
                    "skipped": data.skipped,
                    "prepare": {
                        "kept": dict(prep.kept),
                        "truncated": dict(prep.truncated),
                        "dropped": dict(prep.dropped),
                    },
                },
            },
        )

    def save_step() -> None:
        folder = save_checkpoint(
            run_dir / f"step_{step}", model, tokenizer, head, checkpoint_meta(False), overwrite=True
        )
        state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "step": step,
            "epoch": epoch,
            "batch_pos": pos,
            "losses": losses,
            "reports": reports,
        }
        _atomic_torch_save(state, folder / STATE_FILE)  # its presence marks the folder done
        for old in run_dir.glob("step_*"):  # keep only the newest complete one
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)

    started = time.perf_counter()
    bar = tqdm(total=total_steps, initial=step, desc=f"train {cfg.objective}", disable=not progress)
    while step < total_steps:
        batches = _batches(index, cfg.batch_size, cfg.seed, epoch)
        while pos < len(batches) and step < total_steps:
            group = batches[pos : pos + cfg.grad_accum]
            counts = window_counts([examples[i] for b in group for i in b])
            optimizer.zero_grad(set_to_none=True)
            window = LossSums.zeros(device)
            for micro in group:
                batch = collate([examples[i] for i in micro], pad, device)
                ref = torch.cat([refs[i] for i in micro]).to(device)
                scores = score_rows(model, batch, head)
                sums = batch_loss_sums(batch, scores, ref, weights)
                combine_losses(sums, counts, weights).backward()
                window = window + sums.detach()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            pos, step = pos + len(group), step + 1
            report = loss_report(window, counts, weights)
            losses.append(report["loss"])
            reports.append(report)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in report.items()})
            if on_step is not None:
                on_step(step, report["loss"])
            if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
                save_step()
        if pos >= len(batches):
            epoch, pos = epoch + 1, 0
    bar.close()

    model.eval()
    out_meta = checkpoint_meta(True)
    save_checkpoint(Path(cfg.out), model, tokenizer, head, out_meta, overwrite=True)
    if not cfg.keep_run:
        shutil.rmtree(run_dir, ignore_errors=True)
    return TrainResult(
        out=Path(cfg.out),
        steps=step,
        losses=losses,
        seconds=time.perf_counter() - started,
        resumed_from=int(resume_from.name.split("_")[1]) if resume_from else None,
        summary={
            "examples": len(examples),
            "last": out_meta.training["losses_last_10_steps"],
            "records": data.counts,
        },
    )
