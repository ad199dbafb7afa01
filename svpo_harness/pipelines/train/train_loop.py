"""The one training loop of `svpo train` (every objective), on accelerate's ``Accelerator``.

What accelerate does here: the process group (``accelerate launch``: DDP over gloo on CPUs,
NCCL on GPUs; DeepSpeed or FSDP from its config), wrapping the model, ``backward``, gradient
clipping across shards, resumable state (``save_state``/``load_state``: optimizer, RNG of every
process, the scheduler) and gathering sharded weights for the final checkpoint.

What it does not do here: gradient accumulation. Each loss term is divided by its expected count
over the whole window (all micro-batches of one optimizer step, on all processes;
``collate.window_denominators``, method.md section 5), so each micro-batch's loss is already
its exact share, and ``Accelerator.accumulate`` would divide it again. The loop keeps the
window itself and skips the gradient all-reduce on all but the last micro-batch (``no_sync``).
Data-parallel backends average gradients over processes, so each process's share is multiplied
by their number.

Data order: an epoch is a permutation of the examples fixed by (seed, epoch), cut into windows
of ``batch_size x grad_accum x processes`` examples; a window into ``grad_accum`` micro-batches
of ``batch_size x processes`` and each of those into one contiguous slice per process. N
processes with batch B therefore train on the same windows as one process with batch N x B. A
process whose slice is empty (the end of an epoch) forwards one example with weight 0, so every
process joins every collective.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from svpo_harness.core.fault import fault_point
from svpo_harness.engines.collate import (
    Example,
    KindRates,
    RowScores,
    StepBatch,
    batch_loss_sums,
    collate,
    score_rows,
    window_counts,
    window_denominators,
)
from svpo_harness.engines.losses import LossSums, LossWeights, combine_losses, loss_report
from svpo_harness.pipelines.train.train_config import TrainConfig

PROGRESS_FILE = "trainer_state.json"  # written last: its presence marks a step folder complete
STATE_DIR = "accelerate_state"


class StepScorer(nn.Module):
    """Policy + value head as one module, so one wrapper (DDP, FSDP, DeepSpeed) covers both and
    every forward goes through the wrapper (its hooks sync gradients and gather shards)."""

    def __init__(self, policy: nn.Module, head: nn.Module | None) -> None:
        super().__init__()
        self.policy = policy
        self.head = head

    def forward(
        self, batch: StepBatch, with_values: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        scores = score_rows(self.policy, batch, self.head if with_values else None)
        return scores.logps, scores.values


@dataclass
class LoopSpec:
    """What an objective hands to the loop (pipelines/train/train.py, train_pref.py)."""

    examples: list[Example]
    weights: LossWeights
    pad_id: int
    policy_train_mode: bool  # SFT: dropout on; preference objectives: off (method.md 5)
    # the DPO reference: "none" (no DPO term), "precompute" (one pass at step 0, through
    # ref_store), "adapter" (live: the policy with its LoRA adapter disabled), "model" (live:
    # ref_model, a frozen copy of the step-0 policy)
    ref: str = "none"
    ref_store: Any = None  # load() -> list | None, save(list), key_from(probe logps)
    ref_model: nn.Module | None = None
    # model selection on dev (pipelines/train/train_select.py): the Selection, and the function
    # that measures the scorer as it is now (called on the main process's weights)
    selection: Any = None
    evaluate: Callable[[nn.Module], float] | None = None


@dataclass
class LoopResult:
    steps: int
    losses: list[float]
    reports: list[dict[str, float]]
    tokens: int
    seconds: float
    resumed_from: int | None


def make_accelerator() -> Any:
    """The process's Accelerator (accelerate keeps its state as a per-process singleton).

    Without CUDA, ``cpu=True`` so processes started by ``accelerate launch`` / torchrun form one
    gloo group instead of training alone. Devices are placed by us (``device_placement=False``):
    one process trains on ``--device``, several on the device accelerate gives each."""
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available(), device_placement=False)


def epoch_windows(n: int, window: int, seed: int, epoch: int) -> list[list[int]]:
    """The epoch's windows of example indices; the order depends only on (seed, epoch)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
    idx = order.tolist()
    return [idx[s : s + window] for s in range(0, n, window)]


