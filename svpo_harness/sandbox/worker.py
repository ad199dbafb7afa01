"""Sandbox worker: ``python -m svpo_harness.sandbox.worker READ_FD WRITE_FD UID NET [MODULE...]``.

Started by ``pool.py`` as root. It unshares mount, PID, IPC, UTS and network namespaces (the
network one unless ``NET`` is ``seccomp`` or the kernel refuses it: the seccomp socket ban
then keeps the network promise alone) and forks: the child becomes PID 1 of the new PID
namespace, imports the MODULEs (``SVPO_SANDBOX_PRELOAD``), builds the read-only root
(``rootfs.py``) and serves runs; the first process only
waits for it. Being PID 1 means
that no program can signal the worker (the kernel drops signals to a namespace's init from
inside it), that every orphan is re-parented to it, and that ``kill(-1)`` after a run reaches
every process the run left behind, however it forked or ``setsid``-ed.

Messages are JSON: requests ``{"code", "timeout", "limits"}``, answers ``{"stdout",
"error", "timed_out"}``; ``{"ready": MODE}`` or ``{"fatal": why}`` once at start.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
from multiprocessing.connection import Connection

from . import child, rootfs
from . import syscalls as sc
from .limits import SandboxLimits

_NS = sc.CLONE_NEWNS | sc.CLONE_NEWPID | sc.CLONE_NEWIPC | sc.CLONE_NEWUTS
_KILLED_BY = {signal.SIGXCPU: "CPU time limit exceeded", signal.SIGXFSZ: "file size limit exceeded"}


def _collect(pid: int, out_r: int, err_r: int, timeout: float, cap: int) -> tuple:
    """Read the run's output until it exits, times out or prints too much."""
    pidfd = os.pidfd_open(pid)
    deadline = time.monotonic() + timeout
    bufs = {out_r: bytearray(), err_r: bytearray()}
    open_fds = [out_r, err_r]
    why: str | None = None
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            why = f"timed out after {timeout:g} s"
            break
        ready, _, _ = select.select([*open_fds, pidfd], [], [], left)
        for fd in ready:
            if fd == pidfd:
                continue
            data = os.read(fd, 65536)
            if data:
                bufs[fd] += data
            else:
                open_fds.remove(fd)
        if len(bufs[out_r]) + len(bufs[err_r]) > cap:
            why = f"output limit exceeded (more than {cap} bytes)"
            break
        if pidfd in ready and not open_fds:
            break
        if pidfd in ready:
            # Exited, but something it left behind still holds the pipes: that is killed
            # below; what was already written is read without waiting.
            _drain(open_fds, bufs, cap)
            break
    os.close(pidfd)
    return bufs[out_r], bufs[err_r], why


def _drain(fds: list[int], bufs: dict[int, bytearray], cap: int) -> None:
    for fd in fds:
        os.set_blocking(fd, False)
        try:
            while len(bufs[fd]) <= cap and (data := os.read(fd, 65536)):
                bufs[fd] += data
        except BlockingIOError:
            pass


def _kill_all(pid: int) -> int:
    """SIGKILL every process in this PID namespace but the worker; reap them; the run's status.

    As PID 1 the worker is the ancestor of every process in its namespace, so once it has no
    children left (ECHILD) nothing of the run exists any more. The kill is repeated after
    each reaped process in case one was still being forked during the previous one.
    """
    status = 0
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p, st = os.waitpid(-1, 0)
        except ChildProcessError:
            return status
        if p == pid:
            status = st


def _error(status: int, stderr: bytes, why: str | None) -> str | None:
    if why is not None:
        return why
    tail = stderr.decode("utf-8", "replace").strip()[-2000:]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = _KILLED_BY.get(sig) or f"killed by signal {signal.Signals(sig).name}"
        return f"{tail}\n{name}".strip() if tail else name
    code = os.WEXITSTATUS(status)
    if code == 0:
        return None
    return tail or f"exit status {code}"


def run_one(code: str, timeout: float, limits: SandboxLimits, uid: int) -> dict:
    rootfs.mount_work_dir(uid, uid, limits.disk_bytes, limits.disk_inodes)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        child.run(code, out_w, err_w, uid, limits, timeout)
    os.close(out_w)
    os.close(err_w)
    try:
        out, err, why = _collect(pid, out_r, err_r, timeout, limits.max_output_bytes)
    finally:
        status = _kill_all(pid)
        os.close(out_r)
        os.close(err_r)
        rootfs.unmount_work_dir()
    stdout = bytes(out[: limits.max_output_bytes]).decode("utf-8", "replace")
    timed_out = why is not None and why.startswith("timed out")
    return {"stdout": stdout, "error": _error(status, bytes(err), why), "timed_out": timed_out}


def serve(rx: Connection, tx: Connection, uid: int, mode: str, preload: list[str]) -> None:
    try:
        for name in preload:  # forked runs share these, already imported
            __import__(name)
        rootfs.build(uid, uid)
    except (OSError, ImportError) as exc:
        why = f"cannot preload or build the sandbox root: {type(exc).__name__}: {exc}"
        tx.send_bytes(json.dumps({"fatal": why}).encode())
        return
    tx.send_bytes(json.dumps({"ready": mode}).encode())
    while True:
        try:
            req = json.loads(rx.recv_bytes())
        except (EOFError, OSError):
            return
        if req is None:
            return
        limits = SandboxLimits(**req["limits"])
        tx.send_bytes(json.dumps(run_one(req["code"], req["timeout"], limits, uid)).encode())


def main(read_fd: int, write_fd: int, uid: int, net: str, preload: list[str]) -> None:
    rx = Connection(read_fd, writable=False)
    tx = Connection(write_fd, readable=False)

    def fatal(why: str) -> None:
        tx.send_bytes(json.dumps({"fatal": why}).encode())
        sys.exit(1)

    if not sc.supported_machine():
        fatal("the sandbox supports Linux x86_64 only (seccomp filter, syscall numbers)")
    if os.geteuid() != 0:
        fatal(f"the sandbox needs root (running as uid {os.geteuid()}); see docs/sandbox.md")
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError) as exc:
        fatal(f"the sandbox needs pidfd_open (Linux 5.3+): {exc}")
    # Ctrl-C in the caller's terminal is the caller's business: the pool stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if net == "seccomp":
            raise OSError("network namespace not asked for")
        sc.unshare(_NS | sc.CLONE_NEWNET)
        mode = "namespaces"
    except OSError:
        try:  # seccomp's socket() ban alone keeps the network promise
            sc.unshare(_NS)
            mode = "namespaces-no-netns"
        except OSError as exc:
            fatal(f"Linux namespaces refused ({exc}); see docs/sandbox.md")
    pid = os.fork()
    if pid:
        rx.close()
        tx.close()
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)  # the pool kills the first process
    serve(rx, tx, uid, mode, preload)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:])
