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


@pytest.fixture(scope="session")
def demo_annotation(tmp_path_factory) -> tuple[Path, Path]:
    """The shipped demo model and its annotation of 24 arith:train questions (16 simulations x 4
    children), made once per session for the training and value-eval tests, which only read
    it (a test that changes files copies them first)."""
    from svpo_harness.pipelines.annotate.annotate_run import AnnotateConfig, run_annotate
    from svpo_harness.pipelines.demo.demo_model import copy_shipped_demo_model

    root = tmp_path_factory.mktemp("demo-annotation")
    model = copy_shipped_demo_model(root / "demo")
    cfg = AnnotateConfig(
        model=str(model), data="arith:train", out=str(root / "ann"), limit=24,
        simulations=16, children=4, temperature=1.0, min_visits=1, device="cpu",
        trees_in_flight=24,
    )  # fmt: skip
    run_annotate(cfg, progress=False)
    return model, root / "ann"
