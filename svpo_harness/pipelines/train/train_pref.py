"""`svpo train --objective svpo|dpo|alphamath|rft|value`: step-level DPO + value ranking + Q
regression, the baselines on the same trees, and the value terms alone on a frozen policy.

Set-up for the one loop (pipelines/train/train_loop.py), top to bottom: check the data against the
model (before any weights load), open the run folder, load the policy (LoRA with dropout 0, or
full weights; a LoRA parent is merged first) and its value head (a fresh one if the checkpoint
has none), and choose the reference. The reference is the policy given to ``--model``: at step 0
the trained policy equals it, so by default (``--precompute-ref``) one no-grad pass over every
row before training is exactly the reference and needs no second model (cached on disk:
pipelines/train/ref_cache.py). ``--no-precompute-ref`` runs it next to the policy instead: the LoRA
policy with its adapter disabled, or a frozen copy of ``--model`` for ``--full``.
``value`` (the ablation "value head on a frozen policy"): the policy is loaded merged and
frozen (no adapter, no trainable weight, no DPO term, no reference), only the head trains, and
the checkpoint holds the policy's weights as loaded plus the trained head.
The checkpoint's ``svpo.json`` records the objective, the losses, a hash of the data and whether
the head was trained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from svpo_harness.pipelines.train.train_config import TrainConfig


def loss_weights(cfg: TrainConfig) -> Any:
    from svpo_harness.engines.losses import LossWeights

    common = {"beta": cfg.beta, "rank_loss": cfg.rank_loss, "margin": cfg.rank_margin}
    if cfg.objective == "dpo":  # solution-level DPO only: the baseline without a value head
        return LossWeights(**common, lambda_dpo=1.0, lambda_rank=0.0, lambda_mse=0.0)
    if cfg.objective == "rft":  # SFT on the trees' unique correct paths; no reference, no head
        return LossWeights(
            **common, lambda_dpo=0.0, lambda_rank=0.0, lambda_mse=0.0, lambda_sft=1.0
        )
    if cfg.objective == "alphamath":  # CE on correct paths + lambda_mse x MSE(V, Q)
        return LossWeights(
            **common, lambda_dpo=0.0, lambda_rank=0.0, lambda_mse=cfg.lambda_mse, lambda_sft=1.0
        )
    if cfg.objective == "value":  # svpo's value terms alone; the policy is frozen
        return LossWeights(
            **common, lambda_dpo=0.0, lambda_rank=cfg.lambda_rank, lambda_mse=cfg.lambda_mse
        )
    return LossWeights(
        **common, lambda_dpo=1.0, lambda_rank=cfg.lambda_rank, lambda_mse=cfg.lambda_mse
    )


def trains_value_head(cfg: TrainConfig) -> bool:
    """Whether this run trains a value head: a value term with a weight above 0."""
    if cfg.objective not in ("svpo", "alphamath", "value"):
        return False
    weights = loss_weights(cfg)
    return weights.lambda_rank > 0 or weights.lambda_mse > 0


def prepare_preference(cfg: TrainConfig, accelerator: Any, device: torch.device) -> Any:
    """The loop's inputs for ``cfg.objective`` in (svpo, dpo, alphamath, rft, value): a
    ``TrainJob``."""
    from svpo_harness.engines.checkpoint import CheckpointMeta, load_checkpoint, read_meta
    from svpo_harness.engines.checkpoint_lineage import parent_spec
    from svpo_harness.engines.collate import prepare_examples
    from svpo_harness.engines.value_head import ValueHead
    from svpo_harness.pipelines.train.pref_data import load_preference_data
    from svpo_harness.pipelines.train.ref_cache import ReferenceStore, default_cache_dir
    from svpo_harness.pipelines.train.train_job import (
        TrainJob,
        data_hash,
        last_reports,
        lora_config,
        model_fingerprint,
        open_training_run,
    )
    from svpo_harness.pipelines.train.train_loop import LoopSpec

    weights = loss_weights(cfg)
    needs_head = trains_value_head(cfg)
    frozen = cfg.objective == "value"  # no adapter, no trainable policy weight
    # Check the data before any weights load: tokenizer and format come from the checkpoint.
    meta = read_meta(cfg.model)
    if meta is None:
        raise ValueError(f"{cfg.model}: preference training needs an svpo checkpoint (svpo.json)")
    fmt_name = cfg.step_format or meta.step_format.name
    fingerprint = model_fingerprint(cfg.model)
    data = load_preference_data(
        cfg.data, cfg.objective, tokenizer_fingerprint=fingerprint, step_format=fmt_name
    )
    examples, prep = prepare_examples(data.records, cfg.max_length)
    if not examples:
        raise ValueError(f"no training example fits --max-length {cfg.max_length}: {prep}")
    source_hash = data_hash(data.source)
    open_training_run(cfg, accelerator, {"data_hash": source_hash}, fingerprint)

    lora = None if cfg.full or frozen else lora_config(cfg, dropout=0.0)  # method.md 5
    loaded = load_checkpoint(
        cfg.model,
        device=device,
        dtype=cfg.dtype,
        peft="merge" if lora is None else lora,
        step_format=cfg.step_format,
        trainable=not frozen,
    )
    tokenizer = loaded.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    head = None
    if needs_head:
        head = loaded.value_head
        if head is None:
            hidden = loaded.model.config.get_text_config().hidden_size
            head = ValueHead(hidden, generator=torch.Generator().manual_seed(cfg.seed)).to(device)
        if cfg.value_head_dropout is not None:
            head.dropout.p = cfg.value_head_dropout
        head.requires_grad_(True)

    ref, ref_model, store = "none", None, None
    if weights.lambda_dpo > 0 and cfg.precompute_ref:
        cache = None if cfg.ref_cache == "none" else (cfg.ref_cache or default_cache_dir())
        describe = {
            "reference": parent_spec(cfg.model),
            "tokenizer": fingerprint,
            "max_length": cfg.max_length,
            "data_hash": source_hash,
            "objective_rows": cfg.objective,
            "dtype": cfg.dtype,
            "device": device.type,
        }
        store = ReferenceStore(cfg.run_dir, cache and Path(cache), examples, describe)
        ref = "precompute"
    elif weights.lambda_dpo > 0 and not cfg.full:
        ref = "adapter"  # the LoRA policy with its adapter off is exactly --model
    elif weights.lambda_dpo > 0:
        ref = "model"
        ref_model = load_checkpoint(
            cfg.model, device=device, dtype=cfg.dtype, peft="merge", value_head="none"
        ).model
    spec = LoopSpec(
        examples=examples,
        weights=weights,
        pad_id=int(tokenizer.pad_token_id),
        policy_train_mode=False,  # dropout off in every policy forward (method.md section 5)
        ref=ref,
        ref_store=store,
        ref_model=ref_model,
    )

    def checkpoint_meta(reports: list, final: bool) -> Any:
        return CheckpointMeta(
            base_model=parent_spec(cfg.model),
            step_format=loaded.step_format,
            chat_template=loaded.meta.chat_template,
            training={
                "objective": cfg.objective,
                "config": cfg.to_dict(),
                "losses_last_10_steps": last_reports(reports),
                "data": {
                    "files": data.source,
                    "hash": source_hash,
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

    summary = {"examples": len(examples), "records": data.counts, "reference": ref}
    if frozen:
        summary["policy"] = "frozen"
    return TrainJob(loaded, spec, head, checkpoint_meta, summary)
