"""Importing svpo_harness.grading must not pull in torch, transformers, lm_eval or sympy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import svpo_harness

PKG_PARENT = str(Path(svpo_harness.__file__).resolve().parents[1])


def test_import_is_light_in_fresh_interpreter() -> None:
    code = (
        "import sys, json\n"
        f"sys.path.insert(0, {PKG_PARENT!r})\n"
        "import svpo_harness.grading as g\n"
        "import svpo_harness.cli.grade\n"
        "g.extract_answer('\\\\boxed{1}')\n"
        "bad = [m for m in ('torch', 'transformers', 'lm_eval', 'sympy') if m in sys.modules]\n"
        "print(json.dumps(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
