"""`svpo train`: every objective on one loop (pipelines/train/train_loop.py).

``sft`` is the loop with ``path`` rows only (token cross-entropy on the solution ids, divided by
the window's token count); ``svpo``, ``dpo``, ``alphamath``, ``rft`` and ``value`` come from
train_pref.py. This
module holds what they share: the device, the new adapter, the optimizer, the run folder and
the driver that loads, trains and saves.

Long runs: ``<out>.run/`` holds a manifest of the settings and, every ``save_every`` steps, the
newest ``step_N`` (the trainable weights, optimizer, scheduler and every process's RNG through
accelerate's ``save_state``, and the position in the data). Re-running the same command
continues from it and reproduces the uninterrupted run (the data order depends only on seed and
epoch); other settings are refused naming them; ``--overwrite`` starts over. ``--resume`` is
accepted and means the same as no flag.
"""

from __future__ import annotations

import copy
import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from svpo_harness.pipelines.train.train_config import TrainConfig
from svpo_harness.pipelines.train.train_job import (
    TrainJob,
    data_hash,
    last_reports,
    lora_config,
    model_fingerprint,
    open_training_run,
)


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


def make_optimizer(
    params: list, cfg: TrainConfig, total_steps: int, head_params: list | None = None
) -> tuple[Any, Any]:
    """AdamW and the schedule every objective uses: linear warm-up, then sqrt decay to 0.

    ``head_params`` form their own group at ``cfg.value_head_lr`` (default ``cfg.lr``); the
    schedule scales both groups alike. An empty group is left out (objective value: the policy
    is frozen, the head is the only group)."""
    groups = [{"params": params, "lr": cfg.lr}] if params else []
    if head_params:
        groups.append({"params": head_params, "lr": cfg.value_head_lr or cfg.lr})
    if not groups:
        raise ValueError(f"objective {cfg.objective}: no trainable parameter")
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - s / max(1, total_steps)) ** 0.5,
    )
    return optimizer, scheduler


def run_training(cfg: TrainConfig, *, on_step: Any = None, progress: bool = True) -> TrainResult:
    """Train per ``cfg``; ``on_step(step, loss)`` is called after each optimizer step."""
    from svpo_harness.pipelines.train.train_loop import StepScorer, make_accelerator, run_loop

    accelerator = make_accelerator()
    distributed = accelerator.num_processes > 1
    device = accelerator.device if distributed else _device(cfg.device)
    selection = _selection(cfg, accelerator)  # checked before any weights load
    torch.manual_seed(cfg.seed)  # the new adapter's and head's initial weights
    if cfg.objective == "sft":
        job = prepare_sft(cfg, accelerator, device)
    else:
        from svpo_harness.pipelines.train.train_pref import prepare_preference

        job = prepare_preference(cfg, accelerator, device)
    policy, tokenizer = job.loaded.model, job.loaded.tokenizer
    if selection is not None:
        from svpo_harness.pipelines.train.train_select import dev_accuracy

        job.spec.selection = selection
        job.spec.evaluate = lambda scorer: dev_accuracy(
            scorer.policy, scorer.head, tokenizer, job.loaded.step_format, selection, cfg.seed
        )
    scorer = StepScorer(policy, job.trained_head)
    policy_params = [p for p in policy.parameters() if p.requires_grad]
    head_params = list(job.trained_head.parameters()) if job.trained_head is not None else []

    def save_final(unwrapped: Any, gathered: dict | None, reports: list) -> None:
        from svpo_harness.engines.checkpoint import save_checkpoint

        policy_state, head = None, job.saved_head
        if gathered is not None:  # sharded weights, gathered for this one save
            policy_state = _strip(gathered, "policy.")
            if job.trained_head is not None:
                head = copy.deepcopy(job.trained_head).cpu()
                head.load_state_dict(_strip(gathered, "head."))
        meta = job.meta(reports, True)
        meta.training.update(_selection_facts(cfg, job, selection, len(reports), accelerator))
        save_checkpoint(
            cfg.out, unwrapped.policy, tokenizer, head, meta, overwrite=True,
            policy_state_dict=policy_state,
        )  # fmt: skip

    result = run_loop(
        cfg,
        accelerator,
        scorer,
        job.spec,
        run_dir=cfg.run_dir,
        optimizer_factory=lambda total: make_optimizer(policy_params, cfg, total, head_params),
        save_final=save_final,
        on_step=on_step,
        progress=progress,
    )
    if not cfg.keep_run and accelerator.is_main_process:
        shutil.rmtree(cfg.run_dir, ignore_errors=True)
    return TrainResult(
        out=Path(cfg.out),
        steps=result.steps,
        losses=result.losses,
        tokens=result.tokens,
        seconds=result.seconds,
        resumed_from=result.resumed_from,
        summary={
            **job.summary,
            "last": last_reports(result.reports),
            **_selection_facts(cfg, job, selection, result.steps, accelerator),
        },
    )


def _selection(cfg: TrainConfig, accelerator: Any) -> Any:
    """``--select-on``'s problems, checked against the training questions and the eval sets."""
    if not cfg.select_on:
        return None
    if accelerator.distributed_type.value in ("DEEPSPEED", "FSDP"):
        raise ValueError("--select-on needs whole weights on each process (one process or DDP)")
    from svpo_harness.pipelines.train.train_pref import trains_value_head
    from svpo_harness.pipelines.train.train_select import load_selection, resolve_metric

    return load_selection(
        cfg.select_on,
        metric=resolve_metric(cfg.select_metric, trains_value_head(cfg)),
        every=cfg.eval_every,
        limit=cfg.eval_limit,
        train_questions=training_questions(cfg),
    )


