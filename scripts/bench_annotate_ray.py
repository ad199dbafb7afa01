"""`svpo annotate --ray` throughput: questions/s with 1 and 2 Ray workers of one thread each.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/bench_annotate_ray.py \\
        --n 24 --simulations 16 --json bench_annotate_ray.json

Issue 17, done-when: "questions/s with 1 and 2 workers of one thread each on the 2-core machine,
same questions and settings, one run (target: 2 workers at least 1.7x one), and the driver's
overhead per question". The shipped demo model (CPU, fp32), the first ``--n`` ``arith:train``
questions, MCTS with ``--simulations`` per tree, 3 children, temperature 1.0, and at most
``--trees-in-flight`` trees (4) grown at once by one process. That cap matters on this model:
its forward is so small that a batch of 16 trees costs about what one tree costs, so without
the cap a run's speed follows its batch size, and two workers (each with half the queue) would
measure batching, not parallelism; with it, both runs hand out batches of 4 trees almost to
the end (the hand-out shrinks batches only near the tail).

Each configuration starts a local Ray instance with 2 CPUs (one per core), starts its workers
and waits until every one has loaded the policy; then the clock runs over the hand-out loop
(``RayWorkers.grow``) with the driver writing every tree as a run does (append, flush, fsync).
questions/s = questions / that wall time. The driver's overhead per question is the driver
process's CPU time over the loop (Ray's client threads, unpickling, writing) / questions. A
single-process run on one thread (no Ray) of the same questions gives Ray's cost per worker.
The machine's load average and CPU busy share during each run are printed: other processes on
the same cores slow the 2-worker run most. So are the workers' own CPU seconds (each actor's
process time) and the cores they got per wall second; questions / worker CPU second x workers is
the rate with a free core per worker, which other load does not change.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def writer(folder: Path):
    """The run's write rules (pairs first, the tree line commits them; fsync per record)."""
    from svpo_harness.pipelines.runs import open_jsonl

    trees, pairs = open_jsonl(folder / "trees.jsonl"), open_jsonl(folder / "pairs.jsonl")

    def on_tree(record, records, counters) -> None:
        for rec in records:
            pairs.append(rec)
        trees.append(record)

    return on_tree, (trees, pairs)


