"""bf16 weights on CUDA: the value head's reads agree with the fp32 model's within BF16_VALUE,
on the shipped demo model and a tiny random Llama; a bf16 SBS search runs with finite values."""

from __future__ import annotations

import math

import pytest
import torch
from gpu_helpers import policy, search

# The CPU bound of tests/engines/test_hf_policy.py (measured there: 0.025 at most): bf16 rounds
# the hidden state to 8 bits of mantissa; the head itself computes in fp32 (value_head.py).
BF16_VALUE = 0.06
# Both heads are scaled by the same factor so values spread over (-1, 1): a fresh head's
# N(0, 0.02) weights give values near 0, where any tolerance would pass.
HEAD_SCALE = {"demo": 10.0, "tiny_llama": 10.0}


def _states(pol, questions: list[str]) -> list[tuple[int, ...]]:
    """Each question's prompt and every prefix of its greedy path."""
    results, _ = search(pol, "greedy", questions)
    states = []
    for q, r in zip(questions, results, strict=True):
        state = pol.encode_prompt(q)
        states.append(state)
        for step in r.step_token_ids:
            state = state + tuple(step)
            states.append(state)
    return states


@pytest.mark.gpu
@pytest.mark.gpu_timeout(120)
@pytest.mark.parametrize("model", ["demo", "tiny_llama"])
def test_bf16_values_match_fp32(request, model, device, arith_questions, record_property):
    path = request.getfixturevalue(model)
    fp32, bf16 = policy(path, device, "float32"), policy(path, device, "bfloat16")
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
    with torch.no_grad():
        for pol in (fp32, bf16):
            pol.value_head.linear.weight.mul_(HEAD_SCALE[model])
    states = _states(fp32, arith_questions[:6])
    want, got = fp32.values(states), bf16.values(states)
    diffs = [abs(a - b) for a, b in zip(got, want, strict=True)]
    record_property("states", len(states))
    record_property("max_abs_value_diff", round(max(diffs), 5))
    record_property("value_range", [round(min(want), 3), round(max(want), 3)])
    assert max(want) - min(want) > 0.2  # the values spread: the comparison means something
    assert max(diffs) <= BF16_VALUE
    results, _ = search(bf16, "sbs", arith_questions[:3])
    values = [c.value for r in results for c in r.tree if c.value is not None]
    assert values and all(math.isfinite(v) for v in values)
