"""Helpers for the grading tests (``shared_data`` comes from tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _stop_pool():
    yield
    from svpo_harness.grading import shutdown_pool

    shutdown_pool()
