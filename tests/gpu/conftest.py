"""The GPU tests (marker ``gpu``): run by scripts/gpu_check.sh, deselected by the main suites.

Without CUDA every ``gpu`` test skips with ``CUDA_REASON`` (CI keeps that skip: its machines
have no GPU; tests/conftest.py SKIPS_ALLOWED_IN_CI, CONTRIBUTING.md "Skips in CI").
SVPO_GPU_TESTS_ON_CPU=1 runs them with the CPU standing in for CUDA: that checks the test code
itself on a machine without a GPU and proves nothing about CUDA (docs/gpu.md).

Also here: the plugin that times out each test and writes the JSON summary after every test
(gpu_report.py; the summary only when SVPO_GPU_SUMMARY names a file), and the fixtures the
tests share: the device, the shipped demo model, a tiny random Llama, arith questions.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from gpu_report import SUMMARY_ENV, GpuCheckPlugin

CUDA_REASON = "needs a CUDA device (scripts/gpu_check.sh runs these on a GPU machine)"
ON_CPU = os.environ.get("SVPO_GPU_TESTS_ON_CPU") == "1"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "gpu_timeout(seconds): the GPU check's per-test limit (tests/gpu/gpu_report.py)"
    )
    if not config.pluginmanager.has_plugin("svpo-gpu-check"):
        summary = os.environ.get(SUMMARY_ENV)
        stage = os.environ.get("SVPO_GPU_STAGE")
        plugin = GpuCheckPlugin(Path(summary) if summary else None, stage)
        config.pluginmanager.register(plugin, "svpo-gpu-check")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ON_CPU or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=CUDA_REASON)
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cpu" if ON_CPU else "cuda")


@pytest.fixture(scope="session", autouse=True)
def _exact_fp32() -> None:
    """fp32 on CUDA means fp32, torch's default, which an environment can change (TF32): the
    CPU-vs-CUDA parity is checked to 1e-4. Set only when on: the setter is deprecated."""
    if torch.backends.cuda.matmul.allow_tf32:
        torch.backends.cuda.matmul.allow_tf32 = False


@pytest.fixture(scope="session")
def demo() -> Path:
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    return shipped_demo_model()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (hidden 64, 2 layers) with a fresh value head: a second, untrained
    model whose text is not arithmetic, so its steps end by length and by the delimiter."""
    from svpo_harness.engines.checkpoint import init_value_head_checkpoint
    from svpo_harness.engines.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("tiny-llama")
    base = build_tiny_model(root / "base", seed=0, hidden_size=64, layers=2, heads=4)
    return init_value_head_checkpoint(base, root / "ckpt", seed=0, step_format="arith")


@pytest.fixture(scope="session")
def arith_questions() -> list[str]:
    """The first 20 questions of the arith test split (svpo_arith's own)."""
    from svpo_harness.core.arith import arith_split

    return [p.question for p in arith_split("test", n=20)]
