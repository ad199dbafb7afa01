"""Benchmark the answer checker against math-verify 0.9.0: agreement, throughput, latency.

    python scripts/bench_grading.py --data-dir ../shared/data --n 5000 --show 15

Sections:
1. agreement with ``math_verify.verify(parse(gold), parse(pred))`` on the same pairs:
   MATH test (extracted solution vs gold), MATH-500 (solution vs ``answer``), MATH-500
   surface variants (must match) and negatives (answer of the next problem: must not),
   GSM8K model solutions (flexible mode vs ``is_correct``), the MATH-500 golds written
   the ways models write them (``tests/core/grading/model_written_forms.py``: must match)
   and the same with a perturbed answer (must not), and 300 generated one-variable
   interval/inequality/set pairs, equal or not by construction
   (``tests/core/grading/set_forms.py``, issue 27);
2. throughput (pairs/s) on ``--n`` MATH test pairs, each side doing extraction + check,
   in one process and on a 2-process pool (ours: ``grade_many``; math-verify:
   ``multiprocessing.Pool``);
3. single-call latency p50/p95: in-process ``is_equiv`` and ``grade_many`` of one pair on a
   warm pool.

math-verify is only needed here, never by the package.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "core" / "grading"))  # the model-written forms

from model_written_forms import model_form_pairs  # noqa: E402
from set_forms import generated_pairs  # noqa: E402

from svpo_harness.grading import extract_answer, grade_many, shutdown_pool  # noqa: E402
from svpo_harness.grading.equiv import is_equiv  # noqa: E402

Pair = tuple[str, str]  # (pred, gold)


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# -- math-verify side (kept in module scope so a Pool can pickle it) -------------------------


def mv_check(pair: Pair) -> bool:
    """math-verify on a (pred text, gold answer) pair: gold boxed, pred parsed as given."""
    from math_verify import parse, verify

    pred, gold = pair
    return bool(verify(parse("\\boxed{" + gold + "}"), parse(pred)))


def mv_check_answer(pair: Pair) -> bool:
    """math-verify on two bare answers: both wrapped in ``$...$``."""
    from math_verify import parse, verify

    pred, gold = pair
    return bool(verify(parse("$" + gold + "$"), parse("$" + pred + "$")))


def ours_check(pair: Pair) -> bool:
    """Ours on a (pred text, gold answer) pair: ``is_equiv(extract_answer(text), gold)``."""
    pred, gold = pair
    return is_equiv(extract_answer(pred, "flexible"), gold)


def _ours_answer_check(pair: Pair) -> bool:
    return is_equiv(pair[0], pair[1])


def _ours_pairs(pairs: list[Pair]) -> list[tuple[object, str]]:
    return [(extract_answer(pred, "flexible"), gold) for pred, gold in pairs]


# -- pair sets ---------------------------------------------------------------------------


_TEXT_RE = re.compile(r"\\(?:text|mbox)")


def variants(ans: str) -> str:
    """A surface variant that must stay equivalent (``\\dfrac``, spacing, ``\\left(``)."""
    v = ans.replace("\\frac", "\\dfrac")
    if v == ans and not re.search(r"\d,(?:\\!)?\s*\d{3}", ans):  # not thousands commas
        v = ans.replace(",", ", ")
    if v == ans and "," not in ans and "=" not in ans and not _TEXT_RE.search(ans):
        v = "\\left(" + ans + "\\right)"
    return v if v != ans else " " + ans + " "


def x_equals(ans: str) -> str:
    """``x = <answer>``: equivalent, and it defeats our identical-string fast path, so both
    sides are really parsed (used for the speed numbers)."""
    if "=" in ans or "\\in" in ans or _TEXT_RE.search(ans) or re.fullmatch(r"\(?[A-E]\)?", ans):
        return ans + " "
    return "x = " + ans


def pair_sets(data: Path, n: int) -> dict[str, tuple[list[Pair], list[bool] | None, bool]]:
    """name -> (pairs of (pred text, gold), expected labels or None, pred is a full text)."""
    math_test = load(data / "math" / "test.jsonl")[:n]
    m500 = load(data / "math500" / "test.jsonl")
    sols = load(data / "gsm8k" / "model_solutions.jsonl")
    gold_of = [extract_answer(r["solution"], "boxed") for r in math_test]
    sets: dict[str, tuple[list[Pair], list[bool] | None, bool]] = {}
    sets["MATH test: solution vs gold"] = (
        [(r["solution"], g.answer) for r, g in zip(math_test, gold_of, strict=True) if g],
        None,
        True,
    )
    sets["MATH-500: solution vs answer"] = (
        [(r["solution"], r["answer"]) for r in m500],
        None,
        True,
    )
    sets["MATH-500: surface variant vs answer (expect all True)"] = (
        [(variants(r["answer"]), r["answer"]) for r in m500],
        [True] * len(m500),
        False,
    )
    sets["MATH-500: x = answer vs answer (expect all True)"] = (
        [(x_equals(r["answer"]), r["answer"]) for r in m500],
        [True] * len(m500),
        False,
    )
    neg = [(m500[(i + 1) % len(m500)]["answer"], r["answer"]) for i, r in enumerate(m500)]
    labels = [p.strip() == g.strip() for p, g in neg]
    sets["MATH-500: next problem's answer (expect False)"] = (neg, labels, False)
    # Random pairs of different gold answers: where the two checkers' false positives show.
    pool_ans = [r["answer"] for r in m500]
    pool_ans += [r["answer"].strip("$") for r in load(data / "gaokao2023en" / "test.jsonl")]
    rng = random.Random(1)
    rand = [(rng.choice(pool_ans), rng.choice(pool_ans)) for _ in range(3000)]
    sets["MATH-500 + GaoKao: random answer pairs"] = (
        [(p, g) for p, g in rand if p.strip() != g.strip()],
        None,
        False,
    )
    good, bad = model_form_pairs([r["answer"] for r in m500])
    sets["MATH-500 model-written forms (expect all True)"] = (
        [(text, g) for _, text, g in good],
        [True] * len(good),
        True,
    )
    sets["MATH-500 model-written forms, perturbed (expect all False)"] = (
        [(text, g) for _, text, g in bad],
        [False] * len(bad),
        True,
    )
    pairs, labels = [], []
    for r in sols:
        gold = r["ground_truth"].rsplit("A:", 1)[-1].strip()
        for k in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            pairs.append((r[k]["solution"], gold))
            labels.append(bool(r[k]["is_correct"]))
    sets["GSM8K model solutions vs is_correct"] = (pairs, labels, True)
    gen = generated_pairs(300, seed=27)  # the test suite's set (test_grading_sets.py)
    sets["generated interval/inequality/set pairs (issue 27)"] = (
        [(p, g) for g, p, _ in gen],
        [e for _, _, e in gen],
        False,
    )
    return sets


def agreement(data: Path, n: int, show: int) -> None:
    print("## Agreement with math-verify 0.9.0\n")
    print(
        "| pair set | pairs | ours True | math-verify True | disagree "
        "| ours vs label | mv vs label |"
    )
    print("|---|---|---|---|---|---|---|")
    details = []
    for name, (pairs, labels, full) in pair_sets(data, n).items():
        ours = grade_many(_ours_pairs(pairs) if full else pairs, timeout=5.0, processes=2)
        with mp.get_context("spawn").Pool(2) as pool:
            mv = pool.map(mv_check if full else mv_check_answer, pairs, chunksize=16)
        dis = [i for i in range(len(pairs)) if ours[i] != mv[i]]
        lab_o = lab_m = "-"
        if labels is not None:
            lab_o = f"{sum(o == t for o, t in zip(ours, labels, strict=True))}/{len(labels)}"
            lab_m = f"{sum(m == t for m, t in zip(mv, labels, strict=True))}/{len(labels)}"
        print(
            f"| {name} | {len(pairs)} | {sum(ours)} | {sum(mv)} | {len(dis)} | {lab_o} | {lab_m} |"
        )
        for i in dis[:show]:
            pred, gold = pairs[i]
            shown = extract_answer(pred, "flexible") if full else None
            details.append(
                f"- [{name}] gold={gold!r} pred={(shown.answer if shown else pred)[:80]!r} "
                f"ours={ours[i]} mv={mv[i]}" + (f" label={labels[i]}" if labels else "")
            )
    print("\nDisagreements (first per set):\n")
    print("\n".join(details) if details else "none")
    print()


# -- speed ---------------------------------------------------------------------------------


def _rate(fn: Callable[[], object], count: int) -> float:
    t = time.perf_counter()
    fn()
    return count / (time.perf_counter() - t)


def throughput(data: Path, n: int) -> None:
    rows = load(data / "math" / "test.jsonl")[:n]
    pairs = [(r["solution"], extract_answer(r["solution"], "boxed").answer) for r in rows]
    # `x = g` defeats our identical-string fast path, so parsing is really measured.
    var = [(x_equals(g), g) for _, g in pairs]
    print(f"## Throughput ({len(pairs)} MATH test pairs, pairs/s)\n")
    print(
        "| pairs | ours 1 proc | math-verify 1 proc | ratio | ours pool(2) "
        "| math-verify Pool(2) | ratio |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, ps, full in (("solution vs gold", pairs, True), ("x = gold vs gold", var, False)):
        ours_fn = ours_check if full else _ours_answer_check
        mv_fn = mv_check if full else mv_check_answer
        o1 = _rate(lambda f=ours_fn, ps=ps: [f(p) for p in ps], len(ps))
        m1 = _rate(lambda f=mv_fn, ps=ps: [f(p) for p in ps], len(ps))
        grade_many([("1", "1")], processes=2)  # warm the pool: start-up is not throughput
        jobs = (lambda ps=ps: _ours_pairs(ps)) if full else (lambda ps=ps: ps)
        o2 = _rate(lambda j=jobs: grade_many(j(), processes=2), len(ps))
        with mp.get_context("spawn").Pool(2) as pool:
            pool.map(mv_fn, ps[:20])  # warm: imports done
            m2 = _rate(lambda f=mv_fn, ps=ps: pool.map(f, ps, chunksize=32), len(ps))
        print(
            f"| {label} | {o1:.0f} | {m1:.0f} | {o1 / m1:.1f}x "
            f"| {o2:.0f} | {m2:.0f} | {o2 / m2:.1f}x |"
        )
    print()


def latency(data: Path) -> None:
    m500 = load(data / "math500" / "test.jsonl")
    pairs = [(x_equals(r["answer"]), r["answer"]) for r in m500]
    grade_many([("1", "1")], processes=2)
    inproc, pooled = [], []
    for p in pairs:
        t = time.perf_counter()
        is_equiv(*p)
        inproc.append(time.perf_counter() - t)
        t = time.perf_counter()
        grade_many([p], processes=2)
        pooled.append(time.perf_counter() - t)
    print("## Single-call latency (500 MATH-500 `x = answer` vs answer pairs, ms)\n")
    print("| path | p50 | p95 | max |")
    print("|---|---|---|---|")
    for name, xs in (("is_equiv in process", inproc), ("grade_many, 1 pair, warm pool", pooled)):
        xs = sorted(x * 1000 for x in xs)
        p95 = xs[int(0.95 * (len(xs) - 1))]
        print(f"| {name} | {statistics.median(xs):.2f} | {p95:.2f} | {xs[-1]:.2f} |")
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=REPO / ".." / "shared" / "data")
    ap.add_argument("--n", type=int, default=5000, help="MATH test pairs for throughput/agreement")
    ap.add_argument("--show", type=int, default=15, help="disagreements listed per pair set")
    ap.add_argument("--skip", nargs="*", default=[], choices=["agreement", "throughput", "latency"])
    args = ap.parse_args()
    import math_verify  # noqa: F401 - fail early with a clear ImportError

    print(f"python {sys.version.split()[0]}, math-verify {_version('math-verify')}, "
          f"sympy {_version('sympy')}, cpus {mp.cpu_count()}\n")  # fmt: skip
    try:
        if "agreement" not in args.skip:
            agreement(args.data_dir, args.n, args.show)
        if "throughput" not in args.skip:
            throughput(args.data_dir, args.n)
        if "latency" not in args.skip:
            latency(args.data_dir)
    finally:
        shutdown_pool()


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    main()
