"""Register svpo's lm-eval model and tasks: run by the start-up hook, or by `svpo eval`.

This module lives inside the package (not in the top-level ``plugins/`` folder) so that a
checkout imports it under the same name as an installed wheel: a Python started in the
repository's root imports the source tree's ``svpo_harness``, and the hook installed from the
wheel must still find its registration code there. ``plugins/`` holds only the hook itself.

The code is ``svpo_harness.pipelines.evaluate.lm_eval_registry`` (the evaluate pipeline
registers too, and a pipeline must not import an integration); this module keeps the name the
hook, `svpo eval` and users call.
"""

from svpo_harness.pipelines.evaluate.lm_eval_registry import (
    MODEL_NAME,
    MODEL_TARGET,
    patch_task_manager,
    register_all,
    register_model,
    tasks_dir,
)

__all__ = [
    "MODEL_NAME",
    "MODEL_TARGET",
    "patch_task_manager",
    "register_all",
    "register_model",
    "tasks_dir",
]
