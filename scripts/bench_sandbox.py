"""Benchmark ``run_many`` against one plain ``subprocess.run([python, "-c", code])`` per program.

    nice -n 19 python scripts/bench_sandbox.py --n 1000

Both sides run the same ``--n`` short programs (a little arithmetic and a print each, the
size of a tool step) in the same process, one after the other: first the sandbox
(``run_many`` over ``--processes`` warm workers; pool start-up timed separately), then the
plain subprocesses, sequentially and on ``--processes`` threads (so both sides use as many
cores). It checks that both give the same output for every program and prints programs/s,
wall and CPU seconds (this process, its children and the workers' runs) for each, and the
ratios. Needs root (the sandbox refuses otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from svpo_harness.sandbox import run_many, sandbox_mode, shutdown_pool  # noqa: E402


def programs(n: int) -> list[str]:
    return [
        f"x = {i}\nprint(sum(k * k for k in range(x % 50)), x ** 3 % 97, round(x / 7, 4))"
        for i in range(n)
    ]


def cpu_s() -> float:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def worker_cpu_s() -> float:
    """CPU of the live sandbox workers: each namespace's PID 1 and the runs it has reaped."""
    from svpo_harness.sandbox import pool

    total = 0.0
    for w in pool._POOL.workers if pool._POOL else []:
        pid = w.proc.pid
        for inner in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            fields = Path(f"/proc/{inner}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def timed(fn):
    c0, t0 = cpu_s() + worker_cpu_s(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, cpu_s() + worker_cpu_s() - c0


def plain(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=min(os.cpu_count() or 1, 8))
    args = ap.parse_args()
    codes = programs(args.n)
    load_before = os.getloadavg()[0]
    n, p = args.n, args.processes

    _, start_wall, _ = timed(lambda: run_many(["pass"] * p, processes=p))
    mode = sandbox_mode()
    rows = {}
    res, wall, cpu = timed(lambda: run_many(codes, timeout=5.0, processes=p))
    assert all(r.error is None for r in res), [r for r in res if r.error][:3]
    rows[f"sandbox run_many ({p} workers)"] = (wall, cpu)
    seq, wall, cpu = timed(lambda: [plain(c) for c in codes])
    rows["subprocess.run, sequential"] = (wall, cpu)
    with ThreadPoolExecutor(p) as ex:
        par, wall, cpu = timed(lambda: list(ex.map(plain, codes)))
    rows[f"subprocess.run, {p} threads"] = (wall, cpu)
    assert [r.stdout for r in res] == seq == par, "outputs differ"
    shutdown_pool()

    load_after = os.getloadavg()[0]
    print(f"mode {mode}, {n} programs, {os.cpu_count()} CPUs, load {load_before:.2f} before, "
          f"{load_after:.2f} after; pool start {start_wall:.2f} s")  # fmt: skip
    print("| runner | programs/s | wall s | CPU s | CPU ms/program |")
    print("|---|---|---|---|---|")
    for name, (wall, cpu) in rows.items():
        print(f"| {name} | {n / wall:.0f} | {wall:.2f} | {cpu:.2f} | {1000 * cpu / n:.1f} |")
    base = rows[f"sandbox run_many ({p} workers)"][0]
    for name, (wall, _) in list(rows.items())[1:]:
        print(f"sandbox throughput / {name}: {wall / base:.1f}x")
    print(
        json.dumps({k: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for k, (w, c) in rows.items()})
    )


if __name__ == "__main__":
    main()
