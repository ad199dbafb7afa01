"""`svpo value-eval`: how well a checkpoint's value head ranks and predicts annotated steps.

Top to bottom: read the checkpoint's metadata (tokenizer fingerprint, step format, that it has a
value head) and check the data against it before any weights load (the checks of
``pref_data.load_preference_data``); score every row once on the token contract (the collator
and ``score_rows`` of training: the value at the step's last token, summed log-probs of the
step's ids); then, with ``--reference``, the same pair rows under the reference for the implicit
rewards ``beta * (logp_policy - logp_ref)``; finally the numbers (``value_metrics``), two PNGs
(``value_plots``) and ``metrics.json``.

What is measured, on which records:
- ``pair`` records: value ranking accuracy, ``V(prefix + chosen) > V(prefix + rejected)``; with a
  reference, implicit-reward preference accuracy and the DPO loss.
- final steps (``value_eval_data``: answer nodes of trees, else leaf terminal step_q records):
  the AUC of V for telling correct final steps from incorrect ones.
- ``step_q`` records: V against the MCTS Q (scatter, calibration, Pearson r, MSE).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from svpo_harness.core.schemas import PairRecord, StepQRecord
from svpo_harness.pipelines.evaluate import value_metrics as vm
from svpo_harness.pipelines.evaluate.value_eval_data import (
    EvalData,
    ValueEvalError,
    final_steps,
    leaf_terminals,
    load_eval_data,
)


@dataclass(frozen=True)
class ValueEvalConfig:
    model: str
    data: str  # an annotation folder (pairs.jsonl + trees.jsonl) or one JSONL file of records
    out: str
    reference: str | None = None  # for the implicit-reward preference accuracy and DPO loss
    beta: float | None = None  # default: the checkpoint's training beta, else 0.1
    batch_size: int = 32  # records per forward (a pair is two rows)
    max_length: int = 1024  # ids per row; the prefix is cut from the left, as in training
    bins: int = 10
    device: str = "auto"
    dtype: str = "float32"
    plots: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.bins < 1 or self.max_length < 2:
            raise ValueEvalError("batch_size and bins must be >= 1, max_length >= 2")
        if self.beta is not None and self.beta <= 0:
            raise ValueEvalError(f"beta must be > 0, got {self.beta}")


# -- scoring ------------------------------------------------------------------------------------
@dataclass
class Scored:
    """Per record (in order): its rows' values and log-probs; None where it did not fit."""

    values: list[tuple[float, ...] | None]
    logps: list[tuple[float, ...] | None]
    dropped: int = 0


def score_records(
    model: Any,
    head: Any,
    records: Sequence[PairRecord | StepQRecord],
    *,
    pad_id: int,
    device: Any,
    batch_size: int,
    max_length: int,
    desc: str = "score",
    progress: bool = True,
) -> Scored:
    """One no-grad forward per batch of records, on the collator of training (same rows)."""
    import torch
    from tqdm.auto import tqdm

    from svpo_harness.engines.collate import collate, score_rows, to_example

    examples = [to_example(r, max_length) for r in records]
    kept = [i for i, ex in enumerate(examples) if ex is not None]
    out = Scored([None] * len(records), [None] * len(records), len(records) - len(kept))
    bar = tqdm(total=len(kept), desc=desc, disable=not progress or not kept)
    with torch.inference_mode():
        for start in range(0, len(kept), batch_size):
            chunk = kept[start : start + batch_size]
            batch = collate([examples[i] for i in chunk], pad_id, device)  # type: ignore[misc]
            scores = score_rows(model, batch, head)
            logps = scores.logps.float().cpu().tolist()
            values = scores.values.float().cpu().tolist() if scores.values is not None else None
            row = 0
            for i in chunk:
                n = len(examples[i].rows)  # type: ignore[union-attr]
                out.logps[i] = tuple(logps[row : row + n])
                if values is not None:
                    out.values[i] = tuple(values[row : row + n])
                row += n
            bar.update(len(chunk))
    bar.close()
    return out


