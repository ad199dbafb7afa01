"""Fault injection for kill-and-resume tests: exit hard at a known point, not after a poll.

``SVPO_FAULT_EXIT_AT=<point>:<n>`` makes the process call ``os._exit(FAULT_EXIT_CODE)`` when
``point`` reaches ``n``; ``os._exit`` skips ``finally`` blocks, ``atexit`` and buffered writes,
as ``kill -9`` does. Points:

- ``train:<step>``: the training loop, right after optimizer step ``step`` and the resumable
  checkpoint due at it (``--save-every``), before anything else happens at that step;
- ``annotate:<trees>``: ``svpo annotate``, right after its ``trees``-th tree line of this
  session is written (its pairs first), before stats.json is updated;
- ``ray-worker:<trees>``: an ``svpo annotate --ray`` worker (a Ray actor), right after it grew
  its ``trees``-th tree, before the batch goes back to the driver (the driver hands both
  variables on to its actors).

``SVPO_FAULT_ONCE=<file>`` as well: only the first process to reach the point exits (it creates
the file; the others see it and go on), e.g. one of two Ray workers, whichever grows first.

Unset (always, outside tests) it costs one environment look-up per call.
"""

from __future__ import annotations

import os

FAULT_ENV = "SVPO_FAULT_EXIT_AT"
FAULT_ONCE_ENV = "SVPO_FAULT_ONCE"
FAULT_EXIT_CODE = 86  # what a test sees as the killed process's exit status


def fault_point(point: str, n: int) -> None:
    """Exit hard now if ``SVPO_FAULT_EXIT_AT`` names ``point:n`` (and, with ``SVPO_FAULT_ONCE``,
    no other process has exited there before)."""
    spec = os.environ.get(FAULT_ENV)
    if spec and spec.partition(":")[0] == point and spec.partition(":")[2].strip() == str(n):
        once = os.environ.get(FAULT_ONCE_ENV)
        if once:
            try:  # O_EXCL: exactly one process creates the file
                os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
        os._exit(FAULT_EXIT_CODE)


def fault_env() -> dict[str, str]:
    """The fault variables set in this process, for processes it starts that do not inherit its
    environment (Ray actors)."""
    return {k: os.environ[k] for k in (FAULT_ENV, FAULT_ONCE_ENV) if os.environ.get(k)}


__all__ = ["FAULT_ENV", "FAULT_EXIT_CODE", "FAULT_ONCE_ENV", "fault_env", "fault_point"]
