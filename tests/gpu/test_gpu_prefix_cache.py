"""The prefix KV cache on CUDA tensors: searches with the cache on (roomy, and small enough to
evict mid-search) and off give the same steps, values within 1e-4 (tests/engines/
test_prefix_cache.py checks the same on the CPU with its own tiny model, to 1e-5)."""

from __future__ import annotations

import pytest
from gpu_helpers import compare

from svpo_harness.core.search import RootState, SearchOptions, run_search

VALUE_TOL = 1e-4
# test_prefix_cache.py's settings: short searches where every decoding revisits states
SEARCHES = {
    "greedy": SearchOptions(max_depth=4, max_step_tokens=8),
    "sbs": SearchOptions(b1=2, b2=3, max_depth=4, max_step_tokens=8, temperature=1.0),
    "bon": SearchOptions(n_samples=3, max_depth=4, max_step_tokens=8, temperature=1.0),
    "maj": SearchOptions(n_samples=3, max_depth=4, max_step_tokens=8, temperature=1.0),
}


EVICTING_TOKENS = 96  # a cache of ~2 prompts' KV (measured: both models evict and still save)


def _cache_mb(model, size: str) -> float:
    if size == "roomy":
        return 64.0
    cfg = model.config
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * 4  # K and V, fp32
    per_token *= cfg.hidden_size // cfg.num_attention_heads
    return per_token * EVICTING_TOKENS / 2**20


@pytest.mark.gpu
@pytest.mark.gpu_timeout(120)
@pytest.mark.parametrize("size", ["roomy", "evicting"])
@pytest.mark.parametrize("model", ["demo", "tiny_llama"])
def test_cache_on_and_off_give_the_same_steps(
    request, model, size, device, arith_questions, record_property
):
    from svpo_harness.engines.backends.hf import HFStepPolicy

    path = request.getfixturevalue(model)
    off = HFStepPolicy.from_checkpoint(path, device=str(device), prefix_cache=False)
    cache_mb = _cache_mb(off.model, size)
    on = HFStepPolicy.from_checkpoint(path, device=str(device), prefix_cache_mb=cache_mb)
    assert on.prefix_cache is not None and off.prefix_cache is None
    roots = [RootState(i, off.encode_prompt(q)) for i, q in enumerate(arith_questions[:4])]
    worst = {}
    for decoding, opts in SEARCHES.items():
        expected = run_search(decoding, roots, off, opts, seed=3)
        got = run_search(decoding, roots, on, opts, seed=3)
        worst[decoding] = compare(got, expected, VALUE_TOL)
    record_property("max_value_diff", worst)
    assert on.stats["prefill_tokens"] < off.stats["prefill_tokens"]
    record_property(
        "prefill_tokens", {"on": on.stats["prefill_tokens"], "off": off.stats["prefill_tokens"]}
    )
    if size == "evicting":
        assert on.prefix_cache.stats.evicted_segments > 0
        assert on.prefix_cache.bytes <= on.prefix_cache.max_bytes
    else:  # the cached keys and values live on the device
        chain, pos = on.prefix_cache.match(roots[0].prompt_ids)
        assert pos > 0
        keys = on.prefix_cache.chain_kv(chain)[0][0]
        assert keys.device.type == device.type
