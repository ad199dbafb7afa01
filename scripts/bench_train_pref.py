"""Preference training on the demo model: held-out step pairs before and after `svpo train`.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/bench_train_pref.py \\
        --work runs/bench_train_pref --n 400 --steps 300 --lr 2e-4 --dpo --greedy 200 \\
        --json runs/bench_train_pref.json

Issue 13, done-when: "On pairs from annotating the demo model on arith:train: a few hundred
steps lower the DPO loss and raise implicit-reward preference accuracy on held-out pairs; value
ranking accuracy on held-out pairs at least 0.65". One process:

1. annotate the shipped demo model on the first ``--n`` questions of ``arith:train`` (MCTS,
   ``--simulations``, ``--children``, ``--temperature``, ``min_visits`` 1; a finished annotation
   in ``WORK/ann`` is reused: the run folder resumes and adds nothing; training always starts
   over);
2. split every record BY QUESTION (sha256 of the question id, so a question's pairs, steps and
   tree never straddle the split) into ``WORK/train.jsonl`` (80%) and ``WORK/heldout.jsonl``;
3. ``svpo value-eval`` of the demo model on the held-out file (the reference against itself:
   DPO loss log 2, every implicit reward 0);
4. ``svpo train --objective svpo`` (LoRA, defaults of method.md section 5) on the train file,
   then value-eval of the result on the held-out file against the demo model as reference;
5. with ``--dpo``, the solution-level DPO baseline (trees of the train file) the same way;
6. with ``--greedy N``, each model's greedy accuracy on the first N svpo_arith test problems
   (preference training can wreck a policy while every held-out pair number improves: at lr
   1e-3 it did, BENCHMARKS.md section 8).

Prints a markdown table; ``--json`` writes every metrics.json together.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def held_out(question_id: str, percent: int) -> bool:
    """Deterministic split by question: the first 8 bytes of sha256(id) mod 100."""
    digest = hashlib.sha256(question_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def split_records(ann: Path, work: Path, percent: int) -> dict[str, dict[str, int]]:
    """pairs.jsonl + trees.jsonl -> train.jsonl / heldout.jsonl; counts per kind and side."""
    counts: dict[str, dict[str, int]] = {"train": {}, "heldout": {}}
    questions: dict[str, set[str]] = {"train": set(), "heldout": set()}
    with (
        open(work / "train.jsonl", "w", encoding="utf-8") as train,
        open(work / "heldout.jsonl", "w", encoding="utf-8") as held,
    ):
        for name in ("pairs.jsonl", "trees.jsonl"):
            for line in (ann / name).read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                side = "heldout" if held_out(record["question_id"], percent) else "train"
                (held if side == "heldout" else train).write(line + "\n")
                kind = record["type"]
                counts[side][kind] = counts[side].get(kind, 0) + 1
                questions[side].add(record["question_id"])
    for side in counts:
        counts[side]["questions"] = len(questions[side])
    return counts


def annotate(model: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    from svpo_harness.pipelines.annotate import AnnotateConfig, run_annotate

    cfg = AnnotateConfig(
        model=str(model), data="arith:train", out=str(out), limit=args.n,
        simulations=args.simulations, children=args.children, temperature=args.temperature,
        min_visits=1, device="cpu", seed=args.seed, trees_in_flight=64, batch_size=256,
    )  # fmt: skip
    start = time.perf_counter()
    summary = run_annotate(cfg, progress=False)
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    return {"summary": summary, "wall_s": time.perf_counter() - start, "stats": stats}


def train(model: Path, data: Path, out: Path, objective: str, args: argparse.Namespace) -> dict:
    from svpo_harness.pipelines.train import TrainConfig, run_training

    cfg = TrainConfig(
        objective=objective, model=str(model), data=str(data), out=str(out),
        max_steps=args.steps, batch_size=args.batch_size, lr=args.lr, beta=args.beta,
        value_head_lr=args.value_head_lr,
        device="cpu", seed=args.seed, overwrite=True,
    )  # fmt: skip
    losses: list[float] = []
    result = run_training(cfg, progress=False, on_step=lambda step, loss: losses.append(loss))
    return {
        "steps": result.steps,
        "wall_s": result.seconds,
        "first_loss": losses[0] if losses else None,
        "last_10_mean_loss": sum(losses[-10:]) / max(1, len(losses[-10:])),
        "last": result.summary.get("last"),
    }


def evaluate(model: Path, data: Path, out: Path, reference: Path) -> dict[str, Any]:
    from svpo_harness.pipelines.evaluate import ValueEvalConfig, run_value_eval, summary_line

    cfg = ValueEvalConfig(
        model=str(model), data=str(data), out=str(out), reference=str(reference), device="cpu"
    )
    metrics = run_value_eval(cfg, progress=False)
    print(f"  {out.name}: {summary_line(metrics)}", flush=True)
    return metrics


def greedy_accuracy(model: Path, out: Path, limit: int) -> float:
    """Strict greedy accuracy on the first ``limit`` svpo_arith test problems (`svpo eval
    --model svpo`, which loads LoRA checkpoints): is the policy still a policy after training?"""
    svpo = Path(sys.executable).with_name("svpo")
    cmd = [
        str(svpo), "eval", "--model", "svpo", "--model_args", f"pretrained={model},decoding=greedy",
        "--tasks", "svpo_arith", "--limit", str(limit), "--device", "cpu", "--batch_size", "8",
        "--output_path", str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    results = json.loads(max(out.rglob("results_*.json")).read_text(encoding="utf-8"))
    return float(results["results"]["svpo_arith"]["acc,none"])


def _f(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def table(rows: list[tuple[str, dict[str, Any]]], greedy: dict[str, float]) -> str:
    lines = [
        "| model | held-out pairs | DPO loss | implicit-reward pref acc (ties) | "
        "value ranking acc | AUC final correctness | Pearson V~Q | greedy acc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, m in rows:
        pref = m.get("preference", {})
        lines.append(
            f"| {name} | {m['value_ranking']['n']} | {_f(pref.get('dpo_loss'))} | "
            f"{_f(pref.get('accuracy'))} ({_f(pref.get('ties'))}) | "
            f"{_f(m['value_ranking']['accuracy'])} | {_f(m['final_correctness']['auc'])} | "
            f"{_f(m['value_vs_q']['pearson'])} | {_f(greedy.get(name))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/bench_train_pref", help="Working folder.")
    parser.add_argument("--n", type=int, default=400, help="arith:train questions annotated.")
    parser.add_argument("--simulations", type=int, default=16)
    parser.add_argument("--children", type=int, default=4)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--heldout-percent", type=int, default=20)
    parser.add_argument("--steps", type=int, default=300, help="Optimizer steps per objective.")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--value-head-lr", type=float, default=None, help="Default: --lr.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dpo", action="store_true", help="Also the solution-level DPO baseline.")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument(
        "--greedy", type=int, default=0, help="Also greedy accuracy on N svpo_arith test problems."
    )
    parser.add_argument("--threads", type=int, default=None, help="torch threads.")
    parser.add_argument("--json", default=None, help="Write all numbers here.")
    args = parser.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from svpo_harness.pipelines.demo import copy_shipped_demo_model

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    demo = work / "demo"
    if not (demo / "svpo.json").is_file():
        copy_shipped_demo_model(demo)
    report: dict[str, Any] = {"args": vars(args)}
    print("annotating ...", flush=True)
    report["annotate"] = annotate(demo, work / "ann", args)
    print(f"  {report['annotate']['summary']}", flush=True)
    report["split"] = split_records(work / "ann", work, args.heldout_percent)
    print(f"  split: {report['split']}", flush=True)
    heldout = work / "heldout.jsonl"
    rows = [("demo model (reference)", evaluate(demo, heldout, work / "eval_before", demo))]
    objectives = ["svpo"] + (["dpo"] if args.dpo else [])
    for objective in objectives:
        print(f"training {objective} ...", flush=True)
        ckpt = work / f"ckpt_{objective}"
        report[f"train_{objective}"] = train(demo, work / "train.jsonl", ckpt, objective, args)
        print(f"  {report[f'train_{objective}']}", flush=True)
        after = evaluate(ckpt, heldout, work / f"eval_{objective}", demo)
        rows.append((f"after {args.steps} steps --objective {objective}", after))
        # the same model on its own training pairs: how much of the gain is fitting
        report[f"train_split_{objective}"] = evaluate(
            ckpt, work / "train.jsonl", work / f"eval_{objective}_train", demo
        )
    report["heldout"] = {name: m for name, m in rows}
    greedy: dict[str, float] = {}
    if args.greedy:
        models = [demo] + [work / f"ckpt_{objective}" for objective in objectives]
        for (name, _), model in zip(rows, models, strict=True):
            print(f"greedy on {model.name} ...", flush=True)
            greedy[name] = greedy_accuracy(model, work / f"greedy_{model.name}", args.greedy)
    report["greedy"] = greedy
    print(table(rows, greedy))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
