"""The base model's numbers that define the hard split (svpo_harness/core/arith_hard.py).

Command (venv with the package installed; BENCHMARKS.md section 17):
    python scripts/measure_arith_hard.py [--model DIR] [--split test] [--samples 16] --json out.json

On every problem of the hard split (default: its 500 test problems), with the shipped demo model
unless --model names another checkpoint:
- greedy: lm-eval's own `hf` model on the task `svpo_arith_hard` (`svpo eval`, strict accuracy:
  a marked answer only), as BENCHMARKS.md section 2 measures `svpo_arith`;
- pass@16 at temperature 1.0: `--samples` solutions per problem sampled step by step by
  `HFStepPolicy` + `rollout` (per-chain seeds: reproducible), each graded by the project's checker
  against the gold answer, and the unbiased estimator 1 - C(n - c, k) / C(n, k) (Chen et al.
  2021) with n samples, c of them right, k = 16 (needs n >= 16);
- by number of divisions, the same two numbers (the split's difficulty is the division steps).
The definition requires greedy <= 0.5 and pass@16 >= 0.85 (issue 26); the script says whether
they hold.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

GREEDY_MAX, PASS_MIN, K = 0.5, 0.85, 16


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are right."""
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def lm_eval_greedy(model: Path, task: str, limit: int | None) -> dict[str, bool]:
    """question_id -> right, from lm-eval's `hf` model through `svpo eval`."""
    svpo = Path(sys.executable).with_name("svpo")
    with tempfile.TemporaryDirectory() as out:
        cmd = [str(svpo), "eval", "--model", "hf", "--model_args", f"pretrained={model}",
               "--device", "cpu", "--tasks", task, "--batch_size", "64", "--output_path", out,
               "--log_samples"]  # fmt: skip
        if limit:
            cmd += ["--limit", str(limit)]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        path = next(Path(out).rglob(f"samples_{task}*.jsonl"))
        rows = [json.loads(line) for line in path.open()]
    return {row["doc"]["question_id"]: row["acc"] == 1.0 for row in rows}


def sampled_right(model: Path, problems: list, n: int, temperature: float, seed: int) -> list[int]:
    """Per problem, how many of ``n`` sampled solutions are right."""
    from svpo_harness.core.search import RootState, SearchOptions
    from svpo_harness.core.search.rollout import rollout
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.grading import extract_answer, is_equiv

    policy = HFStepPolicy.from_checkpoint(model, device="cpu", value_head="none")
    right: list[int] = []
    for start in range(0, len(problems), 50):
        part = problems[start : start + 50]
        roots = [RootState(p.question_id, policy.encode_prompt(p.question)) for p in part]
        outs = rollout(roots, policy, SearchOptions(), seed, n_solutions=n,
                       temperature=temperature, with_values=False)  # fmt: skip
        for problem, chains in zip(part, outs, strict=True):
            count = 0
            for end in chains.ends:
                text = "".join(c.text for c in chains.question.path(end.id))
                found = extract_answer(text, "strict")
                count += found is not None and is_equiv(found.answer, str(problem.answer))
            right.append(count)
        print(f"  sampled {start + len(part)}/{len(problems)}", file=sys.stderr, flush=True)
    return right


def main() -> None:
    from svpo_harness.core.arith_hard import arith_hard_split
    from svpo_harness.pipelines.demo import shipped_demo_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="default: the shipped demo")
    parser.add_argument("--split", default="test", choices=["test", "dev"])
    parser.add_argument("--limit", type=int, default=None, help="first N problems only")
    parser.add_argument("--samples", type=int, default=K, help=f"samples per problem (>= {K})")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.samples < K:
        parser.error(f"--samples must be >= {K} for pass@{K}")
    model = args.model or shipped_demo_model()
    problems = arith_hard_split(args.split, args.limit)
    start = time.perf_counter()
    task = "svpo_arith_hard" if args.split == "test" else None
    greedy = lm_eval_greedy(model, task, args.limit) if task else {}
    greedy_s = time.perf_counter() - start
    right = sampled_right(model, problems, args.samples, args.temperature, args.seed)
    groups: dict[str, list[tuple[bool | None, float]]] = defaultdict(list)
    for problem, c in zip(problems, right, strict=True):
        row = (greedy.get(problem.question_id), pass_at_k(args.samples, c, K))
        groups["all"].append(row)
        groups[f"divisions={problem.n_divisions}"].append(row)
        groups[f"operations={problem.n_ops}"].append(row)
    summary = {
        "model": str(model),
        "split": args.split,
        "problems": len(problems),
        "samples": args.samples,
        "temperature": args.temperature,
        "seed": args.seed,
        "greedy_s": round(greedy_s, 1),
        "seconds": round(time.perf_counter() - start, 1),
        "groups": {},
        "per_problem": [
            {"question_id": p.question_id, "greedy": greedy.get(p.question_id), "right": c}
            for p, c in zip(problems, right, strict=True)
        ],
    }
    for name, rows in sorted(groups.items()):
        known = [g for g, _ in rows if g is not None]
        summary["groups"][name] = {
            "problems": len(rows),
            "greedy": sum(known) / len(known) if known else None,
            f"pass@{K}": sum(p for _, p in rows) / len(rows),
        }
    every = summary["groups"]["all"]
    greedy_ok = every["greedy"] is not None and every["greedy"] <= GREEDY_MAX
    summary["meets_definition"] = greedy_ok and every[f"pass@{K}"] >= PASS_MIN
    print(json.dumps({k: v for k, v in summary.items() if k != "per_problem"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