def timed(run, n: int) -> dict:
    busy0, total0 = cpu_busy()
    load0 = os.getloadavg()[0]
    start, cpu = time.perf_counter(), time.process_time()
    run()
    wall, driver_cpu = time.perf_counter() - start, time.process_time() - cpu
    busy1, total1 = cpu_busy()
    return {
        "wall_s": round(wall, 3),
        "questions_per_s": round(n / wall, 4),
        "driver_cpu_s": round(driver_cpu, 3),
        "driver_cpu_ms_per_question": round(1000 * driver_cpu / n, 2),
        "machine_busy": round((busy1 - busy0) / max(1.0, total1 - total0), 3),
        "load_before": round(load0, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def run_ray(cfg, opts, questions, workers: int) -> dict:
    import ray

    from svpo_harness.pipelines.annotate.annotate_ray import RayWorkers, work_items

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=128 * 1024**2)  # fmt: skip
    pool = RayWorkers(dataclasses.replace(cfg, workers=workers, gpus_per_worker=0.0), True)
    pool.wait_started()
    assert len(pool.ready) == workers, "a worker did not start"
    with tempfile.TemporaryDirectory() as tmp:
        on_tree, files = writer(Path(tmp))
        items = work_items(questions, 1, set())
        actors = list(pool.ready)
        cpu0 = sum(i["cpu_s"] for i in ray.get([a.info.remote() for a in actors]))
        cpu1: list[float] = []

        def grow() -> None:
            pool.grow(items, opts, on_tree=on_tree, close=False)
            cpu1.append(sum(i["cpu_s"] for i in ray.get([a.info.remote() for a in actors])))

        result = timed(grow, len(questions))
        pool.close()
        result["workers_cpu_s"] = round(cpu1[0] - cpu0, 3)
        result["workers_cpu_per_wall"] = round(result["workers_cpu_s"] / result["wall_s"], 3)
        # what the workers would do with a free core each (other load on the machine does not
        # change the CPU a tree costs, only how much of it a worker gets per wall second)
        per_core = len(questions) / result["workers_cpu_s"]
        result["questions_per_s_one_core_each"] = round(workers * per_core, 4)
        for f in files:
            f.close()
        result["trees"] = sum(1 for _ in open(Path(tmp) / "trees.jsonl"))
    return result


def run_single(cfg, opts, questions) -> dict:
    import torch

    from svpo_harness.pipelines.annotate import PairRule, annotate_trees, grader, load_policy

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    policy = load_policy(cfg)
    grade = grader(cfg.grade_timeout)
    grade([("1", "1")])  # start the grading pool before timing
    with tempfile.TemporaryDirectory() as tmp:
        on_tree, files = writer(Path(tmp))
        result = timed(
            lambda: annotate_trees(
                questions, policy, opts, seed=cfg.seed, grade=grade,
                trees_in_flight=cfg.trees_in_flight, batch_rows=cfg.batch_size,
                pair_rule=PairRule(cfg.rule, cfg.min_q_gap, cfg.min_visits), on_tree=on_tree,
            ),
            len(questions),
        )  # fmt: skip
        for f in files:
            f.close()
    torch.set_num_threads(saved)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=24, help="questions")
    parser.add_argument("--simulations", type=int, default=16)
    parser.add_argument(
        "--trees-in-flight", type=int, default=4, help="trees one process (worker) grows at once"
    )
    parser.add_argument("--model", default=None, help="default: the shipped demo model")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from svpo_harness.core.mcts import MCTSOptions
    from svpo_harness.pipelines.annotate import AnnotateConfig, load_annotation_questions
    from svpo_harness.pipelines.demo import copy_shipped_demo_model

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(copy_shipped_demo_model(Path(tmp) / "demo"))
        cfg = AnnotateConfig(
            model=model,
            data="arith:train",
            out=tmp,
            simulations=args.simulations,
            children=3,
            temperature=1.0,
            min_visits=1,
            device="cpu",
            ray="local",
            trees_in_flight=args.trees_in_flight,
        )
        opts = MCTSOptions(simulations=args.simulations, children=3, temperature=1.0,
                           leaf_value="zero")  # fmt: skip
        questions, _ = load_annotation_questions("arith:train", limit=args.n)
        results = {"single_process_1_thread": run_single(cfg, opts, questions)}
        print("single process, 1 thread:", results["single_process_1_thread"], flush=True)
        for workers in (1, 2):
            results[f"ray_{workers}_workers"] = run_ray(cfg, opts, questions, workers)
            print(f"ray, {workers} worker(s):", results[f"ray_{workers}_workers"], flush=True)
    one, two = results["ray_1_workers"], results["ray_2_workers"]
    results["speedup_2_vs_1"] = round(two["questions_per_s"] / one["questions_per_s"], 3)
    results["settings"] = {"questions": args.n, "simulations": args.simulations, "children": 3,
                           "trees_in_flight": args.trees_in_flight,
                           "temperature": 1.0, "model": args.model or "shipped demo model",
                           "cores": os.cpu_count()}  # fmt: skip
    print(
        f"questions/s: 1 worker {one['questions_per_s']:.3f}, 2 workers "
        f"{two['questions_per_s']:.3f} ({results['speedup_2_vs_1']:.2f}x; target >= 1.7x); "
        f"driver CPU per question {one['driver_cpu_ms_per_question']:.1f} ms (1 worker), "
        f"{two['driver_cpu_ms_per_question']:.1f} ms (2 workers); single process on 1 thread "
        f"{results['single_process_1_thread']['questions_per_s']:.3f} questions/s; "
        f"workers had {one['workers_cpu_per_wall']:.2f} / {two['workers_cpu_per_wall']:.2f} cores; "
        f"with a free core each: {one['questions_per_s_one_core_each']:.3f} / "
        f"{two['questions_per_s_one_core_each']:.3f} questions/s "
        f"({two['questions_per_s_one_core_each'] / one['questions_per_s_one_core_each']:.2f}x)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
