"""The HF step sampler on CUDA against the CPU (fp32, the shipped demo model): greedy, SBS(3,5)
and maj@5 give the same texts and trees, values within 1e-4; and what search costs on the GPU,
as time ratios to greedy next to AlphaMath's A100 ratios (method.md section 8)."""

from __future__ import annotations

import pytest
import torch
from gpu_helpers import OPTIONS, compare, policy, search

N_QUESTIONS = 10
VALUE_TOL = 1e-4  # fp32 on both sides, TF32 off: only the kernels' summation order differs


def alphamath_ratios() -> dict[str, float | str]:
    """SBS(3,5)/greedy and maj@5/greedy seconds per question, AlphaMath-7B on one A100."""
    from svpo_harness.pipelines.report.report_reference import load_reference

    seconds = {r["name"]: r.get("seconds_per_question") for r in load_reference("alphamath")}
    greedy = seconds["AlphaMath-7B greedy"]
    return {
        "sbs_3_5_over_greedy": round(seconds["AlphaMath-7B SBS(3,5)"] / greedy, 2),
        "maj_5_over_greedy": round(seconds["AlphaMath-7B maj@5"] / greedy, 2),
        "source": "method.md section 8 (Super_MARIO README: MATH, tool format, one A100)",
    }


@pytest.mark.gpu
@pytest.mark.gpu_timeout(180)
def test_cuda_search_matches_the_cpu_and_its_cost(demo, device, arith_questions, record_property):
    questions = arith_questions[:N_QUESTIONS]
    search(policy(demo, device), "greedy", questions[:2])  # warm-up: context, kernels, allocator
    seconds: dict[str, float] = {}
    tokens: dict[str, int] = {}
    worst: dict[str, float] = {}
    for decoding in OPTIONS:
        # a fresh policy per decoding: no prefix cache carried over from the last one
        got, seconds[decoding] = search(policy(demo, device), decoding, questions)
        want, _ = search(policy(demo, torch.device("cpu")), decoding, questions)
        worst[decoding] = compare(got, want, VALUE_TOL)
        tokens[decoding] = sum(r.tokens_generated for r in got)
        assert all(r.text.strip() for r in got)
    assert any(r.value is not None for r in got)  # the head was read on the device
    record_property("max_value_diff", worst)
    record_property(
        "search_cost",
        {
            "model": "shipped demo model, fp32",
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "questions": len(questions),
            "batched": "all questions advance together, one batched call per depth",
            "seconds": {k: round(v, 3) for k, v in seconds.items()},
            "tokens_generated": tokens,
            "sbs_3_5_over_greedy": round(seconds["sbs"] / seconds["greedy"], 2),
            "maj_5_over_greedy": round(seconds["maj"] / seconds["greedy"], 2),
            "alphamath_a100": alphamath_ratios(),
        },
    )
