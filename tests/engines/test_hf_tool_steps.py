"""Tool steps on the transformers backend (core.tool_policy around HFStepPolicy).

Built from the random tiny model's own greedy text, like test_hf_stop_strings: the code end is
the text of one of its greedy tokens, so the loop stops there; the wrapper runs the step's code
in the sandbox and appends the output as unsampled ids. Checked against full forwards: the prior
and the DPO log-prob are those of the sampled ids alone (with or without the output appended),
the value is read after the output.
"""

from __future__ import annotations

import pytest
import torch

from svpo_harness.core.policy import StepRequest
from svpo_harness.core.schemas import StepQRecord
from svpo_harness.core.step_format import ARITH
from svpo_harness.core.tool_policy import OUTPUT_CLOSE, OUTPUT_OPEN, ToolStepPolicy
from svpo_harness.engines.backends.hf import HFStepPolicy
from svpo_harness.engines.collate import collate, prepare_examples, score_rows
from svpo_harness.engines.tokenization import decodes_after
from svpo_harness.sandbox import sandbox_runner

NEVER = "@@@@@@@@"
QUESTION = "Ann has 12 + 7 = 19 pens and gives away 4 of them."
TOL = 1e-5
BASE = ARITH.with_overrides(delimiter=NEVER, stop_sequences=())


def _greedy(policy, state, tokens: int = 16):
    req = StepRequest(tuple(state), n=1, seed=0, temperature=0.0, max_step_tokens=tokens)
    return policy.sample_steps([req])[0][0]


def _code_end(tokenizer, prompt, ids) -> tuple[int, str]:
    """A greedy token k >= 2 whose text first appears at token k: (k, its text)."""
    base = tokenizer.decode(list(prompt))
    texts = [tokenizer.decode(list(prompt) + list(ids[: k + 1]))[len(base) :] for k in range(16)]
    for k in range(2, len(texts)):
        new = texts[k][len(texts[k - 1]) :]
        if new.strip() and new not in texts[k - 1]:
            return k, new
    raise AssertionError("no usable token in the greedy text")


def _step_q(prefix, step, mask=()) -> StepQRecord:
    return StepQRecord(
        question_id="q",
        prefix_ids=tuple(prefix),
        step_ids=tuple(step),
        step_text="",
        q=0.5,
        n=1,
        step_sampled_mask=tuple(mask),
        tokenizer_fingerprint="fp",
        step_format="arith",
    )


@torch.no_grad()
def test_a_code_step_gets_its_output_as_unsampled_ids(tiny_model, tiny_tokenizer, tiny_head, ref):
    plain = HFStepPolicy(tiny_model, tiny_tokenizer, BASE, tiny_head)
    prompt = plain.encode_prompt(QUESTION)
    free = _greedy(plain, prompt)
    k, end = _code_end(tiny_tokenizer, prompt, free.token_ids)
    fmt = BASE.with_overrides(extra={"code_end": end})
    inner = HFStepPolicy(tiny_model, tiny_tokenizer, fmt, tiny_head)
    step = _greedy(inner, prompt)  # the loop stops at the code end like at the delimiter
    assert step.finish_reason == "delimiter" and not step.retokenized
    assert step.token_ids == free.token_ids[: k + 1] and step.text.endswith(end)

    got = _greedy(ToolStepPolicy(inner, run=sandbox_runner, timeout=5.0), prompt)
    n = len(step.token_ids)
    added = OUTPUT_OPEN + OUTPUT_CLOSE + NEVER  # no <code> in random text: empty program
    assert got.text == step.text + added and got.token_ids[:n] == step.token_ids
    assert decodes_after(tiny_tokenizer, prompt + step.token_ids, got.token_ids[n:], added)
    assert got.sampled_mask == (1,) * n + (0,) * (len(got.token_ids) - n)
    # prior: the sampled ids' log-probs, unchanged by the output after them
    assert (got.logprob_sum, got.logprob_mean) == (step.logprob_sum, step.logprob_mean)
    assert got.logprob_sum == pytest.approx(sum(ref.logprobs(tiny_model, prompt, step.token_ids)))
    # value: at the last output id, fed as input
    assert got.value == pytest.approx(
        ref.value(tiny_model, tiny_head, prompt + got.token_ids), abs=TOL
    )
    assert abs(got.value - step.value) > 1e-4

    # DPO/SFT log-prob of the stored step: the output ids never count
    records = [
        _step_q(prompt, got.token_ids, got.sampled_mask),
        _step_q(prompt, step.token_ids),
        _step_q(prompt, got.token_ids),  # the same ids as if all were sampled: differs
    ]
    examples, _ = prepare_examples(records, 256)
    logps = score_rows(tiny_model, collate(examples, pad_id=0)).logps
    assert logps[0].item() == pytest.approx(logps[1].item(), abs=TOL)
    assert logps[0].item() == pytest.approx(step.logprob_sum, abs=1e-4)
    assert abs(logps[2].item() - logps[0].item()) > 1e-3


def test_wrapping_needs_a_tool_format_and_the_same_step_ends(tiny_model, tiny_tokenizer):
    plain = HFStepPolicy(tiny_model, tiny_tokenizer, BASE)
    with pytest.raises(ValueError, match="not a tool format"):
        ToolStepPolicy(plain, run=sandbox_runner)
    fmt = BASE.with_overrides(extra={"code_end": "</code>"})
    with pytest.raises(ValueError, match="must stop at"):
        ToolStepPolicy(plain, fmt, run=sandbox_runner)
