"""lm-eval task configs (YAML) for svpo-harness, installed as ``svpo_harness.tasks``.

Every task points its scoring at ``utils.process_results`` (one scoring function for all tasks)
and builds its prompt from the step format's one template (``svpo_harness.core.step_format``).
"""
