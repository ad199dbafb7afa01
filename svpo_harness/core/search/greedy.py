"""Greedy decoding, step by step: B1 = B2 = 1, temperature 0, no value head needed.

One chain per question (``rollout.rollout`` with one solution). It goes on after every
non-final step that ended at the delimiter and stops at a final answer, EOS, a truncated or
empty step, ``max_depth`` or the token budget. Decision (method.md 6 leaves it open): a chain
that stopped without a marked answer is returned as it is, with ``finished=False`` and its
``end_reason`` (e.g. ``"eos_no_answer"``); lm-eval scores whatever text comes back.
``opts.b1``, ``b2``, ``temperature``, ``rank_by`` and ``n_samples`` are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from svpo_harness.core.policy import StepPolicy
from svpo_harness.core.search.frontier import build_result
from svpo_harness.core.search.rollout import rollout
from svpo_harness.core.search.types import RootState, SearchOptions, SearchResult


def greedy(
    roots: Sequence[RootState],
    policy: StepPolicy,
    opts: SearchOptions | None = None,
    seed: int = 0,
) -> list[SearchResult]:
    """Greedy step-by-step decoding of every root; one result per root, in order."""
    opts = opts or SearchOptions()
    chains = rollout(roots, policy, opts, seed, n_solutions=1, temperature=0.0, with_values=False)
    return [build_result(c.question, c.ends[0], "greedy") for c in chains]
