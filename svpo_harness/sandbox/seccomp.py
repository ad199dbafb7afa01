"""A seccomp-BPF filter for sandboxed code (x86_64).

It refuses ``socket(2)`` (so no network connection can even start, loopback included; this is
what keeps the network promise when a network namespace is refused), the calls that create or
enter namespaces or change mounts, ``ptrace`` and friends, and kernel-facing calls a Python
program has no use for. ``clone3`` gets ENOSYS so that glibc falls back to ``clone``, whose
flags (unlike clone3's, which live in memory) a filter can read. Calls from another ABI
(x32, i386) end the process.
"""

from __future__ import annotations

import ctypes
import errno
import struct

from . import syscalls

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000

_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_RET_ALLOW = 0x7FFF0000

# BPF opcodes (linux/filter.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

# x86_64 numbers (arch/x86/entry/syscalls/syscall_64.tbl) refused with EPERM.
DENIED = {
    "socket": 41, "ptrace": 101, "chroot": 161, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "sethostname": 170, "setdomainname": 171,
    "init_module": 175, "delete_module": 176, "quotactl": 179, "pivot_root": 155,
    "acct": 163, "kexec_load": 246, "add_key": 248, "request_key": 249, "keyctl": 250,
    "unshare": 272, "perf_event_open": 298, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "finit_module": 313, "bpf": 321, "userfaultfd": 323,
    "kexec_file_load": 320, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
}  # fmt: skip
SYS_CLONE = 56
SYS_CLONE3 = 435
# Namespace bits clone(2) would accept (CLONE_NEWTIME shares a bit with the exit signal).
_CLONE_NS_MASK = (
    syscalls.CLONE_NEWNS | syscalls.CLONE_NEWCGROUP | syscalls.CLONE_NEWUTS
    | syscalls.CLONE_NEWIPC | syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWPID
    | syscalls.CLONE_NEWNET
)  # fmt: skip


def _ins(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build_filter() -> bytes:
    """The filter program as packed ``struct sock_filter`` entries."""
    prog = [
        _ins(_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        _ins(_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        _ins(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _ins(_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        _ins(_JGE_K, 0, 1, X32_SYSCALL_BIT),
        _ins(_RET_K, 0, 0, _RET_KILL_PROCESS),
    ]
    for nr in sorted(DENIED.values()):
        prog += [_ins(_JEQ_K, 0, 1, nr), _ins(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM)]
    prog += [_ins(_JEQ_K, 0, 1, SYS_CLONE3), _ins(_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS)]
    prog += [
        _ins(_JEQ_K, 0, 4, SYS_CLONE),
        _ins(_LD_W_ABS, 0, 0, 16),  # low 32 bits of args[0] (little endian): the flags
        _ins(_JSET_K, 0, 1, _CLONE_NS_MASK),
        _ins(_RET_K, 0, 0, _RET_ERRNO | errno.EPERM),
        _ins(_RET_K, 0, 0, _RET_ALLOW),
        _ins(_RET_K, 0, 0, _RET_ALLOW),
    ]
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_PROGRAM = build_filter()


def install() -> None:
    """Set no_new_privs and load the filter into this process (inherited by its children)."""
    buf = ctypes.create_string_buffer(_PROGRAM, len(_PROGRAM))
    fprog = _SockFprog(len(_PROGRAM) // 8, ctypes.cast(buf, ctypes.c_void_p))
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    syscalls.prctl_ptr(syscalls.PR_SET_SECCOMP, syscalls.SECCOMP_MODE_FILTER, ctypes.pointer(fprog))
