"""The StepPolicy protocol: the only thing search and annotation know about a model.

Search (beam search, MCTS) never imports torch; it talks to this small protocol, so it is tested
with a scripted fake policy in milliseconds and the same search runs on transformers, vLLM or a
remote server (design.md, "Layers").

Token contract (method.md section 2.1), written into these types:
- A state is ``prompt ids + every step's ids exactly as sampled``; nothing is ever re-encoded from
  joined text. ``StepSample.token_ids`` are the ids as sampled, delimiter tokens included, EOS
  excluded (EOS is part of no step).
- A step that ended with EOS (``finish_reason == "eos"``) has its value read, and is trained on,
  with the delimiter's canonical ids appended: ``value_ids`` gives exactly those ids. A step
  cut at a stop string (``"stop"``: the solution ends there, the stop string is in no step) is
  treated the same way.
- A sampled token that runs past the delimiter is cut at the delimiter and only that step is
  re-tokenized (``retokenized=True``).
- ``logprob_sum``/``logprob_mean`` are raw (temperature 1) log-probs of ``token_ids``; the MCTS
  prior is ``exp(logprob_mean)``.
- ``value`` is the value head's output at the last token of the step *fed as input*.
- ``sampled_mask`` (tool steps, ``core.tool_policy``): one 0/1 per id of ``token_ids``; 0 marks
  ids the policy did not sample (a tool's ``<output>``). They are part of the state and the
  value is read after them, but ``logprob_sum``/``logprob_mean`` cover only the sampled ids, and
  training excludes them (``TreeNode.sampled_mask``, ``engines.collate``). Empty: all sampled.

Determinism (method.md section 3): every request carries its own seed; sample ``j`` of a request
draws from a stream derived from ``(seed, j)`` only, so results never depend on what else shares a
batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from svpo_harness.core.step_format import StepFormat

# "stop": the text reached one of the request's stop strings (lm-eval's `until`, the step
# format's stop sequences); the step is cut just before it and the solution ends, as with EOS.
FinishReason = Literal["delimiter", "eos", "length", "stop"]
FINISH_REASONS: tuple[str, ...] = ("delimiter", "eos", "length", "stop")


@dataclass(frozen=True)
class StepRequest:
    """Sample ``n`` next steps after the state ``state_ids`` (prompt + steps so far)."""

    state_ids: tuple[int, ...]
    n: int
    seed: int
    temperature: float = 0.6
    max_step_tokens: int = 256
    # Strings that end the whole solution where they appear (also across the boundary with
    # the state's text); the step is cut just before one and finishes with reason "stop".
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(s for s in self.stop if s))
        if self.n < 1:
            raise ValueError(f"StepRequest.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"StepRequest.temperature must be >= 0, got {self.temperature}")
        if self.max_step_tokens < 1:
            raise ValueError(
                f"StepRequest.max_step_tokens must be >= 1, got {self.max_step_tokens}"
            )


@dataclass(frozen=True)
class StepSample:
    """One sampled step. See the module docstring for the token contract."""

    token_ids: tuple[int, ...]
    text: str
    logprob_sum: float
    logprob_mean: float
    finish_reason: FinishReason
    value: float | None = None
    retokenized: bool = False
    # The ids the value was read at / the step is trained on: token_ids, plus the delimiter's
    # canonical ids when the step ended with EOS. Empty means "same as token_ids".
    value_ids: tuple[int, ...] = ()
    # Prompt/state tokens the backend computed to sample this request (cost accounting only;
    # reported on one sample per distinct state, 0 on the others).
    prefill_tokens: int = 0
    # Per id of token_ids: 1 sampled by the policy, 0 inserted (a tool's output). Empty: all 1.
    sampled_mask: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.sampled_mask and (
            len(self.sampled_mask) != len(self.token_ids)
            or any(m not in (0, 1) for m in self.sampled_mask)
        ):
            raise ValueError(
                f"sampled_mask must be empty or one 0/1 per token id ({len(self.token_ids)}), "
                f"got {list(self.sampled_mask)}"
            )
        if self.finish_reason not in FINISH_REASONS:
            raise ValueError(
                f"finish_reason must be one of {FINISH_REASONS}: {self.finish_reason!r}"
            )
        if self.value is not None and not -1.0 <= self.value <= 1.0:
            raise ValueError(f"a value must lie in [-1, 1], got {self.value}")

    @property
    def ids_for_value(self) -> tuple[int, ...]:
        return self.value_ids or self.token_ids

    @property
    def sampled_count(self) -> int:
        """How many of ``token_ids`` the policy sampled (generation cost)."""
        return sum(self.sampled_mask) if self.sampled_mask else len(self.token_ids)

    @property
    def eos_appended(self) -> bool:
        return bool(self.value_ids) and self.value_ids != self.token_ids


@runtime_checkable
class StepPolicy(Protocol):
    """What search needs from a model. Implemented by engines.backends.hf / .vllm and test fakes."""

    step_format: StepFormat

    @property
    def has_value_head(self) -> bool: ...

    def encode_prompt(self, question: str) -> tuple[int, ...]:
        """Token ids of the format's prompt for ``question`` (chat template applied if any)."""
        ...

    def sample_steps(
        self, requests: Sequence[StepRequest], *, with_values: bool = True
    ) -> list[list[StepSample]]:
        """For each request, ``request.n`` samples (in order). Batched across requests."""
        ...

    def values(self, states: Sequence[Sequence[int]]) -> list[float]:
        """Value-head estimates for whole states (each ending at a step's last token)."""
        ...

    def decode(self, token_ids: Sequence[int]) -> str: ...
