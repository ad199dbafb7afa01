"""A very small model built once per session for training-loop tests (seconds, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def micro_model(tmp_path_factory) -> Path:
    from svpo_harness.engines.tiny_model import build_tiny_model

    return build_tiny_model(
        tmp_path_factory.mktemp("micro") / "base",
        seed=0,
        hidden_size=32,
        layers=2,
        heads=2,
        n_problems=500,
    )