# -- the command --------------------------------------------------------------------------------
def _model_meta(spec: str, what: str) -> tuple[Any, str]:
    """The checkpoint's metadata and tokenizer fingerprint, before any weights load."""
    from svpo_harness.engines.checkpoint import CheckpointError, read_meta, tokenizer_fingerprint

    try:
        meta = read_meta(spec)
    except CheckpointError as err:
        raise ValueEvalError(f"{what} {spec}: {err}") from None
    if meta is None:
        if what == "--model":
            raise ValueEvalError(
                f"--model {spec} has no svpo.json, so no value head: give an svpo checkpoint "
                "(svpo train --objective svpo|alphamath, or svpo value-head init)"
            )
    fingerprint = meta.tokenizer_fingerprint if meta is not None else None
    if fingerprint is None:
        from transformers import AutoTokenizer

        fingerprint = tokenizer_fingerprint(AutoTokenizer.from_pretrained(spec))
    return meta, fingerprint


def _beta(cfg: ValueEvalConfig, meta: Any) -> tuple[float, str]:
    if cfg.beta is not None:
        return cfg.beta, "--beta"
    trained = (meta.training or {}).get("config", {}).get("beta") if meta is not None else None
    if isinstance(trained, (int, float)) and trained > 0:
        return float(trained), "the checkpoint's training config"
    return 0.1, "default"


def _implicit_rewards(
    pairs: Sequence[PairRecord], policy: Scored, ref: Scored, beta: float
) -> dict[str, Any]:
    """Preference accuracy and DPO loss of the policy against the reference on the pairs."""
    import torch

    from svpo_harness.engines.losses import dpo_loss

    both = [(policy.logps[i], ref.logps[i]) for i in range(len(pairs))]
    both = [(p, r) for p, r in both if p is not None and r is not None]
    if not both:
        return {"pairs": 0}
    pol = torch.tensor([p for p, _ in both], dtype=torch.float64)
    rf = torch.tensor([r for _, r in both], dtype=torch.float64)
    out = dpo_loss(pol[:, 0], pol[:, 1], rf[:, 0], rf[:, 1], beta)
    acc = vm.pair_accuracy(out.chosen_reward.tolist(), out.rejected_reward.tolist())
    return {
        "pairs": acc.n,
        "beta": beta,
        "accuracy": acc.accuracy,  # ties (policy == reference) count as wrong, as in training
        "ties": acc.ties,
        "mean_reward_margin": acc.mean_margin,
        "mean_chosen_reward": float(out.chosen_reward.mean()),
        "mean_rejected_reward": float(out.rejected_reward.mean()),
        "dpo_loss": float(out.loss.mean()),
    }


def compute_metrics(
    data: EvalData,
    pair_scores: Scored,
    step_scores: Scored,
    final_scores: Scored,
    bins: int,
) -> dict[str, Any]:
    """The numbers of metrics.json from the scored rows (no model needed: testable alone)."""
    win = [v[0] for v in pair_scores.values if v is not None]
    lose = [v[1] for v in pair_scores.values if v is not None]
    ranking = vm.pair_accuracy(win, lose)
    sv = [(v[0], s.q) for v, s in zip(step_scores.values, data.steps, strict=True) if v is not None]
    fv = [
        (v[0], s.q > 0)
        for v, s in zip(final_scores.values, data.finals, strict=True)
        if v is not None
    ]
    values, qs = [v for v, _ in sv], [q for _, q in sv]
    f_values, f_labels = [v for v, _ in fv], [y for _, y in fv]
    calib = vm.calibration(values, qs, bins)
    f_calib = vm.calibration(f_values, [1.0 if y else 0.0 for y in f_labels], bins)
    return {
        "value_ranking": {**ranking.to_dict(), "dropped": pair_scores.dropped},
        "final_correctness": {
            "source": data.finals_from,
            "n": len(fv),
            "correct": sum(f_labels),
            "auc": vm.auc(f_values, f_labels),
            "dropped": final_scores.dropped,
            "calibration": [b.to_dict() for b in f_calib],  # mean_target = fraction correct
        },
        "value_vs_q": {
            "n": len(sv),
            "pearson": vm.pearson(values, qs),
            "mse": vm.mean_squared_error(values, qs),
            "dropped": step_scores.dropped,
            "calibration": [b.to_dict() for b in calib],  # mean_target = mean Q
        },
    }


