"""The file system a sandboxed program sees: a read-only root built from an allowlist.

Run by the worker (root in its own mount namespace) once at start. The new root is a tmpfs
holding read-only bind mounts of the system directories and the Python installation, a
generated ``/etc`` (passwd/group with the sandbox user, the dynamic loader's cache), a few
``/dev`` nodes, a fresh ``/proc`` (of the worker's PID namespace) and an empty
``/sandbox``, on which each run gets its own size-limited tmpfs. Everything else (home
folders, the caller's repository, ``/tmp``, ``/run``, sockets) simply does not exist there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import syscalls as sc

WORK_DIR = "/sandbox"
_SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
_DEVICES = ["null", "zero", "full", "random", "urandom"]
_ETC_COPIES = ["ld.so.cache", "ld.so.conf", "localtime"]
_RO = sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV


def python_dirs() -> list[str]:
    """The Python installation (venv and base) the sandboxed code imports from."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return sorted({str(Path(d).resolve()) for d in dirs} | dirs)


def _covered(path: str, by: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in by)


def _bind_ro(src_fd: int, target: str, device: bool) -> None:
    # The source is an O_PATH descriptor opened before /tmp was covered, so a source under
    # the mount point still resolves. Device nodes need their mount without nodev.
    sc.mount(f"/proc/self/fd/{src_fd}", target, None, sc.MS_BIND)
    flags = (_RO & ~sc.MS_NODEV) if device else _RO
    sc.mount(None, target, None, sc.MS_REMOUNT | sc.MS_BIND | flags)


def build(uid: int, gid: int) -> None:
    """Make this mount namespace's root the sandbox root; needs CAP_SYS_ADMIN here."""
    sc.mount(None, "/", None, sc.MS_REC | sc.MS_PRIVATE)  # nothing propagates to the host
    binds: list[tuple[int, str, bool]] = []  # (O_PATH fd, target, is_dir)
    links: list[tuple[str, str]] = []
    done: list[str] = []
    for d in [*_SYSTEM_DIRS, *python_dirs()]:
        if _covered(d, done) or not os.path.lexists(d):
            continue
        if os.path.islink(d) and d in _SYSTEM_DIRS:
            links.append((os.readlink(d), d))  # merged /usr: /bin -> usr/bin
            continue
        binds.append((os.open(d, os.O_PATH | os.O_CLOEXEC), d, True))
        done.append(d)
    for name in _DEVICES:
        if os.path.exists(f"/dev/{name}"):
            binds.append((os.open(f"/dev/{name}", os.O_PATH | os.O_CLOEXEC), f"/dev/{name}", False))
    etc = {n: Path("/etc", n).read_bytes() for n in _ETC_COPIES if Path("/etc", n).is_file()}
    etc["passwd"] = (
        f"root:x:0:0::/:/bin/false\nsandbox:x:{uid}:{gid}::{WORK_DIR}:/bin/false\n".encode()
    )
    etc["group"] = f"root:x:0:\nsandbox:x:{gid}:\n".encode()

    new = "/tmp" if os.path.isdir("/tmp") else "/mnt"
    sc.mount("tmpfs", new, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=8m,mode=0755")
    for rel in ("etc", "dev", "proc", WORK_DIR.strip("/")):
        os.makedirs(f"{new}/{rel}", mode=0o755, exist_ok=True)
    for name, data in etc.items():
        Path(new, "etc", name).write_bytes(data)
    for target, link in links:
        os.symlink(target, new + link)
    if not any(_covered(p, ["/tmp"]) for _, p, _ in binds):
        # "/tmp/x" lands in the run's folder (unless the Python install lives under /tmp)
        os.symlink(WORK_DIR, f"{new}/tmp")
    for fd, path, is_dir in binds:
        if is_dir:
            os.makedirs(new + path, mode=0o755, exist_ok=True)
        else:
            Path(new + path).touch()
        _bind_ro(fd, new + path, device=not is_dir)
        os.close(fd)

    os.chdir(new)
    sc.pivot_root(".", ".")  # the old root now sits under the new one ...
    sc.umount(".", sc.MNT_DETACH)  # ... and is detached from it
    os.chdir("/")
    sc.mount("proc", "/proc", "proc", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)
    sc.mount(None, "/", None, sc.MS_REMOUNT | _RO)


def mount_work_dir(uid: int, gid: int, size_bytes: int, inodes: int) -> None:
    """A fresh, empty, size-limited folder for one run (owned by the sandbox user)."""
    opts = f"size={size_bytes},nr_inodes={inodes},mode=0700,uid={uid},gid={gid}"
    sc.mount("tmpfs", WORK_DIR, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, opts)


def unmount_work_dir() -> None:
    """Remove the run's folder and everything in it (the tmpfs goes with the mount)."""
    sc.umount(WORK_DIR, sc.MNT_DETACH)
