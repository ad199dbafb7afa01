"""svpo-harness: Step-level Value Preference Optimization (arXiv 2406.10858) for math reasoning.

Kept import-light on purpose: the lm-eval start-up hook and `svpo --help` import this package,
so nothing here may pull in torch, transformers or lm_eval.
"""

__version__ = "0.1.0"
