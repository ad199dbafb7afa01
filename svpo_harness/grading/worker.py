"""Grading worker process: ``python -m svpo_harness.grading.worker READ_FD WRITE_FD MEM``.

Started by ``pool.py`` as a fresh interpreter (``subprocess``, not ``multiprocessing``), so it
never re-imports the caller's ``__main__`` script and inherits none of its threads. It reads
lists of ``(pred, gold)`` from one pipe and writes one verdict byte per pair (``1``/``0``;
``R`` once ready) to the other, so the parent never unpickles anything a worker wrote. The
parent kills it when a verdict is late.
"""

from __future__ import annotations

import sys
from multiprocessing.connection import Connection


def main(read_fd: int, write_fd: int, memory_bytes: int) -> None:
    """Serve grading requests until the parent sends None or closes the pipe."""
    if memory_bytes > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
        except (ImportError, ValueError, OSError):
            pass  # not on this platform: the time limit still applies
    from svpo_harness.grading.equiv import is_equiv

    rx = Connection(read_fd, writable=False)
    tx = Connection(write_fd, readable=False)
    is_equiv("\\frac{1}{2}", "0.5")  # warm sympy before reporting ready
    tx.send_bytes(b"R")
    while True:
        try:
            chunk = rx.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        for pred, gold in chunk:
            tx.send_bytes(b"1" if is_equiv(pred, gold) else b"0")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
