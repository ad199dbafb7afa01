"""SFT examples as token ids: prompt ids (no loss) + solution ids + EOS (loss).

Sources: the built-in arithmetic world, ``sft`` records (text) and ``path`` records (ids as
sampled by annotation, method.md section 4). Text is tokenised once, here, by the same prompt
encoder the backends use, so training sees prompts exactly as search will.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svpo_harness.core.step_format import StepFormat


@dataclass(frozen=True)
class TokenExample:
    input_ids: tuple[int, ...]
    prompt_len: int  # tokens before the solution: no loss on them
    # Per id after the prompt: 1 = in the loss, 0 = not sampled by the policy (a tool's output,
    # from a path record's step_sampled_masks). Empty = all 1.
    scored: tuple[int, ...] = ()

    @property
    def n_target_tokens(self) -> int:
        return len(self.input_ids) - self.prompt_len


@dataclass
class SFTData:
    examples: list[TokenExample]
    truncated: int = 0  # examples cut at max_length
    boundary_retokenized: int = 0  # solutions whose first token merged with the prompt's last


def encode_prompt_ids(tokenizer: Any, step_format: StepFormat, question: str) -> list[int]:
    """The prompt as the backends encode it (the tokenizer's own special tokens, e.g. BOS)."""
    return list(tokenizer(step_format.prompt(question))["input_ids"])


def solution_ids(
    tokenizer: Any, prompt: str, prompt_ids: list[int], solution: str
) -> tuple[list[int], bool]:
    """Ids of ``solution`` as they follow ``prompt`` (method.md 2.1, text-only inputs).

    ``encode(prompt + solution)`` after its longest common prefix with ``encode(prompt)``. If the
    boundary merged (the common prefix is shorter than the prompt), the solution is encoded on
    its own instead, so the prompt ids stay exactly what search feeds; flagged as retokenized.
    """
    full = list(tokenizer(prompt + solution)["input_ids"])
    common = 0
    for a, b in zip(full, prompt_ids, strict=False):
        if a != b:
            break
        common += 1
    if common == len(prompt_ids):
        return full[common:], False
    return list(tokenizer(solution, add_special_tokens=False)["input_ids"]), True


def inserted_spans(text: str, step_format: StepFormat) -> list[tuple[int, int]]:
    """Character spans of ``text`` that a tool inserts (core.tool_policy): from each code end
    followed by ``<output>`` to the end of that step (its delimiter included)."""
    from svpo_harness.core.tool_policy import OUTPUT_OPEN

    if step_format.code_end is None:
        return []
    marker = step_format.code_end + OUTPUT_OPEN
    spans = []
    at = text.find(marker)
    while at >= 0:
        start = at + len(step_format.code_end)
        stop = text.find(step_format.delimiter, start)
        end = len(text) if stop < 0 else stop + len(step_format.delimiter)
        spans.append((start, end))
        at = text.find(marker, end)
    return spans


def tool_solution_ids(
    tokenizer: Any, prompt_ids: list[int], solution: str, step_format: StepFormat
) -> tuple[list[int], list[int]]:
    """Ids and sampled mask of a tool-format solution, encoded piece by piece as search makes
    them: the written parts and the tools' outputs each continue the ids before them
    (method.md 2.1); the outputs are marked 0 (no loss)."""
    from svpo_harness.engines.tokenization import continuation_ids

    ids: list[int] = []
    mask: list[int] = []
    pos = 0
    for start, end in [*inserted_spans(solution, step_format), (len(solution), len(solution))]:
        for text, flag in ((solution[pos:start], 1), (solution[start:end], 0)):
            if text:
                piece = continuation_ids(tokenizer, prompt_ids + ids, text)
                ids += piece
                mask += [flag] * len(piece)
        pos = end
    return ids, mask


def build_sft_data(
    source: str, tokenizer: Any, step_format: StepFormat, max_length: int, arith_n: int = 20000
) -> SFTData:
    """All SFT examples of ``source`` ("arith" or a JSONL file of sft/path records)."""
    from svpo_harness.core.jsonl_io import read_jsonl_records
    from svpo_harness.core.schemas import PathRecord, SFTExample

    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token: SFT needs one to teach the model to stop")
    data = SFTData(examples=[])

    def add(prompt_ids: list[int], target_ids: list[int], mask: list[int] | None = None) -> None:
        ids = prompt_ids + target_ids + [eos]
        scored = [*mask, 1] if mask is not None and 0 in mask else []
        if len(ids) > max_length:
            data.truncated += 1
            ids = ids[:max_length]
            scored = scored[: max(0, max_length - len(prompt_ids))]
        if len(ids) > len(prompt_ids):
            data.examples.append(TokenExample(tuple(ids), len(prompt_ids), tuple(scored)))

    def add_text(question: str, steps: list[str], solution: str | None = None) -> None:
        prompt = step_format.prompt(question)
        prompt_ids = encode_prompt_ids(tokenizer, step_format, question)
        if solution is None:
            solution = step_format.delimiter.join(steps)
        if step_format.code_end is not None:  # tool steps: their outputs get no loss
            add(prompt_ids, *tool_solution_ids(tokenizer, prompt_ids, solution, step_format))
            return
        target, merged = solution_ids(tokenizer, prompt, prompt_ids, solution)
        data.boundary_retokenized += merged
        add(prompt_ids, target)

    if source == "arith":
        from svpo_harness.core.arith import arith_split

        # The demonstrations are the careless teacher's (core/arith.py explains why), in the
        # tool layout (core/arith_tool.py) when the format runs code.
        for problem in arith_split("train", n=arith_n):
            if step_format.code_end is not None:
                from svpo_harness.core.arith_tool import teacher_tool_solution

                add_text(problem.question, [], teacher_tool_solution(problem))
            else:
                add_text(problem.question, list(problem.teacher_steps or problem.solution_steps))
        return data

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"--data {source}: no such file (a JSONL of sft/path records, or 'arith')"
        )
    for record in read_jsonl_records(path, ("sft", "path")):
        if isinstance(record, SFTExample):
            add_text(record.question, list(record.steps))
        elif isinstance(record, PathRecord):
            steps = [i for step in record.step_ids for i in step]
            masks = record.step_sampled_masks or ((),) * len(record.step_ids)
            mask = [
                m
                for step, sm in zip(record.step_ids, masks, strict=True)
                for m in (sm or (1,) * len(step))
            ]
            add(list(record.prompt_ids), steps, mask)  # a tool's output ids get no loss
    if not data.examples:
        raise ValueError(f"{path}: no sft or path records found")
    return data
