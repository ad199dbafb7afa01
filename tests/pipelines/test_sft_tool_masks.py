"""SFT on annotated paths: ids a path marks as not sampled (a tool's output) get no loss."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from svpo_harness.core.schemas import PathRecord
from svpo_harness.core.step_format import ARITH
from svpo_harness.pipelines.train.sft_data import build_sft_data
from svpo_harness.pipelines.train.train import sft_examples


def _path(qid: str, steps, masks=()) -> dict:
    record = PathRecord(
        question_id=qid,
        question="q",
        prompt_ids=(1, 40, 41),
        step_ids=tuple(tuple(s) for s in steps),
        step_texts=("",) * len(steps),
        answer="5",
        tokenizer_fingerprint="fp",
        step_format="arith",
        step_sampled_masks=tuple(tuple(m) for m in masks),
    )
    data = {"type": "path", **asdict(record)}
    return json.loads(json.dumps(data))


@pytest.fixture()
def tokenizer(micro_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(micro_model)


def test_path_masks_reach_the_sft_rows(tokenizer, tmp_path):
    eos = tokenizer.eos_token_id
    data = tmp_path / "paths.jsonl"
    rows = [
        _path("tool", [(50, 51, 52, 53), (54, 55)], [(1, 1, 0, 0), ()]),
        _path("plain", [(50, 51), (54,)]),
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sft = build_sft_data(str(data), tokenizer, ARITH, max_length=64)
    tool, plain = sft.examples
    assert tool.input_ids == (1, 40, 41, 50, 51, 52, 53, 54, 55, eos)
    assert tool.scored == (1, 1, 0, 0, 1, 1, 1)  # EOS is scored
    assert plain.scored == ()
    examples = sft_examples(sft)
    assert examples[0].rows[0].scored == (1, 1, 0, 0, 1, 1, 1)
    assert examples[1].rows[0].scored == (1,) * 4
    cut = build_sft_data(str(data), tokenizer, ARITH, max_length=6).examples[0]
    assert cut.input_ids == (1, 40, 41, 50, 51, 52) and cut.scored == (1, 1, 0)


def test_tool_format_text_records_leave_the_outputs_out_of_the_loss(tokenizer, tmp_path):
    from svpo_harness.core.step_format import TOOL

    steps = [
        "<step>\n<p>\nadd\n</p>\n<code>\nprint(1 + 2)\n</code>\n<output>\n3\n</output>\n",
        "<step>\n<p>\ntwice\n</p>\n<code>\n3 * 2\n</code>\n<output>\n6\n</output>\n",
        "<step>\n<p>\nFinal Answer: 6\n</p>\n",
    ]
    record = {
        "type": "sft",
        "schema_version": 1,
        "question_id": "q1",
        "question": "What is (1 + 2) * 2?",
        "steps": steps,
        "step_format": "tool",
    }
    data = tmp_path / "sft.jsonl"
    data.write_text(json.dumps(record) + "\n")
    (ex,) = build_sft_data(str(data), tokenizer, TOOL, max_length=512).examples
    target = ex.input_ids[ex.prompt_len : -1]
    mask = ex.scored[:-1]
    assert len(mask) == len(target) and ex.scored[-1] == 1  # EOS scored

    def text(flag: int) -> str:
        return tokenizer.decode([t for t, m in zip(target, mask, strict=True) if m == flag])

    solution = TOOL.delimiter.join(steps)
    assert tokenizer.decode(list(target)) == solution
    assert text(0) == "\n<output>\n3\n</output>\n</step>\n" + "\n<output>\n6\n</output>\n</step>\n"
    assert "Final Answer: 6" in text(1) and "<output>" not in text(1)
