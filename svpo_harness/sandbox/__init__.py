"""Run model-written Python where a hostile program cannot escape (docs/sandbox.md).

Runtime layer (below core; core never imports it, it is handed ``sandbox_runner``): no torch.
``run_python(code, timeout=5.0)`` runs one program in a warm sandbox worker; ``run_many(codes)``
runs many over a pool of them; ``sandbox_runner`` is ``run_many`` as tool steps' code runner.
"""

from .limits import SandboxLimits, SandboxResult
from .pool import (
    SandboxUnavailable,
    run_many,
    run_python,
    sandbox_mode,
    sandbox_runner,
    shutdown_pool,
)

__all__ = [
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "run_many",
    "run_python",
    "sandbox_mode",
    "sandbox_runner",
    "shutdown_pool",
]