def run_value_eval(cfg: ValueEvalConfig, *, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``cfg.model``'s value head on ``cfg.data``; writes OUT/metrics.json (+ PNGs)."""
    meta, fingerprint = _model_meta(cfg.model, "--model")
    if meta.value_head is None:
        raise ValueEvalError(
            f"--model {cfg.model} has no value head (svpo.json 'value_head' is null): train one "
            "(svpo train --objective svpo|alphamath) or add one (svpo value-head init)"
        )
    data = load_eval_data(
        cfg.data, tokenizer_fingerprint=fingerprint, step_format=meta.step_format.name
    )
    if cfg.reference is not None:
        _, ref_fingerprint = _model_meta(cfg.reference, "--reference")
        if ref_fingerprint != fingerprint:
            raise ValueEvalError(
                f"--reference {cfg.reference} has tokenizer {ref_fingerprint}, the model "
                f"{fingerprint}: log-probs of the same ids are not comparable"
            )
    started = time.perf_counter()
    import torch

    from svpo_harness.engines.checkpoint import load_checkpoint, resolve_device

    device = resolve_device(cfg.device)
    loaded = load_checkpoint(cfg.model, device=device, dtype=cfg.dtype, peft="merge")
    if loaded.value_head is None:
        raise ValueEvalError(f"--model {cfg.model}: no value_head.safetensors to load")
    tok = loaded.tokenizer
    pad = int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)
    common = {
        "pad_id": pad, "device": device, "batch_size": cfg.batch_size,
        "max_length": cfg.max_length, "progress": progress,
    }  # fmt: skip
    head = loaded.value_head.eval()  # dropout off: the value as search reads it
    pair_scores = score_records(loaded.model, head, data.pairs, desc="pairs", **common)
    step_scores = score_records(loaded.model, head, data.steps, desc="step_q", **common)
    final_scores = score_records(loaded.model, head, data.finals, desc="finals", **common)
    metrics = compute_metrics(data, pair_scores, step_scores, final_scores, cfg.bins)
    if cfg.reference is not None:
        del loaded, head  # one model in memory at a time
        ref = load_checkpoint(
            cfg.reference, device=device, dtype=cfg.dtype, peft="merge", value_head="none"
        )
        ref_scores = score_records(ref.model, None, data.pairs, desc="reference", **common)
        beta, beta_from = _beta(cfg, meta)
        metrics["preference"] = {
            **_implicit_rewards(data.pairs, pair_scores, ref_scores, beta),
            "beta_from": beta_from,
        }
        del ref
    if device.type == "cuda":
        torch.cuda.empty_cache()
    metrics = {
        "model": cfg.model,
        "reference": cfg.reference,
        "data": data.files,
        "records": {"pair": len(data.pairs), "step_q": len(data.steps), "final": len(data.finals)},
        **metrics,
        "config": asdict(cfg),
        "seconds": round(time.perf_counter() - started, 2),
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.plots:
        from svpo_harness.pipelines.evaluate.value_plots import plot_calibration, plot_q_vs_v

        step_v = [v[0] for v in step_scores.values if v is not None]
        step_q = [s.q for v, s in zip(step_scores.values, data.steps, strict=True) if v is not None]
        metrics["plots"] = [
            plot_calibration(metrics, out / "calibration.png"),
            plot_q_vs_v(step_v, step_q, metrics["value_vs_q"]["pearson"], out / "q_vs_v.png"),
        ]
    from svpo_harness.core.jsonl_io import atomic_write_json

    atomic_write_json(out / "metrics.json", _finite(metrics))
    return metrics


def _finite(obj: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def summary_line(metrics: dict[str, Any]) -> str:
    """The command's one-line summary."""

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    rank, final = metrics["value_ranking"], metrics["final_correctness"]
    parts = [
        f"value ranking acc {f(rank['accuracy'])} on {rank['n']} pairs",
        f"AUC {f(final['auc'])} on {final['n']} final steps ({final['source']})",
        f"V~Q r {f(metrics['value_vs_q']['pearson'])} on {metrics['value_vs_q']['n']} steps",
    ]
    pref = metrics.get("preference")
    if pref and pref.get("pairs"):
        parts.append(f"pref acc {f(pref['accuracy'])}, DPO loss {f(pref['dpo_loss'])}")
    return "value-eval: " + ", ".join(parts)


__all__ = [
    "EvalData",
    "ValueEvalConfig",
    "ValueEvalError",
    "compute_metrics",
    "final_steps",
    "leaf_terminals",
    "load_eval_data",
    "run_value_eval",
    "score_records",
    "summary_line",
]
