"""``run_python`` / ``run_many``: a warm pool of sandbox workers (``worker.py``).

House style of ``grading/pool.py``, with which it shares ``runtime.worker_pool``: workers are
fresh interpreters started with ``subprocess`` (nothing of the caller's threads or
``__main__``), the pool is module-level,
created lazily, thread-safe, and a worker that misbehaves is killed and replaced while the
batch goes on. Workers start with a minimal environment, so the caller's variables never
reach a sandbox. Each pool slot has its own sandbox uid (``UID_BASE + slot``), so runs in
different workers cannot count against each other's process limit.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from multiprocessing.connection import wait
from pathlib import Path

from svpo_harness.runtime.worker_pool import PipeWorker, WorkerPool

from .limits import SandboxLimits, SandboxResult

# First sandbox uid/gid; slot i runs code as UID_BASE + i. Unused ids below 65534 (nobody),
# which is inside the uid range of most containers' user namespaces.
UID_BASE = int(os.environ.get("SVPO_SANDBOX_UID_BASE", "64000"))
MAX_WORKERS = 64


# Modules each worker imports before serving (comma-separated, e.g. "sympy,numpy"): every
# run is forked from the worker, so a program importing them finds them loaded (sympy's
# import alone costs about half a second per run otherwise).
def _net_mode() -> str:
    # auto: a network namespace, or the seccomp socket ban alone where one is refused;
    # seccomp: never ask for a network namespace (how the fallback mode is tested).
    mode = os.environ.get("SVPO_SANDBOX_NET", "auto")
    if mode not in ("auto", "seccomp"):
        raise SandboxUnavailable(f"SVPO_SANDBOX_NET: expected auto or seccomp, got {mode!r}")
    return mode


def _preload() -> list[str]:
    return [m.strip() for m in os.environ.get("SVPO_SANDBOX_PRELOAD", "").split(",") if m.strip()]


WORKER_START_TIMEOUT_S = 60.0
# Worker overhead on top of a run's own time limit before the pool gives up on the worker.
GRACE_S = 10.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot keep its promises here, so it refuses to run anything."""


def _worker_env() -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    import svpo_harness

    root = str(Path(svpo_harness.__file__).resolve().parents[1])
    if root == _PACKAGE_ROOT:
        env["PYTHONPATH"] = root  # a source checkout; harmless for an installed copy
    return env


class _Worker(PipeWorker):
    """One sandbox worker: its slot's uid, the mode it reported, the program it is on."""

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.uid = UID_BASE + slot
        args = [str(self.uid), _net_mode(), *_preload()]
        super().__init__("svpo_harness.sandbox.worker", args, env=_worker_env(), cwd="/")
        self.mode: str | None = None
        self.job: int | None = None


def _new_pool() -> WorkerPool[_Worker]:
    # Never shrunk: each slot keeps its uid, and a smaller call uses the first workers.
    return WorkerPool(_Worker, b"null", shrink=False)


_POOL: WorkerPool[_Worker] | None = None
_LOCK = threading.Lock()


def _check_host() -> None:
    # Refuse before starting anything: without root there is no uid to drop to and no
    # namespace to build, and a weaker sandbox is not offered (docs/sandbox.md).
    if sys.platform != "linux":
        raise SandboxUnavailable(f"svpo sandbox: needs Linux, this is {sys.platform}")
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            f"svpo sandbox: needs root (uid 0 with CAP_SYS_ADMIN), this process runs as uid "
            f"{os.geteuid()}; see docs/sandbox.md"
        )


def _get_pool(n: int) -> WorkerPool[_Worker]:
    global _POOL
    if _POOL is None or _POOL.pid != os.getpid():
        _POOL = _new_pool()  # a forked child must not drive its parent's workers
    _POOL.resize(n)
    return _POOL


def _fail(pool: WorkerPool[_Worker], why: str) -> SandboxUnavailable:
    pool.close()
    return SandboxUnavailable(f"svpo sandbox: {why}")


