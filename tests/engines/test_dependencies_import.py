"""Every package in install_requires imports in this environment.

The floor job (scripts/run_tests.sh, constraints-floor.txt) installs each at its floor; a floor
that installs but cannot import (a compiled package built for an older numpy, say) must fail
there even if no other quick test touches that package.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re

import pytest

MODULE = {"lm-eval": "lm_eval", "math-verify": "math_verify", "matplotlib": "matplotlib.pyplot"}


def _install_requires() -> list[str]:
    try:
        reqs = importlib.metadata.requires("svpo-harness") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("svpo-harness is not installed (no metadata to read install_requires from)")
    return [re.split(r"[ <>=!~;\[]", r, maxsplit=1)[0] for r in reqs if "extra ==" not in r]


def test_every_install_requires_package_imports(monkeypatch) -> None:
    monkeypatch.setenv("MPLBACKEND", os.environ.get("MPLBACKEND", "Agg"))
    names = _install_requires()
    assert {"torch", "transformers", "lm-eval", "matplotlib"} <= set(names)
    for name in names:
        importlib.import_module(MODULE.get(name, name.replace("-", "_")))
