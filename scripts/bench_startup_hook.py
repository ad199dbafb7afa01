"""Start-up cost of the lm-eval hook (`svpo_harness_lm_eval.pth`), as a ratio to a bare start.

Command (in a venv where the wheel is installed; see BENCHMARKS.md):
    python scripts/bench_startup_hook.py --runs 30

Measures, in the same run: `python -c pass` with the hook on and off (SVPO_LM_EVAL_PLUGIN=0
still imports the hook module, which then returns at once), and `python -X importtime` of the
hook module itself. Prints medians in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time


def _start(env: dict[str, str]) -> float:
    begin = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
    return time.perf_counter() - begin


def _importtime_us(env: dict[str, str]) -> int:
    """Cumulative import time of the hook module as `-X importtime` reports it (microseconds)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "pass"], env=env, capture_output=True, text=True
    ).stderr
    match = re.search(r"\|\s*(\d+)\s*\|\s*svpo_harness_lm_eval_hook\s*$", out, re.MULTILINE)
    if match is None:
        raise SystemExit("the hook is not installed in this interpreter's site-packages")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    on = {**os.environ, "SVPO_LM_EVAL_PLUGIN": "1"}
    off = {**os.environ, "SVPO_LM_EVAL_PLUGIN": "0"}
    hook_us = [_importtime_us(on) for _ in range(args.runs)]
    with_hook = [_start(on) for _ in range(args.runs)]
    switched_off = [_start(off) for _ in range(args.runs)]
    print(f"runs: {args.runs}")
    hook_ms = statistics.median(hook_us) / 1000
    print(f"hook module import (-X importtime, cumulative): median {hook_ms:.2f} ms")
    print(f"python -c pass, hook on : median {statistics.median(with_hook) * 1000:.1f} ms")
    print(f"python -c pass, hook off: median {statistics.median(switched_off) * 1000:.1f} ms")
    print(f"ratio on/off: {statistics.median(with_hook) / statistics.median(switched_off):.3f}")


if __name__ == "__main__":
    main()