def micro_slices(window: list[int], micro: int, rank: int, world: int) -> list[list[int]]:
    """This process's slice of each global micro-batch (``micro`` examples per process)."""
    out = []
    for start in range(0, len(window), micro * world):
        chunk = window[start : start + micro * world]
        per = math.ceil(len(chunk) / world)
        out.append(chunk[rank * per : (rank + 1) * per])
    return out


def latest_step(run_dir: Path) -> Path | None:
    """The newest step_N folder whose progress file was fully written."""
    done = [p for p in run_dir.glob("step_*") if (p / PROGRESS_FILE).is_file()]
    return max(done, key=lambda p: int(p.name.split("_")[1]), default=None)


def _sums_vector(sums: LossSums, device: torch.device) -> torch.Tensor:
    parts = [sums.dpo, sums.rank, sums.mse, sums.sft]
    extra = torch.tensor([sums.pref_correct, sums.rank_correct], device=device)
    return torch.cat([torch.stack([p.detach().float().to(device) for p in parts]), extra])


def _sums_from(vector: torch.Tensor) -> LossSums:
    v = vector.cpu()
    return LossSums(v[0], v[1], v[2], v[3], float(v[4]), float(v[5]))


def _trainable_only(model: nn.Module) -> Callable[..., None]:
    """save_state pre-hook: keep only trainable tensors (frozen base weights come from --model)."""
    names = {n for n, p in model.named_parameters() if p.requires_grad}

    def hook(models: list, weights: list, output_dir: str) -> None:
        for state in weights:
            for key in [k for k in state if k.removeprefix("module.") not in names]:
                del state[key]

    return hook


