"""The machinery every decoding shares: per-question trees, batched policy calls, step rules.

- ``QuestionSearch`` holds one question's candidate tree and cost counters, and rebuilds a
  state's ids by concatenating the stored step ids (never by re-encoding text; method.md 2.1).
- ``sample_level`` makes ONE batched ``policy.sample_steps`` call for all live beams of all
  questions and raises ``ValueError`` when the policy returns another number of samples.
- ``classify`` applies the step rules of method.md sections 2 and 6: truncated, empty,
  EOS-without-answer and stop-string-without-answer steps are dead ends, a step with a marked
  answer is final, and a path that reaches ``max_depth`` or the token budget without an answer
  ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from svpo_harness.core.policy import StepPolicy, StepRequest, StepSample
from svpo_harness.core.search.types import (
    ROOT_ID,
    Candidate,
    RankBy,
    RootState,
    SearchOptions,
    SearchResult,
)
from svpo_harness.core.seeding import derive_seed
from svpo_harness.core.step_format import StepFormat


class QuestionSearch:
    """One question's search tree and cost counters (no search logic of its own)."""

    def __init__(self, root: RootState) -> None:
        self.root = root
        self.tree: list[Candidate] = []  # creation order; tree[i].id == i + 1
        self.tokens_generated = 0
        self.prefill_tokens = 0
        self.policy_calls = 0
        self.seconds = 0.0
        self.done = False

    def get(self, cand_id: int) -> Candidate:
        return self.tree[cand_id - 1]

    def path(self, cand_id: int) -> list[Candidate]:
        """The candidates from depth 1 down to ``cand_id`` (empty for the root)."""
        steps: list[Candidate] = []
        while cand_id != ROOT_ID:
            cand = self.get(cand_id)
            steps.append(cand)
            cand_id = cand.parent_id
        return steps[::-1]

    def state_ids(self, cand_id: int) -> tuple[int, ...]:
        """Prompt ids plus every step's ids exactly as sampled (method.md section 2.1)."""
        ids = list(self.root.prompt_ids)
        for step in self.path(cand_id):
            ids.extend(step.token_ids)
        return tuple(ids)

    def add(
        self, parent_id: int, sample: StepSample, fmt: StepFormat, rank_by: RankBy
    ) -> Candidate:
        """Record a sampled step under ``parent_id`` (status "pruned" until classified)."""
        parent = None if parent_id == ROOT_ID else self.get(parent_id)
        path_tokens = len(sample.token_ids) + (parent.path_tokens if parent else 0)
        path_lp = sample.logprob_sum + (parent.path_logprob_sum if parent else 0.0)
        if rank_by == "value":
            score = sample.value
        else:  # the path's mean token log-prob; an all-empty path has none
            score = path_lp / path_tokens if path_tokens else None
        cand = Candidate(
            id=len(self.tree) + 1,
            parent_id=parent_id,
            depth=(parent.depth if parent else 0) + 1,
            text=sample.text,
            token_ids=tuple(sample.token_ids),
            value=sample.value,
            logprob_sum=sample.logprob_sum,
            logprob_mean=sample.logprob_mean,
            finish_reason=sample.finish_reason,
            has_answer=fmt.is_final_step(sample.text),
            path_tokens=path_tokens,
            path_logprob_sum=path_lp,
            score=score,
        )
        self.tree.append(cand)
        self.tokens_generated += sample.sampled_count  # not a tool's inserted output
        self.prefill_tokens += sample.prefill_tokens
        return cand

    def finish(self, seconds: float) -> None:
        if not self.done:
            self.done, self.seconds = True, seconds


@dataclass(frozen=True)
class Job:
    """One request of one question: sample ``n`` steps after candidate ``parent_id``."""

    question: QuestionSearch
    parent_id: int
    n: int
    seed: int


@dataclass(frozen=True)
class Limits:
    """Options resolved against the policy's step format."""

    max_depth: int
    max_step_tokens: int
    max_new_tokens: int | None
    stop: tuple[str, ...] = ()


def resolve_limits(opts: SearchOptions, fmt: StepFormat) -> Limits:
    stop = fmt.stop_sequences if opts.stop is None else opts.stop
    return Limits(
        max_depth=opts.max_depth if opts.max_depth is not None else fmt.max_steps,
        max_step_tokens=opts.max_step_tokens or fmt.max_step_tokens,
        max_new_tokens=opts.max_new_tokens,
        # never the delimiter: it ends a step, not the solution
        stop=tuple(dict.fromkeys(s for s in stop if s and s != fmt.delimiter)),
    )


