"""Worker interpreters on pipes: what the grading pool and the sandbox pool have in common.

A worker is a fresh interpreter, ``python -m MODULE READ_FD WRITE_FD ARGS...`` started with
``subprocess``: the isolation of multiprocessing's "spawn" (nothing of the caller's threads, torch
or tokenizers, is copied) without re-running the caller's ``__main__``, so scripts need no
``if __name__ == "__main__"`` guard. The parent talks to it over two pipes
(``multiprocessing.connection.Connection``; ``wait`` multiplexes many workers).

``WorkerPool`` keeps a list of workers, grows it to a size, puts a fresh worker in the slot of one
that was killed (a check past its limit, a crashed run), and stops them all: a stop message
first, then a kill for any still alive after a second. What a worker is sent and answers, and
how a batch is dispatched, stay with each pool (``grading/pool.py``, ``sandbox/pool.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Generic, TypeVar

STOP_WAIT_S = 1.0  # how long close() waits for all workers to leave before killing them


class PipeWorker:
    """One worker process (``python -m module``) and the parent's two pipe ends."""

    def __init__(
        self,
        module: str,
        args: Sequence[str],
        *,
        env: dict[str, str],
        cwd: str | None = None,
    ) -> None:
        p_read, c_write = os.pipe()
        c_read, p_write = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, str(c_read), str(c_write), *args],
            pass_fds=(c_read, c_write), stdin=subprocess.DEVNULL, env=env, close_fds=True,
            cwd=cwd,
        )  # fmt: skip
        os.close(c_read)
        os.close(c_write)
        self.rx = Connection(p_read, writable=False)
        self.tx = Connection(p_write, readable=False)
        self.started = time.monotonic()
        self.deadline = 0.0  # when the work in flight must have answered

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.rx.close()
        self.tx.close()


W = TypeVar("W", bound=PipeWorker)


class WorkerPool(Generic[W]):
    """Workers made by ``make(slot)``; ``stop`` is the message that asks one to leave."""

    def __init__(self, make: Callable[[int], W], stop: bytes, *, shrink: bool = True) -> None:
        self.workers: list[W] = []
        self.pid = os.getpid()  # a forked child must not drive its parent's workers
        self._make = make
        self._stop = stop
        self._shrink = shrink

    def resize(self, n: int) -> None:
        """Grow to ``n`` workers; shrink to ``n`` too unless made with ``shrink=False``."""
        while len(self.workers) < n:
            self.workers.append(self._make(len(self.workers)))
        while self._shrink and len(self.workers) > n:
            self.workers.pop().kill()

    def replace(self, w: W) -> None:
        """Kill ``w`` and start a fresh worker in its slot."""
        w.kill()
        slot = self.workers.index(w)
        self.workers[slot] = self._make(slot)

    def kill_all(self) -> None:
        for w in self.workers:
            w.kill()
        self.workers = []

    def close(self) -> None:
        """Ask every worker to leave, wait up to ``STOP_WAIT_S`` in all, kill the rest."""
        for w in self.workers:
            try:
                w.tx.send_bytes(self._stop)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + STOP_WAIT_S
        for w in self.workers:
            try:
                w.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self.kill_all()
