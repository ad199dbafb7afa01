"""The runtime layer: worker interpreters on pipes, the base of the grading and sandbox pools.

The lowest layer (CONTRIBUTING.md "Layout and layers"): it imports nothing else of
svpo_harness. The code sandbox (``svpo_harness.sandbox``) belongs to this layer too.

Public API: ``PipeWorker`` (one worker interpreter and its two pipes), ``WorkerPool`` (a list
of them, grown, refilled after a kill, stopped).
"""

from svpo_harness.runtime.worker_pool import PipeWorker, WorkerPool

__all__ = ["PipeWorker", "WorkerPool"]
