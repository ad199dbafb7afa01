"""Tool-integrated steps (method.md section 2, the ``tool`` step format) around any StepPolicy.

The inner policy samples a step until the format's delimiter (``</step>``) or its code end
(``</code>``). A step that stops at the code end has its code run by the code runner it was
given (``run``, one batch per call; ``svpo_harness.sandbox.sandbox_runner`` for real runs: the
layers above core own the sandbox and pass it in, core never imports it) and
``<output>...</output></step>`` is appended to it as ids the policy did not sample
(``StepSample.sampled_mask`` 0):

- they are part of the state (the next step is sampled after them) and the value is read after
  them (``inner.values`` on state + step + output);
- ``logprob_sum``/``logprob_mean`` stay those of the sampled ids (the MCTS prior, beam ranking),
  and training excludes them (``TreeNode.sampled_mask``, ``engines.collate``);
- their ids come from ``inner.encode_continuation(context, text)``: the text encoded where it
  follows the stored ids (method.md 2.1), the stored ids never re-encoded.

What the model sees follows the reference's Python tool, which its released models were trained
with: a program that prints nothing shows the value of its last expression (as in a notebook);
a lone float is shown rounded to 4 decimals when that is shorter; an error shows its last line
(``ZeroDivisionError: division by zero``, ``timed out after 5 s``); more than
``max_output_chars`` keeps the first and last halves around ``...``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from svpo_harness.core.policy import StepRequest, StepSample
from svpo_harness.core.step_format import StepFormat

DEFAULT_TIMEOUT = 5.0  # seconds of wall time per program
DEFAULT_MAX_OUTPUT_CHARS = 500  # the reference's cap
CODE_START = "<code>"
# What follows ``</code>``: the output, then the step's end (the format's delimiter).
OUTPUT_OPEN, OUTPUT_CLOSE = "\n<output>\n", "\n</output>\n"

# The code runner: (codes, timeout) -> one (stdout, error or None) per code, in order.
# svpo_harness.sandbox.sandbox_runner is the real one; tests may pass a fake.
RunFn = Callable[[Sequence[str], float], list[tuple[str, str | None]]]


def step_code(text: str, code_end: str) -> str:
    """The program of a step: the text between its last ``<code>`` and the code end."""
    body = text[: text.rfind(code_end)] if code_end in text else text
    start = body.rfind(CODE_START)
    return body[start + len(CODE_START) :].strip("\n") if start >= 0 else ""


def as_program(code: str) -> str:
    """``code``, or, when it calls ``print`` nowhere and ends with an expression, ``code`` that
    also prints that expression's value (unless None). Code that does not parse is returned as
    written: the sandbox reports its SyntaxError."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return code
    prints = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
        for n in ast.walk(tree)
    )
    if prints or not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return code
    last = ast.unparse(tree.body[-1].value)
    tail = f"__value = ({last})\nif __value is not None:\n    print(__value)\n"
    return ast.unparse(ast.Module(body=tree.body[:-1], type_ignores=[])) + "\n" + tail


def format_output(stdout: str, error: str | None, max_chars: int) -> str:
    """What the model sees of a run (see the module doc), at most ``max_chars`` + 3."""
    if error is not None:
        lines = [line for line in error.strip().splitlines() if line.strip()]
        shown = lines[-1].strip() if lines else "Error"
    else:
        shown = stdout.strip("\n")
        try:
            number = float(shown)
        except ValueError:
            number = math.nan
        if math.isfinite(number) and len(str(round(number, 4))) < len(shown):
            shown = str(round(number, 4))
    if len(shown) > max_chars:
        half = max_chars // 2
        shown = shown[:half] + "..." + shown[len(shown) - half :]
    return shown


