"""``grade_many``: a persistent pool of grading worker processes with a hard per-check limit.

Why processes: Python's big-integer arithmetic (a ``9^{9^9}`` that slipped past the
pre-checks) cannot be interrupted by a signal or a thread, so a check that runs past its
limit has its worker killed (method.md section 7). The pool is module-level, created lazily
and reused across calls; killed or crashed workers are replaced and the batch goes on.

Workers are fresh interpreters (``python -m svpo_harness.grading.worker``, started and
replaced by ``runtime.worker_pool``, which the sandbox's pool shares). Each worker imports sympy
once, then grades chunks of pairs, answering one byte per pair so the parent always knows which
pair a killed worker was on.
"""

from __future__ import annotations

import atexit
import os
import pickle
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from svpo_harness.runtime.worker_pool import PipeWorker, WorkerPool

from .answer import answer_text

# Address-space cap per worker (bytes): a hostile answer hits MemoryError, not the host's OOM.
WORKER_MEMORY_BYTES = 4 * 1024**3
# A worker that has not imported sympy and said "ready" within this many seconds is broken.
WORKER_START_TIMEOUT_S = 120.0
# Most pairs sent to a worker at once: chunks amortise pipe round trips on big batches.
MAX_CHUNK = 32
# Module run as a worker (``python -m``); tests swap in a fake that can hang on purpose.
WORKER_MODULE = "svpo_harness.grading.worker"
# Where this copy of svpo_harness lives: workers must import the same copy as the parent.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def _site_dirs() -> set[str]:
    import site

    dirs = list(getattr(site, "getsitepackages", lambda: [])())
    dirs.append(site.getusersitepackages())
    return {str(Path(d).resolve()) for d in dirs}


class _Worker(PipeWorker):
    """One grading worker and the chunk of pairs it is on."""

    def __init__(self, slot: int = 0) -> None:
        env = dict(os.environ)
        if _PACKAGE_ROOT not in _site_dirs():
            # A source checkout: point the worker at it. (Never prepend site-packages itself:
            # it would shadow the standard library.)
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")])
            )
        super().__init__(WORKER_MODULE, [str(WORKER_MEMORY_BYTES)], env=env)
        self.ready = False
        self.chunk: list[int] = []  # indices of the pairs in flight
        self.pos = 0  # verdicts received for this chunk

    @property
    def busy(self) -> bool:
        return self.pos < len(self.chunk)


def _new_pool() -> WorkerPool[_Worker]:
    return WorkerPool(_Worker, pickle.dumps(None))  # the worker leaves on None


_POOL: WorkerPool[_Worker] | None = None
_LOCK = threading.Lock()


def _default_processes() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def grade_many(
    pairs: Iterable[tuple[Any, Any]], timeout: float = 5.0, processes: int | None = None
) -> list[bool]:
    """Grade ``(pred, gold)`` pairs with ``is_equiv``; one bool per pair, in order.

    Each side is what ``is_equiv`` accepts: a string, a number, an ``ExtractedAnswer`` or
    None (False); a non-answer raises ``TypeError`` before any work starts.

    Each check gets ``timeout`` seconds of a worker's time; past it the worker is killed, the
    pair counts False and a fresh worker takes its place. ``processes`` sets the pool size
    (default: CPU count, at most 8); ``processes=0`` grades in this process without a hard
    limit (pre-checks only). Thread-safe; the pool persists until ``shutdown_pool()``.
    """
    items = [(answer_text(p), answer_text(g)) for p, g in pairs]
    if processes == 0:
        from .equiv import is_equiv

        return [is_equiv(p, g) for p, g in items]
    if not items:
        return []
    with _LOCK:
        pool = _get_pool(processes or _default_processes())
        return _run(pool, items, float(timeout))


def _get_pool(n: int) -> WorkerPool[_Worker]:
    global _POOL
    if _POOL is None or _POOL.pid != os.getpid():
        _POOL = _new_pool()  # a forked child must not drive its parent's workers
    _POOL.resize(n)
    return _POOL


def _run(pool: WorkerPool[_Worker], items: Sequence[tuple[Any, Any]], timeout: float) -> list[bool]:
    results = [False] * len(items)
    pending: deque[int] = deque(range(len(items)))
    chunk_size = max(1, min(MAX_CHUNK, len(items) // (4 * len(pool.workers))))

    def dispatch(w: _Worker) -> None:
        take = min(chunk_size, len(pending))
        w.chunk = [pending.popleft() for _ in range(take)]
        w.pos = 0
        w.deadline = time.monotonic() + timeout
        w.tx.send([items[i] for i in w.chunk])

    def fail_current(w: _Worker) -> None:
        # The pair being checked counts False; the rest of its chunk goes back in the queue.
        if w.busy:
            results[w.chunk[w.pos]] = False
            pending.extendleft(reversed(w.chunk[w.pos + 1 :]))
        w.chunk, w.pos = [], 0
        pool.replace(w)

    while True:
        for w in pool.workers:
            if w.ready and not w.busy and pending:
                dispatch(w)
        if not pending and not any(w.busy for w in pool.workers):
            return results
        active = [w for w in pool.workers if w.busy or not w.ready]
        deadlines = [w.deadline if w.ready else w.started + WORKER_START_TIMEOUT_S for w in active]
        by_conn = {w.rx: w for w in active}
        for conn in wait(list(by_conn), timeout=max(0.0, min(deadlines) - time.monotonic())):
            w = by_conn[conn]
            try:
                msg = conn.recv_bytes(16)
            except (EOFError, OSError):
                if not w.ready:
                    pool.close()
                    raise RuntimeError(
                        "grading worker died while starting; see its stderr"
                    ) from None
                fail_current(w)  # crashed mid-check (e.g. killed for memory)
                continue
            if msg == b"R":
                w.ready = True
            else:
                results[w.chunk[w.pos]] = msg == b"1"
                w.pos += 1
                w.deadline = time.monotonic() + timeout
        now = time.monotonic()
        for w in list(pool.workers):
            if w.busy and now > w.deadline:
                fail_current(w)
            elif not w.ready and now > w.started + WORKER_START_TIMEOUT_S:
                pool.close()
                raise RuntimeError("grading worker did not start in time")


def shutdown_pool() -> None:
    """Stop the worker processes (also registered with ``atexit``)."""
    global _POOL
    with _LOCK:
        if _POOL is not None and _POOL.pid == os.getpid():
            _POOL.close()
        _POOL = None


atexit.register(shutdown_pool)
