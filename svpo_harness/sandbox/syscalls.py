"""Thin ctypes wrappers for the Linux calls the sandbox needs and Python 3.10/3.11 lacks.

``os.unshare`` arrived in 3.12 and ``mount``/``pivot_root``/``prctl`` are not in ``os`` at
all, so they go through libc. Every wrapper raises ``OSError`` with errno's message on
failure, never returns a status code to check.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# Namespace flags (linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags (linux/mount.h).
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

# Syscall numbers differ per architecture; only x86_64 is supported (seccomp.py has the
# same restriction), elsewhere the sandbox refuses to start.
_SYS_PIVOT_ROOT = {"x86_64": 155}


def supported_machine() -> bool:
    return platform.machine() in _SYS_PIVOT_ROOT


_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        _libc.mount.argtypes = [
            ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p,
        ]  # fmt: skip
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                                ctypes.c_ulong]  # fmt: skip
    return _libc


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def unshare(flags: int) -> None:
    _check(libc().unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    c_data = ctypes.c_char_p(data.encode()) if data else None
    ret = libc().mount(_b(source), _b(target), _b(fstype), flags, c_data)
    _check(ret, f"mount {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    _check(libc().umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    nr = _SYS_PIVOT_ROOT[platform.machine()]
    _check(libc().syscall(nr, _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0) -> None:
    _check(libc().prctl(option, arg2, 0, 0, 0), f"prctl({option})")


def prctl_ptr(option: int, arg2: int, ptr: ctypes.c_void_p | int) -> None:
    f = libc().prctl
    _check(f(option, arg2, ctypes.cast(ptr, ctypes.c_void_p).value or 0, 0, 0), f"prctl({option})")
