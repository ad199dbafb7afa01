"""Demo model quality: greedy accuracy (lm-eval's own `hf` model) and pass@k (our sampler).

Command (venv with the wheel installed; see BENCHMARKS.md section 2):
    python scripts/bench_demo_model.py MODEL_DIR [MODEL_DIR ...] --json out.json

For every checkpoint, on the same `svpo_arith` test problems (all 1,000 by default):
- greedy: `svpo eval --model hf --tasks svpo_arith` (lm-eval's own CLI and `hf` model;
  strict accuracy: a marked answer only);
- pass@k: k solutions per problem sampled step by step at the given temperature by
  `HFStepPolicy` + `rollout` (per-chain seeds, so the draw is reproducible), a problem counts
  when any of its k final answers is equivalent to the gold one (the project's checker).
Prints one table row per checkpoint and the spread of greedy accuracy across them.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def greedy_accuracy(model_dir: Path, limit: int | None, batch_size: int) -> tuple[float, float]:
    """lm-eval's `hf` model, greedy, on svpo_arith: (strict accuracy, wall seconds).

    Through `svpo eval` (lm-eval's own CLI with svpo's tasks registered), so an editable
    install without the start-up hook works too.
    """
    lm_eval = Path(sys.executable).with_name("svpo")
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            str(lm_eval),
            "eval",
            "--model",
            "hf",
            "--model_args",
            f"pretrained={model_dir}",
            "--device",
            "cpu",
            "--tasks",
            "svpo_arith",
            "--batch_size",
            str(batch_size),
            "--output_path",
            out,
        ]
        if limit:
            cmd += ["--limit", str(limit)]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        results = json.loads(next(Path(out).rglob("results_*.json")).read_text())["results"]
    return results["svpo_arith"]["acc,none"], seconds


def pass_at_k(
    model_dir: Path, limit: int | None, k: int, temperature: float, seed: int, chunk: int
) -> tuple[float, float, float]:
    """(pass@k, mean accuracy of one sample, wall seconds) with our step sampler."""
    from svpo_harness.core.arith import arith_split
    from svpo_harness.core.search import RootState, SearchOptions
    from svpo_harness.core.search.rollout import rollout
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.grading import extract_answer, is_equiv

    policy = HFStepPolicy.from_checkpoint(model_dir, device="cpu", value_head="none")
    problems = arith_split("test", limit)
    hits, single, start = 0, 0, time.perf_counter()
    for s in range(0, len(problems), chunk):
        part = problems[s : s + chunk]
        roots = [RootState(p.question_id, policy.encode_prompt(p.question)) for p in part]
        outs = rollout(
            roots,
            policy,
            SearchOptions(),
            seed,
            n_solutions=k,
            temperature=temperature,
            with_values=False,
        )
        for problem, chains in zip(part, outs, strict=True):
            right = 0
            for end in chains.ends:
                text = "".join(c.text for c in chains.question.path(end.id))
                found = extract_answer(text, "strict")
                right += found is not None and is_equiv(found.answer, str(problem.answer))
            hits += right > 0
            single += right
    n = len(problems)
    return hits / n, single / (n * k), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=None, help="first N test problems")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64, help="lm-eval --batch_size")
    parser.add_argument("--chunk", type=int, default=100, help="problems per rollout call")
    parser.add_argument("--skip-pass", action="store_true", help="greedy only")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    rows = []
    for model in args.models:
        greedy, greedy_s = greedy_accuracy(model, args.limit, args.batch_size)
        row = {"model": str(model), "greedy": greedy, "greedy_s": round(greedy_s, 1)}
        if not args.skip_pass:
            passk, single, pass_s = pass_at_k(
                model, args.limit, args.k, args.temperature, args.seed, args.chunk
            )
            row |= {f"pass@{args.k}": passk, "sample_acc": single, "pass_s": round(pass_s, 1)}
        meta = json.loads((model / "svpo.json").read_text()).get("training", {})
        row["build"] = meta.get("demo_build", {})
        rows.append(row)
        print(json.dumps(row), flush=True)

    n = args.limit or 1000
    stderr = math.sqrt(0.25 / n)
    print(f"\n{'model':40s} {'greedy':>7s} {'pass@' + str(args.k):>7s} {'sample':>7s}")
    for row in rows:
        print(
            f"{row['model'][-40:]:40s} {row['greedy']:7.3f} "
            f"{row.get(f'pass@{args.k}', float('nan')):7.3f} "
            f"{row.get('sample_acc', float('nan')):7.3f}"
        )
    greedies = [row["greedy"] for row in rows]
    print(
        f"greedy spread (max - min): {max(greedies) - min(greedies):.3f} "
        f"(stderr of one accuracy at n={n}: <= {stderr:.3f})"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