def run_loop(
    cfg: TrainConfig,
    accelerator: Any,
    scorer: StepScorer,
    spec: LoopSpec,
    *,
    run_dir: Path,
    optimizer_factory: Callable[[int], tuple[Any, Any]],
    save_final: Callable[[nn.Module, dict[str, Any] | None, list], None],
    on_step: Callable[[int, float], None] | None = None,
    progress: bool = True,
) -> LoopResult:
    """Train ``scorer`` on ``spec`` per ``cfg``; resumes from ``run_dir``'s newest step folder.

    ``optimizer_factory(total_steps)`` returns (optimizer, scheduler) over the scorer's
    trainable parameters; ``save_final(unwrapped_scorer, gathered_state, reports)`` writes the
    checkpoint on the main process (``gathered_state``: the full state dict when the weights
    are sharded, else None).
    """
    from tqdm.auto import tqdm

    world, rank = accelerator.num_processes, accelerator.process_index
    device = accelerator.device if world > 1 else next(scorer.parameters()).device
    examples, weights = spec.examples, spec.weights
    rates = KindRates.of(examples)  # each term's expected count per window (method.md 5)
    window_size = cfg.batch_size * cfg.grad_accum * world
    per_epoch = math.ceil(len(examples) / window_size)
    total_steps = cfg.max_steps or per_epoch * cfg.epochs
    unwrapped = scorer
    optimizer, scheduler = optimizer_factory(total_steps)
    scorer, optimizer = accelerator.prepare(scorer, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    accelerator.register_save_state_pre_hook(_trainable_only(unwrapped))
    params = [p for p in scorer.parameters() if p.requires_grad]

    resume_from = latest_step(run_dir)

    def batch_of(indices: list[int]) -> StepBatch:
        chosen = [examples[i] for i in indices]
        if cfg.pack:
            from svpo_harness.engines.packing import pack

            length = cfg.pack_length or cfg.max_length
            return pack(chosen, spec.pad_id, device, pack_length=length, dtype=mask_dtype)
        return collate(chosen, spec.pad_id, device)

    mask_dtype = next(unwrapped.policy.parameters()).dtype  # packed masks in the model's dtype

    @torch.no_grad()
    def policy_logps(indices: list[int]) -> torch.Tensor:
        return scorer(batch_of(indices), with_values=False)[0].detach()

    unwrapped.policy.eval()  # the reference passes never see dropout
    refs = None
    if spec.ref == "precompute":
        refs = spec.ref_store.load(policy_logps)
        if refs is None:
            if resume_from is not None:
                raise ValueError(f"{run_dir}: the reference log-probs are missing; --overwrite")
            refs = reference_pass(accelerator, policy_logps, examples, cfg.batch_size)
            if accelerator.is_main_process:
                spec.ref_store.save(refs)
    if spec.ref == "model" and spec.ref_model is not None:
        spec.ref_model.eval().requires_grad_(False)

    def live_ref(indices: list[int], batch: StepBatch) -> torch.Tensor | None:
        if spec.ref == "adapter":
            with torch.no_grad(), unwrapped.policy.disable_adapter():
                return scorer(batch, with_values=False)[0].detach()
        if spec.ref == "model":
            with torch.no_grad():
                return score_rows(spec.ref_model, batch).logps
        if refs is not None:
            return torch.cat([refs[i] for i in indices]).to(device)
        return None

    # The weights are still the step-0 policy's (--model) here: the reference and its cache
    # key are read from them. Resuming restores the trained weights only now.
    step, epoch, pos, losses, reports, tokens = 0, 0, 0, [], [], 0
    if resume_from is not None:
        accelerator.load_state(str(resume_from / STATE_DIR), strict=False)
        state = json.loads((resume_from / PROGRESS_FILE).read_text(encoding="utf-8"))
        step, epoch, pos = state["step"], state["epoch"], state["window"]
        losses, reports, tokens = state["losses"], state["reports"], state["tokens"]
        if spec.selection is not None:
            spec.selection.restore(state.get("selection"))
    unwrapped.policy.train(spec.policy_train_mode)
    if unwrapped.head is not None:
        unwrapped.head.train()

    def save_step() -> None:
        folder = run_dir / f"step_{step}"
        accelerator.wait_for_everyone()
        accelerator.save_state(str(folder / STATE_DIR))
        if accelerator.is_main_process:
            record = {"step": step, "epoch": epoch, "window": pos, "losses": losses,
                      "reports": reports, "tokens": tokens}  # fmt: skip
            if spec.selection is not None:
                record["selection"] = spec.selection.state()
            tmp = folder / (PROGRESS_FILE + ".tmp")
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, folder / PROGRESS_FILE)
            for old in run_dir.glob("step_*"):  # keep only the newest complete one
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)
        accelerator.wait_for_everyone()

    def select() -> None:
        """Dev accuracy at this step when due; the best step's weights go to run_dir/best."""
        selection = spec.selection
        if selection is None or not selection.due(step, total_steps):
            return
        acc = spec.evaluate(unwrapped)
        if selection.add(step, acc) and accelerator.is_main_process:
            from svpo_harness.pipelines.train.train_select import save_best

            save_best(run_dir, unwrapped, step)
        accelerator.wait_for_everyone()
        bar.write(f"dev {selection.metric_name} at step {step}: {acc:.3f}")

    terms = {"dpo": weights.lambda_dpo, "rank": weights.lambda_rank, "mse": weights.lambda_mse,
             "sft": weights.lambda_sft}  # fmt: skip
    unused = {name for name, weight in terms.items() if weight == 0}  # kept off the bar
    started = time.perf_counter()
    bar = tqdm(
        total=total_steps,
        initial=step,
        desc=f"train {cfg.objective}",
        unit="step",
        disable=not (progress and accelerator.is_main_process),
    )
    select()  # step 0: the policy given to --model
    while step < total_steps:
        windows = epoch_windows(len(examples), window_size, cfg.seed, epoch)
        while pos < len(windows) and step < total_steps:
            window = windows[pos]
            counts = window_counts([examples[i] for i in window])
            denominators = window_denominators([examples[i] for i in window], rates)
            slices = micro_slices(window, cfg.batch_size, rank, world)
            optimizer.zero_grad(set_to_none=True)
            sums = LossSums.zeros(device)
            for k, indices in enumerate(slices):
                share = float(world)
                if not indices:  # keeps this process in every collective; adds nothing
                    indices, share = window[:1], 0.0
                batch = batch_of(indices)
                ref = live_ref(indices, batch)
                last = k == len(slices) - 1
                # DeepSpeed steps its engine inside backward unless told the window goes on
                accelerator.sync_gradients = last
                with nullcontext() if last else accelerator.no_sync(scorer):
                    logps, values = scorer(batch)
                    micro = batch_loss_sums(batch, RowScores(logps, values), ref, weights)
                    loss = combine_losses(micro, denominators, weights) * share
                    # policy and head join every backward (DDP's rule), even a share no term uses
                    loss = loss + 0.0 * (logps.sum() + (0.0 if values is None else values.sum()))
                    accelerator.backward(loss)
                if share:
                    sums = sums + micro.detach()
                    tokens += sum(r.n_scored for i in indices for r in examples[i].rows)
            accelerator.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            pos, step = pos + 1, step + 1
            total = _sums_from(accelerator.reduce(_sums_vector(sums, device), reduction="sum"))
            report = loss_report(total, counts, weights, denominators)
            losses.append(report["loss"])
            reports.append(report)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in report.items() if k not in unused})
            if on_step is not None:
                on_step(step, report["loss"])
            select()
            if cfg.save_every and step % cfg.save_every == 0 and step < total_steps:
                save_step()
            fault_point("train", step)  # SVPO_FAULT_EXIT_AT=train:N (kill-and-resume tests)
        if pos >= len(windows):
            epoch, pos = epoch + 1, 0
    bar.close()
    seconds = time.perf_counter() - started

    unwrapped.eval()
    accelerator.wait_for_everyone()
    if spec.selection is not None and spec.selection.best_step != step:
        from svpo_harness.pipelines.train.train_select import load_best

        load_best(run_dir, unwrapped, spec.selection.best_step)  # the checkpoint written
    sharded = accelerator.distributed_type.value in ("DEEPSPEED", "FSDP")
    gathered = accelerator.get_state_dict(scorer) if sharded else None
    if accelerator.is_main_process:
        save_final(unwrapped, gathered, reports)
    accelerator.wait_for_everyone()
    return LoopResult(
        steps=step,
        losses=losses,
        reports=reports,
        tokens=tokens,
        seconds=seconds,
        resumed_from=int(resume_from.name.split("_")[1]) if resume_from else None,
    )


def reference_pass(
    accelerator: Any,
    policy_logps: Callable[[list[int]], torch.Tensor],
    examples: list[Example],
    batch: int,
) -> list[torch.Tensor]:
    """Every example's row log-probs under the policy as it is now, split over the processes.

    Each process runs the same number of forwards (a short last one is filled with example 0,
    its results dropped), so sharded backends stay in step; the results are gathered to all."""
    from accelerate.utils import gather_object

    n, world, rank = len(examples), accelerator.num_processes, accelerator.process_index
    mine = list(range(rank, n, world))
    rounds = math.ceil(math.ceil(n / world) / batch)
    out: list[tuple[int, torch.Tensor]] = []
    for r in range(rounds):
        chunk = mine[r * batch : (r + 1) * batch]
        logps = policy_logps(chunk or [0]).cpu()
        offset = 0
        for i in chunk:
            rows = len(examples[i].rows)
            out.append((i, logps[offset : offset + rows]))
            offset += rows
    gathered = gather_object(out) if world > 1 else out
    by_index = dict(gathered)
    return [by_index[i] for i in range(n)]
