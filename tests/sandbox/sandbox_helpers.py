"""Helpers for the sandbox tests: a host-side "outside" the sandboxed code must not touch.

The outside is a folder with a canary file and a secret file, a secret environment variable
(set before the pool starts), TCP, UDP and Unix-socket listeners the programs try to reach,
and a scan of /proc for processes of the sandbox uids.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

SECRET = "svpo-secret-4f1c9a"
CANARY = "canary: leave me alone\n"


@dataclass
class Outside:
    folder: Path
    canary: Path
    secret_file: Path
    tcp: socket.socket
    udp: socket.socket
    unix: socket.socket
    unix_path: Path

    @property
    def tcp_port(self) -> int:
        return self.tcp.getsockname()[1]

    @property
    def udp_port(self) -> int:
        return self.udp.getsockname()[1]

    def untouched(self) -> list[str]:
        """What changed out here (empty when nothing did)."""
        problems = []
        if not self.canary.is_file() or self.canary.read_text() != CANARY:
            problems.append("canary file changed or removed")
        elif oct(self.canary.stat().st_mode & 0o777) != "0o644":
            problems.append("canary mode changed")
        names = sorted(p.name for p in self.folder.iterdir())
        if names != sorted(["canary.txt", "secret.txt", "sock"]):
            problems.append(f"folder now holds {names}")
        for s, kind in ((self.tcp, "tcp"), (self.unix, "unix")):
            try:
                conn, _ = s.accept()
                conn.close()
                problems.append(f"{kind} listener got a connection")
            except BlockingIOError:
                pass
        try:
            self.udp.recvfrom(100)
            problems.append("udp listener got a datagram")
        except BlockingIOError:
            pass
        return problems


def sandbox_processes() -> list[str]:
    """Host processes running as a sandbox uid (there must be none between runs)."""
    from svpo_harness.sandbox.pool import MAX_WORKERS, UID_BASE

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                if UID_BASE <= uid < UID_BASE + MAX_WORKERS:
                    found.append(f"pid {entry} uid {uid}")
    return found
