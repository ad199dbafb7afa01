"""The search settings of ``lm_eval --model svpo`` (its ``model_args``) and their defaults.

Read by the lm-eval model (``svpo_harness.lm_eval_model``, which re-exports them) and by
``svpo report``, which describes each run's decoding from them without importing lm-eval; so
they live here, in core, with no import at all.
"""

from __future__ import annotations

from typing import Any

# Our model_args and their defaults (method.md section 6: B1=3, B2=5, temperature 0.6).
SEARCH_ARGS: dict[str, Any] = {
    # absent: the checkpoint's head; "none" (or None, as lm-eval parses it): no head, rank by
    # log-prob; a path: that head
    "value_head": None,
    "decoding": "sbs",
    "beam_width": 3,
    "samples_per_step": 5,
    "num_samples": 5,  # N of best-of-N, k of maj@k, children per MCTS expansion
    "simulations": 40,  # decoding=mcts
    "c_puct": 1.25,  # decoding=mcts (method.md section 3, test time)
    "temperature": 0.6,
    "max_steps": None,  # default: the step format's max_steps
    "max_step_tokens": None,  # default: the step format's
    "step_format": None,  # default: from the checkpoint's svpo.json
    "seed": 0,
    "search_log": None,
    # keep states' KV across the search's calls (same results, less prefill), bounded in MB
    "prefix_cache": True,
    "prefix_cache_mb": 2048,
}
