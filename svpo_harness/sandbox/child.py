"""The forked child that runs one program: limits, then the unprivileged user, then the code.

Order matters: rlimits are set while still root (hard = soft, so the program cannot raise
them), then groups/gid/uid drop (which also drops every capability), then no_new_privs and
the seccomp filter, and only then does untrusted code run. The child never returns: it
ends with ``os._exit``.
"""

from __future__ import annotations

import builtins
import io
import math
import os
import resource
import signal
import sys
import traceback

from . import rootfs, seccomp
from . import syscalls as sc
from .limits import SandboxLimits

_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": rootfs.WORK_DIR,
    "TMPDIR": rootfs.WORK_DIR,
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    # numerical libraries start one thread per core otherwise, and threads count as processes
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
FILENAME = "<sandbox>"


def _set_limits(limits: SandboxLimits, timeout: float) -> None:
    cpu = max(1, math.ceil(timeout))
    # CPU: SIGXCPU at the soft limit, SIGKILL one second later if that signal is ignored.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    for res, value in (
        (resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024),
        (resource.RLIMIT_FSIZE, limits.max_file_bytes),
        (resource.RLIMIT_NOFILE, limits.max_open_files),
        (resource.RLIMIT_NPROC, limits.max_processes),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_MEMLOCK, 0),
        (resource.RLIMIT_MSGQUEUE, 0),
        (resource.RLIMIT_RTPRIO, 0),
    ):
        resource.setrlimit(res, (value, value))


def _report(exc: BaseException) -> None:
    # Only the program's own frames: the sandbox's are no business of the model.
    te = traceback.TracebackException.from_exception(exc)
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if f.filename == FILENAME])
    sys.stderr.write("".join(te.format()))


def run(code: str, out_fd: int, err_fd: int, uid: int, limits: SandboxLimits, t: float) -> None:
    status = 1
    try:
        sc.prctl(sc.PR_SET_PDEATHSIG, 9)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        os.closerange(3, 1 << 16)  # nothing of the worker's stays reachable
        os.setsid()  # no controlling terminal
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the worker ignores it
        os.chdir(rootfs.WORK_DIR)
        os.umask(0o077)
        _set_limits(limits, t)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        seccomp.install()
        os.environ.clear()
        os.environ.update(_ENV)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8")
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
        sys.argv = [""]
        sys.path[:] = [p for p in sys.path if p and os.path.isdir(p)]
        for name in [m for m in sys.modules if m.startswith("svpo_harness")]:
            del sys.modules[name]
    except BaseException as exc:  # noqa: BLE001 - the setup failed: never run the code
        os.write(2, f"sandbox setup failed: {exc}\n".encode())
        os._exit(125)
    try:
        glb = {"__name__": "__main__", "__builtins__": builtins}
        exec(compile(code, FILENAME, "exec"), glb)
        status = 0
    except SystemExit as exc:
        c = exc.code
        status = c if isinstance(c, int) else (0 if c is None else 1)
        if not isinstance(c, int) and c is not None:
            print(c, file=sys.stderr)
    except BaseException as exc:  # noqa: BLE001 - the program's error is its result
        try:
            _report(exc)
        except BaseException:  # noqa: BLE001 - MemoryError while formatting, etc.
            os.write(2, f"{type(exc).__name__}\n".encode())
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - a full pipe or a closed fd: exit anyway
            pass
    os._exit(status if 0 <= status <= 255 else 1)
