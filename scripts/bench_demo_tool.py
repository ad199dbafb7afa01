"""The demo model's tool variant vs its arith layout: greedy on svpo_arith test, with why it fails.

Command (BENCHMARKS.md section 14):
    python scripts/bench_demo_tool.py --limit 1000 --build-steps 300 600 --json out.json

Rows: the two shipped demo models (2,800 SFT steps each: `svpo demo-model [--step-format tool]
--shipped`), and for each ``--build-steps`` value each of ``--layouts`` rebuilt from scratch
with that many steps (the same seed, world, teacher, model size and optimizer). Every row is
``lm_eval --model svpo ... decoding=greedy`` on the same ``svpo_arith`` test problems through
lm-eval's Python API (tool steps run in the sandbox). Each wrong solution is read step by step
against its problem's gold steps and counted under every failure it shows:

- arithmetic: a step's result is not what its operation gives (the model's own sum; a tool step
  cannot have one, Python computes it);
- copy: a step starts from another number than the previous step's result;
- slip: the teacher's slip (subtracting where the story divides);
- other: anything else (wrong amount, a missing or extra step, no marked answer).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from svpo_harness.core.arith import ArithProblem, arith_split, greedy_ceiling

ARITH_STEP = re.compile(r"(-?\d+) ([-+*/]) (\d+) = (-?\d+)")
TOOL_STEP = re.compile(r"print\((-?\d+) (//|[-+*]) (\d+)\)\n</code>\n<output>\n(.*?)\n</output>")


def _apply(a: int, op: str, b: int) -> int | None:
    if op in ("/", "//"):
        return a // b if b else None
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def computed_steps(text: str, step_format: str) -> list[tuple[int, str, int, str]]:
    """(a, op, b, shown result) per computing step of a model's solution."""
    pattern = TOOL_STEP if step_format == "tool" else ARITH_STEP
    out = []
    for a, op, b, shown in pattern.findall(text):
        out.append((int(a), "/" if op == "//" else op, int(b), shown.strip()))
    return out


def failures(text: str, step_format: str, problem: ArithProblem) -> set[str]:
    """The failure kinds a wrong solution shows (see the module doc)."""
    found: set[str] = set()
    gold = [ARITH_STEP.search(s).groups() for s in problem.solution_steps[:-1]]
    steps = computed_steps(text, step_format)
    previous: str | None = None
    for i, (a, op, b, shown) in enumerate(steps):
        if str(_apply(a, op, b)) != shown:
            found.add("arithmetic")
        if previous is not None and str(a) != previous:
            found.add("copy")
        if i < len(gold) and gold[i][1] == "/" and op == "-" and int(gold[i][2]) == b:
            found.add("slip")
        previous = shown
    return found or {"other"}


def evaluate(model: Path, limit: int, batch_size: int, out: Path) -> dict:
    from svpo_harness.pipelines.evaluate import evaluate_checkpoint

    meta = json.loads((model / "svpo.json").read_text())
    fmt = meta["step_format"]["name"]
    start = time.perf_counter()
    numbers = evaluate_checkpoint(model, "svpo_arith", {"decoding": "greedy"}, out,
                                  limit=limit, batch_size=batch_size)  # fmt: skip
    seconds = time.perf_counter() - start
    problems = {p.question: p for p in arith_split("test")}
    counts = {"arithmetic": 0, "copy": 0, "slip": 0, "other": 0}
    wrong = 0
    for line in next(out.rglob("samples_svpo_arith*.jsonl")).open():
        sample = json.loads(line)
        if sample["acc"]:
            continue
        wrong += 1
        problem = problems[sample["doc"]["question"]]
        for kind in failures(sample["resps"][0][0], fmt, problem):
            counts[kind] += 1
    build = meta["training"].get("demo_build", {})
    return {"step_format": fmt, "steps": build.get("steps"), "acc": numbers["acc"],
            "acc_stderr": numbers["acc_stderr"], "n": numbers["n"], "wrong": wrong,
            "failures": counts, "tokens_per_question": numbers["tokens_per_question"],
            "eval_seconds": round(seconds, 1)}  # fmt: skip


def main() -> None:
    from svpo_harness.pipelines.demo import build_demo_model, shipped_demo_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--build-steps", type=int, nargs="*", default=[])
    parser.add_argument(
        "--layouts",
        nargs="+",
        default=["arith", "tool"],
        choices=["arith", "tool"],
        help="layouts to rebuild at --build-steps",
    )
    parser.add_argument("--no-shipped", action="store_true", help="skip the shipped models")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-demo-tool-") as tmp:
        work = Path(tmp)
        models = []
        if not args.no_shipped:
            models = [("shipped", shipped_demo_model(fmt)) for fmt in ("arith", "tool")]
        for steps in args.build_steps:
            for fmt in args.layouts:
                start = time.perf_counter()
                built = build_demo_model(work / f"{fmt}-{steps}", steps=steps, progress=False,
                                         step_format=fmt)  # fmt: skip
                seconds = time.perf_counter() - start
                print(f"built {fmt} with {steps} steps in {seconds:.0f} s")
                models.append((f"built, {steps} steps, {seconds:.0f} s", built.out))
        for i, (origin, model) in enumerate(models):
            row = {"model": origin, **evaluate(model, args.limit, args.batch_size,
                                               work / f"eval-{i}")}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
    ceiling = greedy_ceiling("test", args.limit)
    print(f"\ngreedy ceiling of a perfect imitator of the teacher: {ceiling:.3f}\n")
    print("| model | layout | SFT steps | greedy acc (± stderr) | wrong | arithmetic | copy | "
          "slip | other | tokens/question | eval s |")  # fmt: skip
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = r["failures"]
        print(f"| {r['model']} | {r['step_format']} | {r['steps']} | {r['acc']:.3f} ± "
              f"{r['acc_stderr']:.3f} | {r['wrong']} | {f['arithmetic']} | {f['copy']} | "
              f"{f['slip']} | {f['other']} | {r['tokens_per_question']:.0f} | "
              f"{r['eval_seconds']:.0f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"ceiling": ceiling, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
