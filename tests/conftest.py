"""Shared test set-up: offline Hugging Face, a throw-away HF_HOME, and where the shared data is.

Tests never download: the hub is switched off before anything imports transformers/datasets.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="svpo-test-hf-home-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """../shared/data beside the checkout (or $SVPO_SHARED_DATA)."""
    candidate = Path(os.environ.get("SVPO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if (candidate / "gsm8k" / "test.jsonl").is_file() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    found = shared_data_dir()
    if found is None:
        pytest.skip("../shared/data (the benchmark data) is not beside this checkout")
    return found
