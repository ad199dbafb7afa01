"""Packaging: the installed wheel is what the tests exercise, with tasks/ mapped under us."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

import svpo_harness

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(os.environ.get("SVPO_EXPECT_INSTALLED") != "1", reason="not a wheel test run")
def test_package_comes_from_site_packages_not_the_source_tree():
    installed = Path(svpo_harness.__file__).resolve()
    assert "site-packages" in installed.parts
    assert REPO_ROOT / "svpo_harness" not in installed.parents


def test_tasks_and_plugins_are_not_top_level_packages():
    for name in ("tasks", "plugins"):
        spec = importlib.util.find_spec(name)
        # Only a test-local module of that name may exist, never one in site-packages.
        assert spec is None or "site-packages" not in Path(spec.origin or "").parts, name
    # The registration code the hook runs is part of the package proper, so a checkout has it.
    assert importlib.util.find_spec("svpo_harness.lm_eval_plugin") is not None


def test_task_yamls_ship_as_package_data():
    from svpo_harness.lm_eval_plugin import tasks_dir

    shipped = {p.name for p in tasks_dir().glob("*.yaml")}
    assert {"svpo_gsm8k.yaml", "svpo_math_suite.yaml", "_svpo_template.yaml"} <= shipped
