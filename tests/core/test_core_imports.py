"""The core layer never imports torch, transformers or lm_eval (design.md, "Layers")."""

from __future__ import annotations

import subprocess
import sys

CORE_MODULES = [
    "svpo_harness.grading",
    "svpo_harness.core.step_format",
    "svpo_harness.core.policy",
    "svpo_harness.core.seeding",
    "svpo_harness.core.arith",
    "svpo_harness.core.schemas",
    "svpo_harness.core.jsonl_io",
    "svpo_harness.core.search",
    "svpo_harness.core.mcts",
    "svpo_harness.core.mcts_rollout",
    "svpo_harness.core.mcts_tree",
    "svpo_harness.core.tool_policy",
    "svpo_harness.core.pairs",
    "svpo_harness.data.problems",
]


def test_core_imports_with_torch_blocked():
    # A None entry in sys.modules makes any `import torch` raise ImportError.
    code = (
        "import sys\n"
        "for heavy in ('torch', 'transformers', 'lm_eval', 'vllm'):\n"
        "    sys.modules[heavy] = None\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    __import__(name)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_cli_help_needs_no_torch():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from svpo_harness.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "names = ('grade', 'data', 'eval', 'train', 'demo-model', 'value-head')\n"
        "assert all(n in result.output for n in names), result.output\n"
        "print(sorted(m for m in ('torch', 'transformers', 'lm_eval') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