def start_questions(roots: Sequence[RootState]) -> list[QuestionSearch]:
    """One ``QuestionSearch`` per root; keys must be unique (they are seed parts)."""
    keys = [root.key for root in roots]
    if len(set(keys)) != len(keys):
        dupes = sorted({repr(k) for k in keys if keys.count(k) > 1})
        raise ValueError(f"root keys must be unique within a search; repeated: {', '.join(dupes)}")
    return [QuestionSearch(root) for root in roots]


def request_seed(seed: int, key: str | int, depth: int, node_id: int) -> int:
    """The seed of one request: (run seed, question, depth, beam/solution id) only, so a
    question's samples never depend on which other questions share the batch."""
    return derive_seed(seed, key, depth, node_id)


def require_value_head(policy: StepPolicy, opts: SearchOptions, decoding: str) -> None:
    """Value-ranked decodings need a value head unless the caller asked for log-prob ranking."""
    if opts.rank_by == "value" and not policy.has_value_head:
        raise ValueError(
            f"{decoding} ranks candidates by the value head, but this policy has none; load a "
            "checkpoint with a value head or set rank_by='logprob' (the value_head=none mode)"
        )


def step_token_cap(job: Job, limits: Limits) -> int:
    """The step's token cap, never past the path's total budget (lm-eval's max_gen_toks), so a
    budget-limited solution ends exactly where a plain generate() would stop."""
    cap = limits.max_step_tokens
    if limits.max_new_tokens is not None:
        used = 0 if job.parent_id == ROOT_ID else job.question.get(job.parent_id).path_tokens
        cap = min(cap, max(1, limits.max_new_tokens - used))
    return cap


def sample_level(
    policy: StepPolicy,
    jobs: Sequence[Job],
    *,
    temperature: float,
    limits: Limits,
    with_values: bool,
) -> list[list[StepSample]]:
    """One batched ``sample_steps`` call for ``jobs``; counts calls per question."""
    requests = [
        StepRequest(
            state_ids=job.question.state_ids(job.parent_id),
            n=job.n,
            seed=job.seed,
            temperature=temperature,
            max_step_tokens=step_token_cap(job, limits),
            stop=limits.stop,
        )
        for job in jobs
    ]
    outputs = policy.sample_steps(requests, with_values=with_values)
    if len(outputs) != len(requests):
        raise ValueError(
            f"policy returned {len(outputs)} sample lists for {len(requests)} requests"
        )
    for i, (req, outs) in enumerate(zip(requests, outputs, strict=True)):
        if len(outs) != req.n:
            raise ValueError(f"policy returned {len(outs)} samples for request {i}, asked {req.n}")
    for question in {id(job.question): job.question for job in jobs}.values():
        question.policy_calls += 1
    return [list(outs) for outs in outputs]


def classify(cand: Candidate, fmt: StepFormat, limits: Limits) -> None:
    """Set ``status``/``reason`` of a kept candidate: finished, dropped, or kept (live).

    Order matters: a truncated step is a dead end even if it contains an answer (it hit the
    token cap; method.md 2), and a final answer at max_depth still counts as finished.
    """
    if cand.finish_reason == "length":
        cand.status, cand.reason = "dropped", "truncated"
    elif fmt.is_empty_step(cand.text):
        cand.status, cand.reason = "dropped", "empty"
    elif cand.has_answer:
        cand.status, cand.reason = "finished", "answer"
    elif cand.finish_reason == "eos":
        cand.status, cand.reason = "dropped", "eos_no_answer"
    elif cand.finish_reason == "stop":
        cand.status, cand.reason = "dropped", "stop_no_answer"
    elif cand.depth >= limits.max_depth:
        cand.status, cand.reason = "dropped", "max_depth"
    elif limits.max_new_tokens is not None and cand.path_tokens >= limits.max_new_tokens:
        cand.status, cand.reason = "dropped", "token_budget"
    else:
        cand.status, cand.reason = "kept", None


def build_result(
    question: QuestionSearch,
    chosen: Candidate,
    decoding: str,
    *,
    answer: str | None = None,
    votes: int | None = None,
) -> SearchResult:
    """The typed result for ``question`` with ``chosen`` as the last step of the answer path."""
    path = question.path(chosen.id)
    return SearchResult(
        key=question.root.key,
        decoding=decoding,
        text="".join(step.text for step in path),
        step_token_ids=tuple(step.token_ids for step in path),
        finished=chosen.status == "finished",
        has_answer=chosen.has_answer,
        value=chosen.value,
        score=chosen.score,
        end_reason=chosen.reason,
        chosen_id=chosen.id,
        tokens_generated=question.tokens_generated,
        prefill_tokens=question.prefill_tokens,
        policy_calls=question.policy_calls,
        seconds=question.seconds,
        tree=question.tree,
        answer=answer,
        votes=votes,
    )
