"""Fixtures for the sandbox tests (helpers in sandbox_helpers.py)."""

from __future__ import annotations

import os
import socket

import pytest
from sandbox_helpers import CANARY, SECRET, Outside


@pytest.fixture(scope="session")
def sandbox_ready():
    """A running sandbox pool started with a secret in the environment; skips where refused."""
    from svpo_harness.sandbox import SandboxUnavailable, sandbox_mode, shutdown_pool

    shutdown_pool()
    os.environ["SVPO_TEST_SECRET"] = SECRET
    try:
        mode = sandbox_mode()
    except SandboxUnavailable as exc:
        pytest.skip(f"sandbox unavailable on this machine: {exc}")
    yield mode
    shutdown_pool()
    os.environ.pop("SVPO_TEST_SECRET", None)


@pytest.fixture(scope="session")
def outside(tmp_path_factory, sandbox_ready):
    folder = tmp_path_factory.mktemp("outside")
    os.chmod(folder, 0o755)
    canary = folder / "canary.txt"
    canary.write_text(CANARY)
    os.chmod(canary, 0o644)
    secret_file = folder / "secret.txt"
    secret_file.write_text(SECRET)
    os.chmod(secret_file, 0o644)  # world-readable on purpose: only isolation hides it
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    unix_path = folder / "sock"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(unix_path))
    os.chmod(unix_path, 0o777)
    unix.listen(8)
    unix.setblocking(False)
    yield Outside(folder, canary, secret_file, tcp, udp, unix, unix_path)
    for s in (tcp, udp, unix):
        s.close()