def training_questions(cfg: TrainConfig) -> list[tuple[str, str | None]]:
    """(question id, text or None) of every question the training data holds."""
    import json

    if cfg.data == "arith":
        from svpo_harness.core.arith import arith_split

        return [(p.question_id, p.question) for p in arith_split("train", cfg.arith_n)]
    path = Path(cfg.data)
    files = [path / "trees.jsonl", path / "pairs.jsonl"] if path.is_dir() else [path]
    found: dict[str, str | None] = {}
    for file in files:
        if not file.is_file():
            continue
        with open(file, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the data loader reports bad lines, naming them
                if isinstance(record, dict) and isinstance(record.get("question_id"), str):
                    text = record.get("question")
                    if found.get(record["question_id"]) is None:
                        found[record["question_id"]] = text if isinstance(text, str) else None
    return list(found.items())


def _selection_facts(
    cfg: TrainConfig, job: TrainJob, selection: Any, steps: int, accelerator: Any
) -> dict[str, Any]:
    """What ``svpo.json`` records for a fair comparison (method.md section 7.2): the dev curve
    and the chosen step, the exposure (passes over the records), and whether the head saved
    with the checkpoint was trained (here, or by a parent it is inherited from)."""
    window = cfg.batch_size * cfg.grad_accum * accelerator.num_processes
    examples = len(job.spec.examples)
    chosen = selection.best_step if selection is not None else steps
    parent = job.loaded.meta.training or {}
    # a run whose dev selection kept step 0 saves the head as it was loaded: not trained here
    trained_here = job.trained_head is not None and bool(chosen)
    facts: dict[str, Any] = {
        "value_head_trained": trained_here or bool(parent.get("value_head_trained")),
        "value_head_trained_here": trained_here,
        "exposure": {
            "optimizer_steps": steps,
            "chosen_step": chosen,
            "window": window,
            "examples": examples,
            "records": dict(job.summary.get("records") or {"path": examples}),
            "passes": round(chosen * window / max(1, examples), 4),
        },
    }
    if selection is not None:
        facts["selection"] = selection.record(cfg.lr)
    return facts


def _strip(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def sft_examples(data: Any) -> list[Any]:
    """SFT examples as ``path`` rows: the prompt is the prefix, every solution id is scored
    but those a path record marks as not sampled (a tool's output)."""
    from svpo_harness.engines.collate import Example, Row

    out = []
    for i, ex in enumerate(data.examples):
        scored = ex.scored or (1,) * (len(ex.input_ids) - ex.prompt_len)
        row = Row(ex.input_ids, ex.prompt_len, scored, "path", None, f"sft-{i}")
        out.append(Example("path", (row,)))
    return out


def prepare_sft(cfg: TrainConfig, accelerator: Any, device: torch.device) -> TrainJob:
    """SFT: the loop with path rows only, dropout as configured, no reference, no head."""
    from svpo_harness.engines.checkpoint import CheckpointMeta, load_checkpoint
    from svpo_harness.engines.checkpoint_lineage import parent_spec
    from svpo_harness.engines.losses import LossWeights
    from svpo_harness.pipelines.train.sft_data import build_sft_data
    from svpo_harness.pipelines.train.train_loop import LoopSpec

    if cfg.data == "arith":
        source = "arith:" + hashlib.sha256(f"arith train n={cfg.arith_n}".encode()).hexdigest()[:16]
    else:
        source = data_hash([cfg.data]) if Path(cfg.data).is_file() else cfg.data
    open_training_run(cfg, accelerator, {"data_hash": source}, model_fingerprint(cfg.model))
    # A LoRA parent is merged first, for a new adapter or for --full (method.md section 5).
    loaded = load_checkpoint(
        cfg.model,
        device=device,
        dtype=cfg.dtype,
        peft="merge" if cfg.full else lora_config(cfg),
        step_format=cfg.step_format,
        trainable=True,
    )
    tokenizer = loaded.tokenizer
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    data = build_sft_data(cfg.data, tokenizer, loaded.step_format, cfg.max_length, cfg.arith_n)
    spec = LoopSpec(
        examples=sft_examples(data),
        weights=LossWeights(lambda_dpo=0.0, lambda_rank=0.0, lambda_mse=0.0, lambda_sft=1.0),
        pad_id=int(tokenizer.pad_token_id),
        policy_train_mode=True,
    )

    def meta(reports: list, final: bool) -> Any:
        # The parent is what --model named, not its own base_model: the new adapter sits on
        # exactly that policy (issue 13). save_checkpoint records it relative + absolute.
        return CheckpointMeta(
            base_model=parent_spec(cfg.model),
            step_format=loaded.step_format,
            chat_template=loaded.meta.chat_template,
            training={"objective": cfg.objective, "config": cfg.to_dict()},
        )

    summary = {
        "examples": len(data.examples),
        "truncated": data.truncated,
        "boundary_retokenized": data.boundary_retokenized,
    }
    return TrainJob(loaded, spec, None, meta, summary)
