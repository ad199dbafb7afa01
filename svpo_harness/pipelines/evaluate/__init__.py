"""Evaluation: lm-eval runs of ``--model svpo`` (``evaluate_checkpoint``) and the value
head's own metrics on held-out trees (`svpo value-eval`: ``ValueEvalConfig`` + ``run_value_eval``).

``register_all`` / ``tasks_dir`` register our lm-eval model and tasks (the start-up hook reaches
them through ``svpo_harness.lm_eval_plugin``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svpo_harness.pipelines import lazy_exports

if TYPE_CHECKING:
    from svpo_harness.pipelines.evaluate.lm_eval_registry import register_all, tasks_dir
    from svpo_harness.pipelines.evaluate.lm_eval_run import evaluate_checkpoint
    from svpo_harness.pipelines.evaluate.value_eval import (
        ValueEvalConfig,
        ValueEvalError,
        run_value_eval,
        summary_line,
    )

__getattr__ = lazy_exports(
    __name__,
    {
        "lm_eval_registry": ("register_all", "tasks_dir"),
        "lm_eval_run": ("evaluate_checkpoint",),
        "value_eval": ("ValueEvalConfig", "ValueEvalError", "run_value_eval", "summary_line"),
    },
)
__all__ = [
    "ValueEvalConfig",
    "ValueEvalError",
    "evaluate_checkpoint",
    "register_all",
    "run_value_eval",
    "summary_line",
    "tasks_dir",
]
