"""Test-time search over reasoning steps (method.md section 6); pure Python, no torch.

Decodings, all with the same signature ``fn(roots, policy, opts, seed) -> list[SearchResult]``
(one result per root, in order), and one dispatcher ``run_search``:

- ``greedy``: step-by-step greedy (B1 = B2 = 1, temperature 0, no value head needed);
- ``step_beam`` ("sbs"): value-guided step-level beam search SBS(B1, B2);
- ``best_of_n`` ("bon"): N sampled solutions, the highest value at the final step;
- ``majority`` ("maj"): k sampled solutions, majority over answer-equivalence classes;
- ``mcts`` ("mcts"): test-time MCTS with value-head leaf estimates, the most visited finished
  path (method.md section 3).

Search talks to a model only through ``svpo_harness.core.policy.StepPolicy``; all questions
advance together (one batched ``sample_steps`` call per depth), every request has its own seed
from ``(seed, question key, depth, beam id)``, and ``SearchResult.to_dict()`` is the
``search_log`` record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from svpo_harness.core.policy import StepPolicy
from svpo_harness.core.search.best_of_n import best_of_n
from svpo_harness.core.search.greedy import greedy
from svpo_harness.core.search.majority import AnswerFn, EquivFn, answer_classes, majority
from svpo_harness.core.search.mcts_decoding import mcts
from svpo_harness.core.search.step_beam import step_beam
from svpo_harness.core.search.types import (
    DECODINGS,
    RANK_BY,
    ROOT_ID,
    SCHEMA_VERSION,
    Candidate,
    CandidateStatus,
    Decoding,
    EndReason,
    RankBy,
    RootState,
    SearchOptions,
    SearchResult,
    rank_key,
)

SearchFn = Callable[[Sequence[RootState], StepPolicy, SearchOptions, int], list[SearchResult]]

SEARCHES: dict[str, SearchFn] = {
    "greedy": greedy,
    "sbs": step_beam,
    "bon": best_of_n,
    "maj": majority,
    "mcts": mcts,
}


def run_search(
    decoding: Decoding,
    roots: Sequence[RootState],
    policy: StepPolicy,
    opts: SearchOptions | None = None,
    seed: int = 0,
    *,
    answer_fn: AnswerFn | None = None,
    equiv_fn: EquivFn | None = None,
) -> list[SearchResult]:
    """Run ``decoding`` on every root. ``answer_fn``/``equiv_fn`` are used by "maj" only."""
    opts = opts or SearchOptions()
    if decoding == "maj":
        return majority(roots, policy, opts, seed, answer_fn=answer_fn, equiv_fn=equiv_fn)
    try:
        search = SEARCHES[decoding]
    except KeyError:
        raise ValueError(
            f"unknown decoding {decoding!r}; expected one of {', '.join(DECODINGS)}"
        ) from None
    return search(roots, policy, opts, seed)


__all__ = [
    "DECODINGS",
    "RANK_BY",
    "ROOT_ID",
    "SCHEMA_VERSION",
    "SEARCHES",
    "AnswerFn",
    "Candidate",
    "CandidateStatus",
    "Decoding",
    "EndReason",
    "EquivFn",
    "RankBy",
    "RootState",
    "SearchOptions",
    "SearchResult",
    "answer_classes",
    "best_of_n",
    "greedy",
    "majority",
    "mcts",
    "rank_key",
    "run_search",
    "step_beam",
]