class ToolStepPolicy:
    """A StepPolicy that runs each step's code and inserts its output (see the module doc)."""

    def __init__(
        self,
        inner: Any,
        step_format: StepFormat | None = None,
        *,
        run: RunFn,
        timeout: float = DEFAULT_TIMEOUT,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    ) -> None:
        fmt = step_format if step_format is not None else inner.step_format
        if fmt.code_end is None:
            raise ValueError(f"step format {fmt.name!r} has no code end: not a tool format")
        if fmt.step_ends != inner.step_format.step_ends:
            raise ValueError(
                f"the inner policy must stop at {fmt.step_ends}, it stops at "
                f"{inner.step_format.step_ends}"
            )
        if not callable(getattr(inner, "encode_continuation", None)):
            raise ValueError(
                f"step format {fmt.name!r} (tool steps) is not supported by "
                f"{type(inner).__name__} yet: it needs encode_continuation(context_ids, text) "
                "and a stop at the code end (the transformers backend has both)"
            )
        if not timeout > 0 or max_output_chars < 1:
            raise ValueError("timeout must be > 0 and max_output_chars >= 1")
        self.inner = inner
        self.step_format = fmt
        self.timeout = float(timeout)
        self.max_output_chars = max_output_chars
        self._run = run
        self.programs_run = 0  # programs sent to the sandbox over this policy's calls

    # -- the protocol: everything but sampling is the inner policy's --------------------------
    @property
    def has_value_head(self) -> bool:
        return self.inner.has_value_head

    @property
    def tokenizer_fingerprint(self) -> str:
        return self.inner.tokenizer_fingerprint

    def encode_prompt(self, question: str) -> tuple[int, ...]:
        return self.inner.encode_prompt(question)

    def encode_continuation(self, context_ids: Sequence[int], text: str) -> tuple[int, ...]:
        return self.inner.encode_continuation(context_ids, text)

    def values(self, states: Sequence[Sequence[int]]) -> list[float]:
        return self.inner.values(states)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.inner.decode(token_ids)

    def __getattr__(self, name: str) -> Any:  # stats, prefix cache, ... of the inner policy
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    # -- sampling -------------------------------------------------------------------------------
    def is_code_step(self, sample: StepSample) -> bool:
        end = self.step_format.code_end or ""
        return sample.finish_reason == "delimiter" and sample.text.endswith(end)

    def sample_steps(
        self, requests: Sequence[StepRequest], *, with_values: bool = True
    ) -> list[list[StepSample]]:
        out = self.inner.sample_steps(requests, with_values=with_values)
        todo = [
            (r, j)
            for r, samples in enumerate(out)
            for j, sample in enumerate(samples)
            if self.is_code_step(sample)
        ]
        if not todo:
            return out
        code_end = self.step_format.code_end or ""
        codes = [as_program(step_code(out[r][j].text, code_end)) for r, j in todo]
        unique = list(dict.fromkeys(codes))  # siblings often write the same program
        self.programs_run += len(unique)
        ran = dict(zip(unique, self._run(unique, self.timeout), strict=True))
        grown: list[StepSample] = []
        for (r, j), code in zip(todo, codes, strict=True):
            shown = format_output(*ran[code], self.max_output_chars)
            grown.append(self._with_output(requests[r].state_ids, out[r][j], shown))
        if with_values and self.has_value_head:  # the value after the output, in one batch
            states = [
                tuple(requests[r].state_ids) + s.token_ids
                for (r, _), s in zip(todo, grown, strict=True)
            ]
            values = self.values(states)
            grown = [replace(s, value=v) for s, v in zip(grown, values, strict=True)]
        result = [list(samples) for samples in out]
        for (r, j), sample in zip(todo, grown, strict=True):
            result[r][j] = sample
        return result

    def _with_output(self, state: Sequence[int], sample: StepSample, shown: str) -> StepSample:
        text = OUTPUT_OPEN + shown + OUTPUT_CLOSE + self.step_format.delimiter
        context = (*state, *sample.token_ids)
        ids = tuple(self.inner.encode_continuation(context, text))
        mask = sample.sampled_mask or (1,) * len(sample.token_ids)
        return replace(
            sample,
            token_ids=sample.token_ids + ids,
            text=sample.text + text,
            value=None,
            value_ids=(),
            sampled_mask=mask + (0,) * len(ids),
        )


def with_tools(policy: Any, run: RunFn, **kwargs: Any) -> Any:
    """``policy`` wrapped in a ToolStepPolicy running code with ``run`` when its step format is
    a tool format (``tool``); any other policy (``cot``, ``arith``, already wrapped) is returned
    unchanged."""
    if isinstance(policy, ToolStepPolicy) or policy.step_format.code_end is None:
        return policy
    return ToolStepPolicy(policy, run=run, **kwargs)
