"""Forwards without a cache (rescoring re-tokenized steps, whole-state values) keep only the
final layer and are chunked by padded tokens (issue 10 item 9): same numbers, bounded memory."""

from __future__ import annotations

import pytest
import torch

from svpo_harness.engines.backends.hf import HFStepPolicy
from svpo_harness.engines.backends.hf_forward import score_steps, state_values, token_chunks

TOL = 1e-5


@pytest.mark.parametrize("budget", [1, 7, 20, 1000])
def test_token_chunks_cover_every_row_once_within_the_budget(budget):
    lengths = [5, 9, 1, 9, 3, 12, 4]
    chunks = token_chunks(lengths, budget)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(lengths)))
    for chunk in chunks:
        width = max(lengths[i] for i in chunk)
        assert len(chunk) == 1 or len(chunk) * width <= budget


class ForwardSpy:
    """Records every forward of the top-level model and of its decoder: (kwargs, shape)."""

    def __init__(self, model) -> None:
        self.top: list[dict] = []
        self.decoder: list[tuple[int, int]] = []
        self._handles = [
            model.register_forward_pre_hook(self._on_top, with_kwargs=True),
            model.get_decoder().register_forward_pre_hook(self._on_decoder, with_kwargs=True),
        ]

    def _on_top(self, module, args, kwargs):
        self.top.append(dict(kwargs))

    def _on_decoder(self, module, args, kwargs):
        self.decoder.append(tuple(kwargs["input_ids"].shape))

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def _rows(tokenizer):
    texts = ["Tom has 3 apples.", "Ann has 12 + 7 = 19 pens and gives away 4.", "Bob?", "x = 1"]
    prefixes = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    steps = [tokenizer.encode(s, add_special_tokens=False) for s in [" 4", " So 5.\n\n", "!", "."]]
    return prefixes, steps


def test_rescoring_keeps_the_final_layer_only_and_chunks_by_tokens(
    tiny_model, tiny_tokenizer, tiny_head, ref
):
    prefixes, steps = _rows(tiny_tokenizer)
    spy = ForwardSpy(tiny_model)
    try:
        scored = score_steps(
            tiny_model, tiny_head, prefixes, steps, 0, torch.device("cpu"), max_tokens=24
        )
    finally:
        spy.close()
    assert not any(kw.get("output_hidden_states") for kw in spy.top)  # no every-layer states
    assert len(spy.decoder) > 1
    assert all(rows == 1 or rows * width <= 24 for rows, width in spy.decoder)
    for prefix, step, (lps, value) in zip(prefixes, steps, scored, strict=True):
        expected_value, expected_lps = ref.scores(tiny_model, tiny_head, prefix, step)
        assert value == pytest.approx(expected_value, abs=TOL)
        assert lps == pytest.approx(expected_lps, abs=1e-4)


def test_whole_state_values_are_chunked_by_tokens(tiny_model, tiny_tokenizer, tiny_head, ref):
    prefixes, steps = _rows(tiny_tokenizer)
    states = [p + s for p, s in zip(prefixes, steps, strict=True)]
    policy = HFStepPolicy(tiny_model, tiny_tokenizer, "arith", tiny_head, max_forward_tokens=30)
    spy = ForwardSpy(tiny_model)
    try:
        values = policy.values(states)
    finally:
        spy.close()
    assert not any(kw.get("output_hidden_states") for kw in spy.top)
    assert len(spy.decoder) > 1 and all(r == 1 or r * w <= 30 for r, w in spy.decoder)
    assert values == pytest.approx([ref.value(tiny_model, tiny_head, s) for s in states], abs=TOL)
    unchunked = state_values(tiny_model, tiny_head, states, 0, torch.device("cpu"))
    assert values == pytest.approx(unchunked, abs=TOL)
