"""Value-guided step-level beam search SBS(B1, B2) (method.md section 6).

Per question, width ``w`` starts at B1:

1. The root gets one request for B1 * B2 steps; every later kept beam one request for B2.
   Exact duplicates among siblings (same token ids) are dropped when ``drop_duplicates``.
2. Every candidate is scored by the value head at the end of its step (``StepSample.value``;
   or the path's mean log-prob with ``rank_by="logprob"`` when there is no value head).
3. The global top ``w`` over all beams of the question are kept (ties: earlier candidate first,
   ``types.rank_key``). A kept final answer goes to the finished list and a kept dead end
   (truncated, empty, EOS without answer, max_depth, token budget) is dropped; each does
   ``w -= 1``. The question stops at ``w = 0`` or when no beam is left.
4. The result is the finished path with the highest value; if none finished, the highest-value
   dropped path (``finished=False``).

All live beams of all questions advance together: one ``sample_steps`` call per depth level.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from svpo_harness.core.policy import StepPolicy
from svpo_harness.core.search.frontier import (
    Job,
    QuestionSearch,
    build_result,
    classify,
    request_seed,
    require_value_head,
    resolve_limits,
    sample_level,
    start_questions,
)
from svpo_harness.core.search.types import (
    ROOT_ID,
    Candidate,
    RootState,
    SearchOptions,
    SearchResult,
    rank_key,
)


def step_beam(
    roots: Sequence[RootState],
    policy: StepPolicy,
    opts: SearchOptions | None = None,
    seed: int = 0,
) -> list[SearchResult]:
    """Run SBS(``opts.b1``, ``opts.b2``) for every root; one result per root, in order."""
    opts = opts or SearchOptions()
    require_value_head(policy, opts, "sbs")
    fmt = policy.step_format
    limits = resolve_limits(opts, fmt)
    questions = start_questions(roots)
    width = [opts.b1] * len(questions)
    live: list[list[int]] = [[ROOT_ID] for _ in questions]  # beam ends, by candidate id
    start = time.perf_counter()

    for depth in range(limits.max_depth):
        jobs = []
        for qi, question in enumerate(questions):
            if question.done:
                continue
            n = opts.b1 * opts.b2 if depth == 0 else opts.b2
            for parent in live[qi]:
                seed_i = request_seed(seed, question.root.key, depth, parent)
                jobs.append(Job(question, parent, n, seed_i))
        if not jobs:
            break
        outputs = sample_level(
            policy,
            jobs,
            temperature=opts.temperature,
            limits=limits,
            with_values=opts.rank_by == "value",
        )

        # Record every sample (tokens count even when dropped), then rank per question.
        pools: dict[int, list[Candidate]] = {}
        for job, samples in zip(jobs, outputs, strict=True):
            seen: set[tuple[int, ...]] = set()
            pool = pools.setdefault(id(job.question), [])
            for sample in samples:
                cand = job.question.add(job.parent_id, sample, fmt, opts.rank_by)
                if opts.drop_duplicates and cand.token_ids in seen:
                    cand.status = "duplicate"
                    continue
                seen.add(cand.token_ids)
                pool.append(cand)

        now = time.perf_counter() - start
        for qi, question in enumerate(questions):
            if question.done:
                continue
            pool = sorted(pools[id(question)], key=rank_key)
            next_live = []
            for cand in pool[: width[qi]]:  # the rest keep status "pruned"
                classify(cand, fmt, limits)
                if cand.status == "kept":
                    next_live.append(cand.id)
                else:  # finished or dropped: the beam leaves, the width shrinks
                    width[qi] -= 1
            live[qi] = next_live
            if width[qi] == 0 or not next_live:
                question.finish(now)

    end = time.perf_counter() - start
    results = []
    for question in questions:
        question.finish(end)
        results.append(build_result(question, _choose(question), "sbs"))
    return results


def _choose(question: QuestionSearch) -> Candidate:
    """Best finished path; else the best dropped path end; else the best kept one."""
    for status in ("finished", "dropped", "kept"):
        ends = [c for c in question.tree if c.status == status]
        if ends:
            return min(ends, key=rank_key)
    raise AssertionError("a search always keeps at least one candidate")  # pragma: no cover
