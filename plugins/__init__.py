"""What makes stock `lm_eval` (and, later, `vllm`) find svpo-harness after `pip install`.

Installed as ``svpo_harness.plugins`` (setup.cfg maps this folder under the package so it never
lands in site-packages as a top-level ``plugins``). Two mechanisms:

- entry points ``lm_eval.models`` / ``lm_eval.tasks`` (setup.cfg) for lm-eval versions that read
  them;
- for lm-eval 0.4.13, which reads none, ``svpo_harness_lm_eval.pth``: a one-line start-up hook
  that imports :mod:`svpo_harness_lm_eval_hook` (a copy of `plugins/startup.py`). That module
  installs an import watcher which
  does nothing until ``lm_eval.models`` or ``lm_eval.tasks.manager`` is imported, then registers
  the ``svpo`` model and adds our task folder (:mod:`svpo_harness.plugins.registration`).
  ``SVPO_LM_EVAL_PLUGIN=0`` turns it off; ``svpo eval ...`` works either way.
"""