def _run(
    pool: WorkerPool[_Worker], codes: Sequence[str], timeout: float, limits: SandboxLimits
) -> list:
    results: list[SandboxResult | None] = [None] * len(codes)
    pending: deque[int] = deque(range(len(codes)))
    lim = limits.to_json()
    while True:
        for w in pool.workers:
            if w.mode is not None and w.job is None and pending:
                w.job = pending.popleft()
                w.deadline = time.monotonic() + timeout + GRACE_S
                w.tx.send_bytes(json.dumps({"code": codes[w.job], "timeout": timeout,
                                            "limits": lim}).encode())  # fmt: skip
        busy = [w for w in pool.workers if w.job is not None or w.mode is None]
        if not pending and all(w.job is None for w in pool.workers):
            return results
        deadlines = [w.deadline if w.mode else w.started + WORKER_START_TIMEOUT_S for w in busy]
        by_conn = {w.rx: w for w in busy}
        for conn in wait(list(by_conn), timeout=max(0.0, min(deadlines) - time.monotonic())):
            w = by_conn[conn]
            try:
                msg = json.loads(conn.recv_bytes())
            except (EOFError, OSError, ValueError):
                if w.mode is None:
                    raise _fail(pool, "a worker died while starting; see its stderr") from None
                results[w.job] = SandboxResult("", "sandbox worker died", False)
                w.job = None
                pool.replace(w)
                continue
            if "fatal" in msg:
                raise _fail(pool, msg["fatal"])
            if "ready" in msg:
                w.mode = msg["ready"]
            else:
                results[w.job] = SandboxResult(msg["stdout"], msg["error"], msg["timed_out"])
                w.job = None
        now = time.monotonic()
        for w in list(pool.workers):
            if w.job is not None and now > w.deadline:
                results[w.job] = SandboxResult("", f"timed out after {timeout:g} s", True)
                w.job = None
                pool.replace(w)
            elif w.mode is None and now > w.started + WORKER_START_TIMEOUT_S:
                raise _fail(pool, "a worker did not start in time")


def _default_processes() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def run_many(
    codes: Iterable[str],
    *,
    timeout: float = 5.0,
    limits: SandboxLimits | None = None,
    processes: int | None = None,
) -> list[SandboxResult]:
    """Run each program in the sandbox; one ``SandboxResult`` per program, in order.

    ``timeout`` is each program's wall-time limit in seconds (its CPU-time limit is the
    same, rounded up). ``processes`` sizes the pool (default: CPU count, at most 8); the
    pool persists until ``shutdown_pool()``. Raises ``SandboxUnavailable`` where the sandbox
    cannot keep its promises (see docs/sandbox.md), before running anything.
    """
    items = list(codes)
    for i, c in enumerate(items):
        if not isinstance(c, str):
            raise TypeError(f"run_many: program {i} is {type(c).__name__}, expected str")
    if not timeout > 0:
        raise ValueError(f"timeout: expected seconds > 0, got {timeout!r}")
    n = processes or _default_processes()
    if not 1 <= n <= MAX_WORKERS:
        raise ValueError(f"processes: expected 1..{MAX_WORKERS}, got {n}")
    with _LOCK:
        _check_host()
        pool = _get_pool(min(n, max(1, len(items))))
        if not items:
            return []
        try:
            return _run(pool, items, float(timeout), limits or SandboxLimits())
        except BaseException:
            # Interrupted (Ctrl-C, a SandboxUnavailable): runs in flight would answer into
            # the next call, so these workers go.
            pool.kill_all()
            raise


def sandbox_runner(codes: Sequence[str], timeout: float) -> list[tuple[str, str | None]]:
    """``run_many`` as the code runner of tool steps (``core.tool_policy.RunFn``): one
    (stdout, error or None) per program, in order. Nothing starts until it is first called."""
    return [(r.stdout, r.error) for r in run_many(list(codes), timeout=timeout)]


def run_python(
    code: str, *, timeout: float = 5.0, limits: SandboxLimits | None = None
) -> SandboxResult:
    """Run one program in the sandbox (a warm worker of the shared pool)."""
    return run_many([code], timeout=timeout, limits=limits, processes=1)[0]


def sandbox_mode() -> str:
    """The mode the workers run in (``namespaces`` or ``namespaces-no-netns``); starts one."""
    with _LOCK:
        _check_host()
        pool = _get_pool(1)
        w = pool.workers[0]
        while w.mode is None:
            if not w.rx.poll(WORKER_START_TIMEOUT_S):
                raise _fail(pool, "a worker did not start in time")
            msg = json.loads(w.rx.recv_bytes())
            if "fatal" in msg:
                raise _fail(pool, msg["fatal"])
            w.mode = msg["ready"]
        return w.mode


def shutdown_pool() -> None:
    """Stop the workers (also registered with ``atexit``)."""
    global _POOL
    with _LOCK:
        if _POOL is not None and _POOL.pid == os.getpid():
            _POOL.close()
        _POOL = None


atexit.register(shutdown_pool)
