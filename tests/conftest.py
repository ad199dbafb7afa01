"""Shared test set-up: offline Hugging Face, a throw-away HF_HOME, where the shared data is, and
which skips CI tolerates.

Tests never download: the hub is switched off before anything imports transformers/datasets.

Under CI=true (what .ci/run gets) a skip is a failure unless its reason is one of
`SKIPS_ALLOWED_IN_CI` (each named in CONTRIBUTING.md "Skips in CI" with why): a test that needs
../shared/data, root, or a package CI installs must run there, and its skip would hide that it did
not. With SVPO_NO_SKIPS=1 (the vLLM job) no skip at all is tolerated.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="svpo-test-hf-home-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
NO_SKIPS = os.environ.get("SVPO_NO_SKIPS") == "1"
# The skips CI keeps, as patterns of their reasons, each named in CONTRIBUTING.md "Skips in CI"
# with why. Every other test that can skip needs something CI has (../shared/data, root, the
# packages it installs); the tests marked gpu need CUDA, which CI machines never have
# (tests/gpu/conftest.py; scripts/gpu_check.sh runs them on a GPU machine).
SKIPS_ALLOWED_IN_CI: tuple[str, ...] = (
    r"^needs a CUDA device \(scripts/gpu_check\.sh runs these on a GPU machine\)$",
)


def shared_data_dir() -> Path | None:
    """../shared/data beside the checkout (or $SVPO_SHARED_DATA)."""
    candidate = Path(os.environ.get("SVPO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return candidate if (candidate / "gsm8k" / "test.jsonl").is_file() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    found = shared_data_dir()
    if found is None:
        where = os.environ.get("SVPO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data")
        message = f"../shared/data (the benchmark data) is not beside this checkout ({where})"
        if IN_CI or NO_SKIPS:
            pytest.fail(f"{message}: CI runs every test that reads it", pytrace=False)
        pytest.skip(message)
    return found


def _skip_reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):  # (path, line, "Skipped: reason")
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def _fail_a_forbidden_skip(report) -> None:
    """Under CI=true a skip that is not allowed there becomes a failure, with the skip's own
    reason (what is missing); under SVPO_NO_SKIPS=1 every skip does."""
    if not report.skipped or hasattr(report, "wasxfail") or not (IN_CI or NO_SKIPS):
        return
    reason = _skip_reason(report)
    if not NO_SKIPS and any(re.search(p, reason) for p in SKIPS_ALLOWED_IN_CI):
        return
    rule = "SVPO_NO_SKIPS=1 (the vLLM job)" if NO_SKIPS else "CI=true"
    report.outcome = "failed"
    report.longrepr = f"{report.nodeid}: would skip, which {rule} does not allow: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_a_forbidden_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    """A module that skips itself (`pytest.importorskip` at its top) is a skip too."""
    outcome = yield
    _fail_a_forbidden_skip(outcome.get_result())
