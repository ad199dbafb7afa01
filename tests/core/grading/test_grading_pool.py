"""grade_many: order, persistence, hard time limit by killing workers, replacement."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import svpo_harness.grading.pool as pool_mod
from svpo_harness.grading import grade_many, shutdown_pool


def test_results_in_order_and_pool_reused() -> None:
    pairs = [("1/2", "0.5"), ("2", "3"), ("\\frac{3}{4}", "0.75"), ("x", "y")] * 50
    assert grade_many(pairs, processes=2) == [True, False, True, False] * 50
    pids = [w.proc.pid for w in pool_mod._POOL.workers]
    assert grade_many([("1", "1")], processes=2) == [True]
    assert [w.proc.pid for w in pool_mod._POOL.workers] == pids  # same workers, no restart


def test_in_process_mode_and_empty() -> None:
    assert grade_many([("1/2", "0.5"), ("1", "2")], processes=0) == [True, False]
    assert grade_many([], processes=2) == []


@pytest.fixture()
def fake_pool(monkeypatch: pytest.MonkeyPatch):
    """Pool whose workers run fake_grading_worker (hangs/crashes on request)."""
    shutdown_pool()
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(pool_mod, "WORKER_MODULE", "fake_grading_worker")
    yield
    shutdown_pool()


def test_hung_check_is_killed_and_pool_goes_on(fake_pool: None) -> None:
    pairs = [("1", "1"), ("__hang__", "1"), ("2", "2"), ("__hang__", "1"), ("3", "4")] * 3
    t = time.perf_counter()
    got = grade_many(pairs, timeout=1.0, processes=2)
    elapsed = time.perf_counter() - t
    assert got == [True, False, True, False, False] * 3
    # a hang guard, not a speed test: ~4 s here (6 hangs of 1 s on 2 workers plus restarts);
    # an unbounded check would never return
    assert elapsed < 120
    alive = [w for w in pool_mod._POOL.workers if w.proc.poll() is None]
    assert len(alive) == 2
    assert grade_many([("1/2", "0.5")], timeout=1.0, processes=2) == [True]


def test_the_time_limit_given_is_the_one_applied(fake_pool: None) -> None:
    """A 3 s check: killed (False) under a 1 s limit, graded (True) under a 30 s one."""
    assert grade_many([("__slow__", "1"), ("2", "2")], timeout=1.0, processes=1) == [False, True]
    assert grade_many([("__slow__", "1"), ("2", "2")], timeout=30.0, processes=1) == [True, True]


def test_crashed_worker_is_replaced(fake_pool: None) -> None:
    got = grade_many([("1", "1"), ("__crash__", "1"), ("5", "5")], timeout=5.0, processes=1)
    assert got == [True, False, True]
    assert grade_many([("1/2", "0.5")], processes=1) == [True]


def test_resize() -> None:
    grade_many([("1", "1")], processes=1)
    assert len(pool_mod._POOL.workers) == 1
    grade_many([("1", "1")], processes=2)
    assert len(pool_mod._POOL.workers) == 2
