"""Sample complete solutions step by step: the engine under greedy, best-of-N and maj@k.

Each question gets ``n_solutions`` independent chains. At every depth, each live chain sends one
request with ``n=1`` and its own seed ``derive_seed(seed, key, depth, solution_index)``, and all
live chains of all questions share ONE batched ``sample_steps`` call. A chain ends at a final
answer ("finished"), or is dropped at a truncated / empty / EOS-without-answer step, at
``max_depth`` or at the token budget (``frontier.classify``); every step of a chain that went on
has status "kept". The dead-end step itself stays in the chain, so the returned text is exactly
what was sampled (lm-eval scores whatever text comes back).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from svpo_harness.core.policy import StepPolicy
from svpo_harness.core.search.frontier import (
    Job,
    QuestionSearch,
    classify,
    request_seed,
    resolve_limits,
    sample_level,
    start_questions,
)
from svpo_harness.core.search.types import ROOT_ID, Candidate, RootState, SearchOptions


@dataclass
class Rollouts:
    """The chains of one question: ``ends[i]`` is the last step of solution ``i``."""

    question: QuestionSearch
    ends: list[Candidate]


def rollout(
    roots: Sequence[RootState],
    policy: StepPolicy,
    opts: SearchOptions,
    seed: int,
    *,
    n_solutions: int,
    temperature: float,
    with_values: bool,
) -> list[Rollouts]:
    """Sample ``n_solutions`` complete solutions per root; one ``Rollouts`` per root."""
    if n_solutions < 1:
        raise ValueError(f"n_solutions must be >= 1, got {n_solutions}")
    fmt = policy.step_format
    limits = resolve_limits(opts, fmt)
    questions = start_questions(roots)
    # Per question: the last candidate id of each chain (ROOT_ID before the first step) and
    # the chain's end once it has one.
    heads = [[ROOT_ID] * n_solutions for _ in questions]
    ends: list[list[Candidate | None]] = [[None] * n_solutions for _ in questions]
    start = time.perf_counter()

    for depth in range(limits.max_depth):
        jobs: list[Job] = []
        owners: list[tuple[int, int]] = []  # (question index, solution index) per job
        for qi, question in enumerate(questions):
            for si in range(n_solutions):
                if ends[qi][si] is None:
                    seed_i = request_seed(seed, question.root.key, depth, si)
                    jobs.append(Job(question, heads[qi][si], 1, seed_i))
                    owners.append((qi, si))
        if not jobs:
            break
        outputs = sample_level(
            policy,
            jobs,
            temperature=temperature,
            limits=limits,
            with_values=with_values,
        )
        for job, (qi, si), samples in zip(jobs, owners, outputs, strict=True):
            cand = job.question.add(job.parent_id, samples[0], fmt, opts.rank_by)
            classify(cand, fmt, limits)
            heads[qi][si] = cand.id
            if cand.status != "kept":
                ends[qi][si] = cand
        now = time.perf_counter() - start
        for qi, question in enumerate(questions):
            if all(end is not None for end in ends[qi]):
                question.finish(now)

    # classify() ends every chain by max_depth at the latest, so no end is missing here.
    results = []
    for qi, question in enumerate(questions):
        question.finish(time.perf_counter() - start)
        chain_ends = [end for end in ends[qi] if end is not None]
        if len(chain_ends) != n_solutions:  # pragma: no cover - guarded by classify()
            raise AssertionError("every rollout chain must end by max_depth")
        results.append(Rollouts(question, chain_ends))
    return results
