"""A scripted StepPolicy for search tests: deterministic steps, values and finish reasons.

Tokens are characters (``ord``), so a state's ids decode back to the exact prefix text and
token counts are ``len(text)``. A prompt is one token ``PROMPT_BASE + question index``.

The script maps ``(question, prefix text)`` to the list of steps that may follow. Which one a
sample gets:

- ``mode="cursor"`` (default): the k-th sample ever served for that prefix gets ``steps[k % len]``.
  So a root request with n = 15 gets steps 0..14, and N rollout chains (one request each, in
  solution order) get steps 0..N-1.
- ``mode="seeded"``: sample j of a request with seed s gets a choice drawn from
  ``random.Random(f"{s}/{j}")``: depends on the request's seed only, like a real backend.

Prefixes not in the script go to ``default(question, prefix, seed, j)`` when given, else raise
``KeyError`` (an incomplete script is a test bug, not a dead end).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from svpo_harness.core.policy import StepRequest, StepSample
from svpo_harness.core.step_format import StepFormat

PROMPT_BASE = 1_000_000


class MarkedFormat(StepFormat):
    """Line-per-step format whose final-answer test needs no grading module."""

    def is_final_step(self, step_text: str) -> bool:
        return "\\boxed{" in step_text or "The answer is" in step_text


FMT = MarkedFormat(name="test", delimiter="\n", prompt_template="Q: {question}\n", max_steps=6)


@dataclass(frozen=True)
class Step:
    """A scripted step: its text, value after it, finish reason and mean token log-prob."""

    text: str
    value: float | None = 0.0
    finish: str = "delimiter"
    logprob: float = -1.0


def final(answer: str, value: float = 0.5, finish: str = "eos") -> Step:
    return Step(f"so \\boxed{{{answer}}}", value, finish)


DefaultFn = Callable[[str, str, int, int], Step]


@dataclass
class ScriptedPolicy:
    """Implements ``svpo_harness.core.policy.StepPolicy`` from a script (see module doc)."""

    script: dict[tuple[str, str], list[Step]] = field(default_factory=dict)
    default: DefaultFn | None = None
    mode: str = "cursor"
    value_head: bool = True
    step_format: StepFormat = FMT
    # Test hooks: drop one sample from every request, or one whole request list.
    short_by: int = 0
    lists_short_by: int = 0
    root_value: float = 0.25
    calls: list[tuple[list[StepRequest], bool]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    _cursor: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def has_value_head(self) -> bool:
        return self.value_head

    def encode_prompt(self, question: str) -> tuple[int, ...]:
        if question not in self.questions:
            self.questions.append(question)
        return (PROMPT_BASE + self.questions.index(question),)

    def decode(self, token_ids: Sequence[int]) -> str:
        return "".join(chr(t) for t in token_ids)

    def encode_continuation(self, context_ids: Sequence[int], text: str) -> tuple[int, ...]:
        return tuple(ord(c) for c in text)  # one token per character, whatever precedes it

    def _where(self, state_ids: Sequence[int]) -> tuple[str, str]:
        return self.questions[state_ids[0] - PROMPT_BASE], self.decode(state_ids[1:])

    def _step(self, where: tuple[str, str], seed: int, j: int) -> Step:
        steps = self.script.get(where)
        if steps is None:
            if self.default is None:
                raise KeyError(f"no script for question {where[0]!r} after {where[1]!r}")
            return self.default(where[0], where[1], seed, j)
        if self.mode == "seeded":
            return steps[random.Random(f"{seed}/{j}").randrange(len(steps))]
        k = self._cursor.get(where, 0)
        self._cursor[where] = k + 1
        return steps[k % len(steps)]

    def sample_steps(
        self, requests: Sequence[StepRequest], *, with_values: bool = True
    ) -> list[list[StepSample]]:
        if with_values and not self.value_head:
            raise RuntimeError("values requested from a policy without a value head")
        self.calls.append((list(requests), with_values))
        out = []
        for req in requests:
            where = self._where(req.state_ids)
            samples = []
            for j in range(req.n - self.short_by):
                step = self._step(where, req.seed, j)
                ids = tuple(ord(c) for c in step.text)
                samples.append(
                    StepSample(
                        token_ids=ids,
                        text=step.text,
                        logprob_sum=step.logprob * len(ids),
                        logprob_mean=step.logprob,
                        finish_reason=step.finish,  # type: ignore[arg-type]
                        value=step.value if with_values else None,
                    )
                )
            out.append(samples)
        return out[: len(out) - self.lists_short_by]

    def values(self, states: Sequence[Sequence[int]]) -> list[float]:
        """Whole-state values (MCTS reads the root's): ``root_value`` for every state."""
        if not self.value_head:
            raise RuntimeError("values requested from a policy without a value head")
        return [self.root_value for _ in states]
