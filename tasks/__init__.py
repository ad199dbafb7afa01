"""lm-eval task configs (YAML) for svpo-harness, installed as ``svpo_harness.tasks``.

A checkout has no package of that name (this folder sits next to ``svpo_harness/``): find the
folder with ``svpo_harness.lm_eval_plugin.tasks_dir()``. lm-eval itself loads ``utils.py`` by
path, next to the YAML files, so the tasks work from either layout.

Every task points its scoring at ``utils.process_results`` (one scoring function for all tasks)
and builds its prompt from the step format's one template (``svpo_harness.core.step_format``).
"""
