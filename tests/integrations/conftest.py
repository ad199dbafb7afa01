"""Models for the lm-eval tests: a micro checkpoint (seconds) and the demo model (slow)."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def demo_checkpoint(tmp_path_factory) -> Path:
    """`svpo demo-model` output, built once per session (about 3 minutes on 2 cores).

    Set SVPO_DEMO_MODEL to reuse a folder built earlier with the same seed.
    """
    from svpo_harness.pipelines.demo_model import build_demo_model

    given = os.environ.get("SVPO_DEMO_MODEL")
    if given and (Path(given) / "svpo.json").is_file():
        return Path(given)
    out = tmp_path_factory.mktemp("demo") / "model"
    build_demo_model(out, seed=0, progress=False)
    return out
