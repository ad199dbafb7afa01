"""Fixtures for the grading tests: where the shared benchmark data lives.

Data is located from this file's path (the tests folder stays inside the repo clone, while
the package under test may be an installed wheel), or from ``SVPO_SHARED_DATA``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def data_dir() -> Path | None:
    env = os.environ.get("SVPO_SHARED_DATA")
    path = Path(env) if env else (REPO / ".." / "shared" / "data").resolve()
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = data_dir()
    if path is None:
        pytest.skip("shared data not found: set SVPO_SHARED_DATA or place it at ../shared/data")
    return path


def load_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        pytest.skip(f"missing data file {path}")
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session", autouse=True)
def _stop_pool():
    yield
    from svpo_harness.grading import shutdown_pool

    shutdown_pool()
