"""Shared types of test-time search: roots, options, the candidate tree and the result.

Every decoding (greedy, SBS, best-of-N, maj@k) takes the same ``RootState`` list and
``SearchOptions`` and returns one ``SearchResult`` per root, always of the same type, whose
``to_dict()`` is the ``search_log`` JSONL record (one tree per request; method.md section 6).

Candidate ids are per question, in creation order: the root is ``ROOT_ID`` (0) and is not in the
tree; sampled steps are numbered 1, 2, ... in the order the policy returned them (requests in
beam order, samples in request order). Ids are therefore independent of which other questions
share a batch, which is what makes them usable as seed parts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

from svpo_harness.core.policy import FinishReason

Decoding = Literal["greedy", "sbs", "bon", "maj", "mcts"]
DECODINGS: tuple[str, ...] = get_args(Decoding)

# How SBS / best-of-N rank candidates: the value head (default), or the path's mean token
# log-prob for checkpoints without a value head (the ``value_head=none`` mode).
RankBy = Literal["value", "logprob"]
RANK_BY: tuple[str, ...] = get_args(RankBy)

# What became of a sampled step:
#   kept      in the beam and expanded further (interior node of a kept path)
#   finished  kept and carries a marked final answer: left the beam into the finished list
#   dropped   kept but terminal without an answer, too deep, or over the token budget
#   pruned    not among the global top w of its level
#   duplicate same token ids as an earlier sibling (drop_duplicates)
CandidateStatus = Literal["kept", "finished", "dropped", "pruned", "duplicate"]
# Why a kept candidate left the beam: "answer" (finished) or a dead-end reason (dropped).
EndReason = Literal[
    "answer", "truncated", "empty", "eos_no_answer", "stop_no_answer", "max_depth", "token_budget"
]

ROOT_ID = 0
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RootState:
    """One question to search: a stable key (seed part, log field) and its prompt token ids.

    ``key`` must identify the question, not its position in a batch (e.g. the question id or
    the lm-eval request index), so a question's samples do not depend on its batch-mates.
    """

    key: str | int
    prompt_ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.prompt_ids:
            raise ValueError(f"root {self.key!r}: prompt_ids must be non-empty")
        object.__setattr__(self, "prompt_ids", tuple(self.prompt_ids))


@dataclass(frozen=True)
class SearchOptions:
    """Settings of every decoding (method.md section 6). Unused fields are ignored per decoding.

    ``max_depth`` / ``max_step_tokens`` of None mean "from the policy's step format"
    (``max_steps`` / ``max_step_tokens``). Greedy always uses B1 = B2 = 1 and temperature 0.
    """

    b1: int = 3  # SBS beam width B1 (kept candidates per level, shrinks as beams end)
    b2: int = 5  # SBS expansions per kept beam B2 (the root gets B1 * B2)
    temperature: float = 0.6  # sampling temperature of SBS / best-of-N / maj@k
    max_depth: int | None = None  # most steps per solution; None = step_format.max_steps
    max_step_tokens: int | None = None  # token cap of one step; None = step_format's
    # Total new tokens of one solution path (lm-eval max_gen_toks): the last step's token cap is
    # cut to what is left, and a path that reaches it is not expanded again. None = no budget.
    max_new_tokens: int | None = None
    drop_duplicates: bool = True  # drop siblings with the same token ids (SBS)
    rank_by: RankBy = "value"
    n_samples: int = 5  # N of best-of-N, k of maj@k, children per MCTS expansion
    simulations: int = 40  # MCTS
    c_puct: float = 1.25  # MCTS at test time (method.md section 3; annotation uses 1.5)
    # Strings that end a solution inside the search (a step is cut before one and the path
    # ends there): None = the step format's stop_sequences; lm-eval passes its `until` too.
    stop: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("b1", "b2", "n_samples", "simulations"):
            if getattr(self, name) < 1:
                raise ValueError(f"SearchOptions.{name} must be >= 1, got {getattr(self, name)}")
        if self.temperature < 0:
            raise ValueError(f"SearchOptions.temperature must be >= 0, got {self.temperature}")
        for name in ("max_depth", "max_step_tokens", "max_new_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"SearchOptions.{name} must be >= 1 or None, got {value}")
        if self.rank_by not in RANK_BY:
            raise ValueError(f"SearchOptions.rank_by must be one of {RANK_BY}: {self.rank_by!r}")


@dataclass
class Candidate:
    """One sampled step in a question's search tree.

    ``score`` is what the search ranked by: the step's value (``rank_by="value"``) or the path's
    mean token log-prob (``rank_by="logprob"``); None ranks last. ``path_tokens`` counts the
    step tokens from the root through this step. Mutable only in ``status``/``reason`` while the
    search runs.
    """

    id: int
    parent_id: int
    depth: int
    text: str
    token_ids: tuple[int, ...]
    value: float | None
    logprob_sum: float
    logprob_mean: float
    finish_reason: FinishReason
    has_answer: bool
    path_tokens: int
    path_logprob_sum: float
    score: float | None = None
    status: CandidateStatus = "pruned"
    reason: EndReason | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["token_ids"] = list(self.token_ids)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        data = dict(data)
        data["token_ids"] = tuple(data["token_ids"])
        return cls(**data)


def rank_key(cand: Candidate) -> tuple[bool, float, int]:
    """Sort key, best first: score descending (None last), then creation order (lower id).

    This is the one tie-break rule of all decodings: equal scores go to the candidate the
    policy returned first, so results are deterministic.
    """
    return (cand.score is None, -(cand.score if cand.score is not None else 0.0), cand.id)


@dataclass
class SearchResult:
    """The outcome of one search for one question, and its whole candidate tree.

    - ``text``: the chosen path's step texts joined, exactly as sampled (nothing appended).
    - ``step_token_ids``: the chosen path's step ids, one tuple per step.
    - ``finished``: the chosen path ended with a step kept as a final answer.
    - ``has_answer``: its last step carries a marked answer (can be True while unfinished,
      e.g. a truncated step that still contains ``\\boxed{}``).
    - ``value`` / ``score``: the chosen last step's value-head value and ranking score.
    - ``end_reason``: why the chosen path ended (``EndReason``), None if it did not end.
    - ``tokens_generated``: tokens of every sampled candidate (not just the chosen path).
    - ``prefill_tokens``: prompt/state tokens the backend computed for this question's
      requests (fewer with a prefix KV cache; 0 from a policy that does not report them).
    - ``policy_calls``: batched ``sample_steps`` calls that carried a request of this question.
    - ``seconds``: wall time from the start of the (batched) search until this question's
      search ended; questions share calls, so these are not additive.
    - ``answer`` / ``votes``: maj@k only: the winning class's answer and its size.
    """

    key: str | int
    decoding: str
    text: str
    step_token_ids: tuple[tuple[int, ...], ...]
    finished: bool
    has_answer: bool
    value: float | None
    score: float | None
    end_reason: str | None
    chosen_id: int
    tokens_generated: int
    policy_calls: int
    seconds: float
    tree: list[Candidate] = field(default_factory=list)
    answer: str | None = None
    votes: int | None = None
    prefill_tokens: int = 0

    @property
    def token_ids(self) -> tuple[int, ...]:
        """The chosen path's ids, concatenated (the generated continuation of the prompt)."""
        return tuple(tok for step in self.step_token_ids for tok in step)

    @property
    def num_steps(self) -> int:
        return len(self.step_token_ids)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the ``search_log`` line for this request)."""
        data: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for f in fields(self):
            data[f.name] = getattr(self, f.name)
        data["step_token_ids"] = [list(step) for step in self.step_token_ids]
        data["tree"] = [cand.to_dict() for cand in self.tree]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"search log schema_version {version!r} is not supported "
                f"(expected {SCHEMA_VERSION})"
            )
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"schema_version"}
        if unknown:
            raise ValueError(f"unknown search log fields: {sorted(unknown)}")
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["step_token_ids"] = tuple(tuple(step) for step in data["step_token_ids"])
        kwargs["tree"] = [Candidate.from_dict(c) for c in data["tree"]]
        return cls(**kwargs)
