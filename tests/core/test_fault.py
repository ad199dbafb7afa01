"""core.fault: the exit-at-a-known-point hook of the kill-and-resume tests, in real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from svpo_harness.core.fault import FAULT_ENV, FAULT_EXIT_CODE, FAULT_ONCE_ENV

# a process that passes points p:1, p:2, p:3 and prints each one it survives
PASS_POINTS = (
    "from svpo_harness.core.fault import fault_point\n"
    "for n in (1, 2, 3):\n"
    "    fault_point('p', n)\n"
    "    print(n, flush=True)\n"
)


def run(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (FAULT_ENV, FAULT_ONCE_ENV)}
    return subprocess.run([sys.executable, "-c", PASS_POINTS], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def test_unset_or_another_point_exits_nowhere():
    assert run().stdout.split() == ["1", "2", "3"]
    assert run(**{FAULT_ENV: "q:2"}).returncode == 0


def test_the_named_point_exits_hard_there():
    done = run(**{FAULT_ENV: "p:2"})
    assert done.returncode == FAULT_EXIT_CODE
    assert done.stdout.split() == ["1"]  # it got past 1, not past 2


def test_once_lets_only_the_first_process_exit(tmp_path: Path):
    marker = tmp_path / "once"
    first = run(**{FAULT_ENV: "p:2", FAULT_ONCE_ENV: str(marker)})
    second = run(**{FAULT_ENV: "p:2", FAULT_ONCE_ENV: str(marker)})
    assert first.returncode == FAULT_EXIT_CODE and marker.exists()
    assert second.returncode == 0 and second.stdout.split() == ["1", "2", "3"]
