"""Best-of-N: N independently sampled complete solutions, ranked by the value at their end.

Each solution's score is the value of its last step (the value read at its final delimiter,
method.md 6), or with ``rank_by="logprob"`` the path's mean token log-prob. The result is the
finished solution with the highest score; solutions without a score rank last; ties go to the
lower solution index. If no solution finished, the best unfinished one is returned
(``finished=False``) by the same rule. N is ``opts.n_samples``.
"""

from __future__ import annotations

from collections.abc import Sequence

from svpo_harness.core.policy import StepPolicy
from svpo_harness.core.search.frontier import build_result, require_value_head
from svpo_harness.core.search.rollout import rollout
from svpo_harness.core.search.types import Candidate, RootState, SearchOptions, SearchResult


def best_of_n(
    roots: Sequence[RootState],
    policy: StepPolicy,
    opts: SearchOptions | None = None,
    seed: int = 0,
) -> list[SearchResult]:
    """Best-of-``opts.n_samples`` for every root; one result per root, in order."""
    opts = opts or SearchOptions()
    require_value_head(policy, opts, "bon")
    chains = rollout(
        roots,
        policy,
        opts,
        seed,
        n_solutions=opts.n_samples,
        temperature=opts.temperature,
        with_values=opts.rank_by == "value",
    )
    return [build_result(c.question, pick_best(c.ends), "bon") for c in chains]


def pick_best(ends: Sequence[Candidate]) -> Candidate:
    """The best solution end: finished first, then score descending (None last), then index."""

    def key(item: tuple[int, Candidate]) -> tuple[bool, bool, float, int]:
        index, cand = item
        score = cand.score
        return (cand.status != "finished", score is None, -(score or 0.0), index)

    return min(enumerate(ends), key=key)[1]
