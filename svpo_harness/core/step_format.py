"""Step formats: how a solution is cut into steps, and the one prompt template per format.

method.md section 2: a step ends at the format's delimiter, the delimiter belongs to the step it
ends, and a step is final only when it carries a *marked* answer (`\\boxed{}`, `The answer is`,
`Final Answer:`). The same template is used by annotation, training and the lm-eval tasks, and the
whole format is recorded in every checkpoint and tree file (``to_dict``/``from_dict``), so a model
is always prompted the way it was trained.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

# The template's single placeholder; kept as a constant so validators can look for it.
QUESTION_SLOT = "{question}"

# Filled with str.replace (never str.format), so braces are written as the model should see them.
COT_TEMPLATE = (
    "Solve the following math problem step by step. Put each step in its own paragraph, "
    "separated by a blank line, and finish with the final answer in the form \\boxed{ANSWER}."
    "\n\nProblem: {question}\n\nSolution:\n"
)
# The synthetic arithmetic world (svpo_harness.core.arith) is written one step per line and the
# tiny demo model is trained from scratch on exactly this template.
ARITH_TEMPLATE = "Question: {question}\nAnswer:\n"
# Tool-integrated steps, the reference's (AlphaMath/SVPO, Super_MARIO) layout, which its released
# models were trained on: the bare question tag, then steps
# "<step>\n<p>\nthought\n</p>\n<code>\ncode\n</code>\n<output>\noutput\n</output>\n</step>\n"
# and a final "<step>\n<p>\nthought\n</p>\n<p>\nFinal Answer: ...\n</p>\n</step>\n". A step stops
# after its code, the code runs in the sandbox and its output is inserted (core.tool_policy).
TOOL_TEMPLATE = "<question> {question} </question>\n"
# StepFormat.extra key: a string that also ends a step (before the delimiter) and means "run the
# code now"; only the tool format has one.
CODE_END = "code_end"


@dataclass(frozen=True)
class StepFormat:
    """A pluggable step format (method.md section 2). Frozen so it can key caches."""

    name: str
    delimiter: str
    prompt_template: str
    # Stop sequences for whole-solution generation (lm-eval `until`); never the delimiter.
    stop_sequences: tuple[str, ...] = ()
    max_steps: int = 10
    max_step_tokens: int = 256
    # A step whose stripped text is shorter than this is a terminal "empty" step (reward -1).
    min_step_chars: int = 1
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.delimiter:
            raise ValueError(f"step format {self.name!r}: the delimiter must be non-empty")
        if self.prompt_template.count(QUESTION_SLOT) != 1:
            raise ValueError(
                f"step format {self.name!r}: prompt_template must contain {QUESTION_SLOT} once"
            )
        if self.delimiter in self.stop_sequences:
            raise ValueError(
                f"step format {self.name!r}: the delimiter {self.delimiter!r} cannot also be a "
                "stop sequence (it would cut a solution after its first step)"
            )
        if self.max_steps < 1 or self.max_step_tokens < 1:
            raise ValueError(
                f"step format {self.name!r}: max_steps and max_step_tokens must be >= 1"
            )
        code_end = self.extra.get(CODE_END)
        if code_end is not None and (
            not isinstance(code_end, str)
            or not code_end
            or code_end in (self.delimiter, *self.stop_sequences)
        ):
            raise ValueError(
                f"step format {self.name!r}: extra.{CODE_END} must be a non-empty string other "
                f"than the delimiter and the stop sequences, got {code_end!r}"
            )

    # -- tool steps ------------------------------------------------------------------------------
    @property
    def code_end(self) -> str | None:
        """Where a tool step pauses for its code to run (``</code>``); None: not a tool format."""
        return self.extra.get(CODE_END)

    @property
    def step_ends(self) -> tuple[str, ...]:
        """Every string that ends sampling of a step: the delimiter, then the code end if any."""
        return (self.delimiter,) if self.code_end is None else (self.delimiter, self.code_end)

    # -- prompts and steps -------------------------------------------------------------------
    def prompt(self, question: str) -> str:
        """The prompt for one question (plain text; chat templates are applied by the caller)."""
        return self.prompt_template.replace(QUESTION_SLOT, question.strip())

    def split_steps(self, solution: str) -> list[str]:
        """Cut a solution text into steps; each step keeps the delimiter that ends it.

        Used for text-only inputs (gold solutions, pairs from elsewhere). Joining the result
        gives back the input exactly, except that runs of empty steps are merged into the
        previous step so no step is whitespace only.
        """
        steps: list[str] = []
        rest = solution
        while rest:
            cut = rest.find(self.delimiter)
            if cut < 0:
                steps.append(rest)
                break
            piece, rest = rest[: cut + len(self.delimiter)], rest[cut + len(self.delimiter) :]
            if steps and not piece.strip():
                steps[-1] += piece
            else:
                steps.append(piece)
        return steps

    def is_empty_step(self, step_text: str) -> bool:
        return len(step_text.strip()) < self.min_step_chars

    def is_final_step(self, step_text: str) -> bool:
        """A step is final only when it carries a marked answer (never the last-number fallback)."""
        from svpo_harness.grading import has_marked_answer

        return has_marked_answer(step_text)

    # -- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop_sequences"] = list(self.stop_sequences)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepFormat:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown step format fields: {sorted(unknown)}")
        fields = dict(data)
        fields["stop_sequences"] = tuple(fields.get("stop_sequences", ()))
        return cls(**fields)

    def with_overrides(self, **changes: Any) -> StepFormat:
        return replace(self, **changes)


COT = StepFormat(
    name="cot",
    delimiter="\n\n",
    prompt_template=COT_TEMPLATE,
    stop_sequences=("Problem:", "<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"),
    max_steps=10,
    max_step_tokens=256,
)

ARITH = StepFormat(
    name="arith",
    delimiter="\n",
    prompt_template=ARITH_TEMPLATE,
    stop_sequences=("\n\n", "Question:"),
    max_steps=10,
    max_step_tokens=48,
)

TOOL = StepFormat(
    name="tool",
    delimiter="</step>\n",
    prompt_template=TOOL_TEMPLATE,
    stop_sequences=("<question>", "<|im_end|>", "<|endoftext|>", "</s>", "<|eot_id|>"),
    max_steps=10,
    max_step_tokens=512,
    extra={CODE_END: "</code>"},
)

STEP_FORMATS: dict[str, StepFormat] = {fmt.name: fmt for fmt in (COT, ARITH, TOOL)}


def get_step_format(spec: str | dict[str, Any] | StepFormat) -> StepFormat:
    """Resolve a format by name, from a recorded dict, or pass an object through."""
    if isinstance(spec, StepFormat):
        return spec
    if isinstance(spec, dict):
        return StepFormat.from_dict(spec)
    try:
        return STEP_FORMATS[spec]
    except KeyError:
        raise ValueError(
            f"unknown step format {spec!r}; known formats: {', '.join(sorted(STEP_FORMATS))}"
        ) from None
