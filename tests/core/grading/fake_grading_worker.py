"""A grading worker for the pool tests: the real protocol, but some inputs hang or crash.

``pred == "__hang__"`` sleeps forever (stands in for unbounded big-integer arithmetic);
``pred == "__crash__"`` exits at once (stands in for an out-of-memory kill);
``pred == "__slow__"`` takes 3 s, then grades as equivalent (a slow but finite check).
"""

from __future__ import annotations

import os
import sys
import time
from multiprocessing.connection import Connection

from svpo_harness.grading.equiv import is_equiv


def main(read_fd: int, write_fd: int) -> None:
    rx = Connection(read_fd, writable=False)
    tx = Connection(write_fd, readable=False)
    tx.send_bytes(b"R")
    while True:
        chunk = rx.recv()
        if chunk is None:
            return
        for pred, gold in chunk:
            if pred == "__hang__":
                while True:
                    time.sleep(1)
            if pred == "__crash__":
                os._exit(3)
            if pred == "__slow__":
                time.sleep(3)
                tx.send_bytes(b"1")
                continue
            tx.send_bytes(b"1" if is_equiv(pred, gold) else b"0")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
