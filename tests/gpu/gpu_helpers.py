"""Helpers shared by the GPU tests: policies, timed searches, search comparisons, and CLI runs
with a probe that says how much CUDA memory the run took (so "it ran on the GPU" is measured)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from svpo_harness.core.search import RootState, SearchOptions, SearchResult, run_search
from svpo_harness.engines.backends.hf import HFStepPolicy

# The decodings compared and timed (method.md section 6 defaults: SBS(3,5), maj@5, T 0.6).
OPTIONS: dict[str, SearchOptions] = {
    "greedy": SearchOptions(),
    "sbs": SearchOptions(b1=3, b2=5),
    "maj": SearchOptions(n_samples=5),
}
PROBE_TAG = "svpo-gpu-check: max CUDA bytes"
# Runs the console script named first with the remaining arguments, exactly as its own file
# does, and prints the largest CUDA allocation of the process at exit.
PROBE = (
    "import atexit, runpy, sys, torch\n"
    "def said():\n"
    "    used = torch.cuda.max_memory_allocated() if torch.cuda.is_initialized() else 0\n"
    f"    print({PROBE_TAG!r}, used, file=sys.stderr, flush=True)\n"
    "atexit.register(said)\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def policy(path: Path, device: torch.device, dtype: str = "float32", **kw: Any) -> HFStepPolicy:
    return HFStepPolicy.from_checkpoint(path, device=str(device), dtype=dtype, **kw)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def search(
    pol: HFStepPolicy, decoding: str, questions: Sequence[str], seed: int = 0
) -> tuple[list[SearchResult], float]:
    """All questions searched together (one batched call per depth); wall seconds."""
    roots = [RootState(i, pol.encode_prompt(q)) for i, q in enumerate(questions)]
    sync(pol.device)
    start = time.perf_counter()
    results = run_search(decoding, roots, pol, OPTIONS[decoding], seed=seed)
    sync(pol.device)
    return results, time.perf_counter() - start


def compare(got: list[SearchResult], want: list[SearchResult], value_tol: float) -> float:
    """Same texts and the same tree, candidate by candidate (ids, status); values and log-prob
    sums within ``value_tol`` / 1e-3. Returns the largest value difference seen."""
    worst = 0.0
    for a, b in zip(got, want, strict=True):
        assert a.text == b.text, f"question {a.key}: {a.text!r} != {b.text!r}"
        assert a.step_token_ids == b.step_token_ids and len(a.tree) == len(b.tree)
        for ca, cb in zip(a.tree, b.tree, strict=True):
            assert ca.token_ids == cb.token_ids and ca.status == cb.status
            assert (ca.value is None) == (cb.value is None)
            if ca.value is not None:
                worst = max(worst, abs(ca.value - cb.value))
                assert ca.value == pytest.approx(cb.value, abs=value_tol)
            assert ca.logprob_sum == pytest.approx(cb.logprob_sum, abs=1e-3)
    return worst


def console_script(name: str) -> str:
    """The console script installed beside this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name}: no console script beside {sys.executable} or on PATH")
    return found


def run_probed(script: str, args: Sequence[str], cwd: Path, timeout: float) -> tuple[str, int]:
    """Run a console script (``lm_eval``, ``svpo``) through PROBE from ``cwd`` (not the
    checkout: the installed package is what runs); (stdout, largest CUDA allocation)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [sys.executable, "-c", PROBE, console_script(script), *args]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{script} {' '.join(args)}:\n{done.stderr[-3000:]}"
    probe = [line for line in done.stderr.splitlines() if line.startswith(PROBE_TAG)]
    assert probe, done.stderr[-2000:]
    return done.stdout, int(probe[-1].split()[-1])


def last_json_line(text: str) -> dict[str, Any]:
    return json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
