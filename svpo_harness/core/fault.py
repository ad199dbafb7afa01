"""Fault injection for kill-and-resume tests: exit hard at a known point, not after a poll.

``SVPO_FAULT_EXIT_AT=<point>:<n>`` makes the process call ``os._exit(FAULT_EXIT_CODE)`` when
``point`` reaches ``n``; ``os._exit`` skips ``finally`` blocks, ``atexit`` and buffered writes,
as ``kill -9`` does. Points:

- ``train:<step>``: the training loop, right after optimizer step ``step`` and the resumable
  checkpoint due at it (``--save-every``), before anything else happens at that step;
- ``annotate:<trees>``: ``svpo annotate``, right after its ``trees``-th tree line of this
  session is written (its pairs first), before stats.json is updated.

Unset (always, outside tests) it costs one environment look-up per call.
"""

from __future__ import annotations

import os

FAULT_ENV = "SVPO_FAULT_EXIT_AT"
FAULT_EXIT_CODE = 86  # what a test sees as the killed process's exit status


def fault_point(point: str, n: int) -> None:
    """Exit hard now if ``SVPO_FAULT_EXIT_AT`` names ``point:n``."""
    spec = os.environ.get(FAULT_ENV)
    if spec and spec.partition(":")[0] == point and spec.partition(":")[2].strip() == str(n):
        os._exit(FAULT_EXIT_CODE)


__all__ = ["FAULT_ENV", "FAULT_EXIT_CODE", "fault_point"]
