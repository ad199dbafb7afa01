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
"""

from __future__ import annotations

import hashlib
import math
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

    torch.manual_seed(cfg.seed)
    device = _device(cfg.device)
    lora = None if cfg.full else _lora_config(cfg, dropout=0.0)  # no dropout: method.md 5
    loaded = load_checkpoint(
        cfg.model,
        device=device,
        dtype=cfg.dtype,
        peft="merge" if cfg.full else lora,
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
    refs = reference_logps(model, examples, pad, device, cfg.batch_size)

    params = [p for p in model.parameters() if p.requires_grad]
    if head is not None:
        head.requires_grad_(True).train()
        params += list(head.parameters())
    per_epoch = math.ceil(math.ceil(len(examples) / cfg.batch_size) / cfg.grad_accum)
    total_steps = cfg.max_steps or per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - s / max(1, total_steps)) ** 0.5,
    )
    index = list(range(len(examples)))
    step, epoch, pos, losses, reports = 0, 0, 0, [], []
    started = time.perf_counter()
    bar = tqdm(total=total_steps, desc=f"train {cfg.objective}", disable=not progress)
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
        if pos >= len(batches):
            epoch, pos = epoch + 1, 0
    bar.close()

    from svpo_harness.engines.checkpoint_lineage import parent_spec

    tail = reports[-10:]  # windows without pairs report no accuracies: average what exists
    keys = dict.fromkeys(k for r in tail for k in r)
    last = {k: sum(r[k] for r in tail if k in r) / sum(k in r for r in tail) for k in keys}
    out_meta = CheckpointMeta(
        base_model=parent_spec(cfg.model),
        step_format=loaded.step_format,
        chat_template=loaded.meta.chat_template,
        training={
            "objective": cfg.objective,
            "config": cfg.to_dict(),
            "value_head_trained": head is not None and needs_head,
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
    model.eval()
    save_checkpoint(Path(cfg.out), model, tokenizer, head, out_meta, overwrite=True)
    return TrainResult(
        out=Path(cfg.out),
        steps=step,
        losses=losses,
        seconds=time.perf_counter() - started,
        summary={"examples": len(examples), "last": last, "records": data.counts},
    )
