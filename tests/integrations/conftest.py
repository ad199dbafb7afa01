"""A micro checkpoint for the lm-eval tests (seconds). A trained model is the shipped demo model
(svpo_harness.pipelines.demo.shipped_demo_model); the slow suite rebuilds one only to check
the build (tests/integrations/test_demo_model.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def micro_checkpoint(tmp_path_factory) -> Path:
    """A random micro Llama with the arith format and a fresh value head (structure tests)."""
    from svpo_harness.engines.checkpoint import init_value_head_checkpoint
    from svpo_harness.engines.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("micro-ckpt")
    base = build_tiny_model(
        root / "base", seed=0, hidden_size=32, layers=2, heads=2, n_problems=500
    )
    return init_value_head_checkpoint(base, root / "ckpt", seed=0, step_format="arith")
