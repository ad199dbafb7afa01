"""The KV cache goes in and out under the name the model's forward declares.

transformers renamed ``past_key_values`` to ``cache`` (the old name is a deprecated alias due to
be removed). Two subclasses of the tiny Llama pin both conventions whatever transformers is
installed: one whose forward takes only ``cache``, one that takes only ``past_key_values``; each
returns the cache under its own name only. The backend must sample exactly what it samples
with the stock model through either.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaForCausalLM

from svpo_harness.core.policy import StepRequest
from svpo_harness.core.step_format import ARITH
from svpo_harness.engines.backends.hf import HFStepPolicy
from svpo_harness.engines.backends.hf_forward import cache_argument

# what the installed transformers' Llama takes (worked out here independently of the backend)
_LLAMA_PARAMS = inspect.signature(LlamaForCausalLM.forward).parameters
INNER = "cache" if "cache" in _LLAMA_PARAMS else "past_key_values"
QUESTIONS = ["Tom has 3 apples.", "Ann has 12 + 7 = 19 pens and gives away 4 of them."]


def _forward(model, name, cache, seen, **kwargs):
    seen.append((name, cache is not None))
    out = LlamaForCausalLM.forward(model, **kwargs, **{INNER: cache})
    return SimpleNamespace(
        logits=out.logits, hidden_states=out.hidden_states, **{name: getattr(out, INNER)}
    )


class CacheLlama(LlamaForCausalLM):
    """A forward that knows only the new name (no **kwargs: ``past_key_values`` is a TypeError)."""

    seen: list = []

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, cache=None, **kw):
        if "past_key_values" in kw:
            raise TypeError("unexpected keyword argument 'past_key_values'")
        return _forward(
            self,
            "cache",
            cache,
            self.seen,
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            **kw,
        )


class PastKeyValuesLlama(LlamaForCausalLM):
    """A forward that knows only the old name."""

    seen: list = []

    def forward(
        self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None, **kw
    ):
        if "cache" in kw:
            raise TypeError("unexpected keyword argument 'cache'")
        return _forward(
            self,
            "past_key_values",
            past_key_values,
            self.seen,
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            **kw,
        )


def _samples(model, tokenizer, head):
    pol = HFStepPolicy(model, tokenizer, ARITH.with_overrides(delimiter="@@@@"), head)
    reqs = [
        StepRequest(pol.encode_prompt(q), n=3, seed=5, temperature=1.0, max_step_tokens=8)
        for q in QUESTIONS
    ]
    return [(s.token_ids, s.value, s.logprob_sum) for r in pol.sample_steps(reqs) for s in r]


@pytest.mark.parametrize(
    "cls,name", [(CacheLlama, "cache"), (PastKeyValuesLlama, "past_key_values")]
)
def test_backend_uses_the_cache_name_the_forward_declares(
    cls, name, tiny_dir, tiny_model, tiny_tokenizer, tiny_head
) -> None:
    model = cls.from_pretrained(tiny_dir, dtype=torch.float32).eval()
    assert cache_argument(model) == name
    cls.seen.clear()
    got = _samples(model, tiny_tokenizer, tiny_head)
    assert got == _samples(tiny_model, tiny_tokenizer, tiny_head)
    assert (name, True) in cls.seen  # the KV-cache path really ran through the wrapper


def test_cache_argument_looks_through_peft_and_matches_stock_llama(tiny_dir, tiny_model) -> None:
    from peft import LoraConfig, get_peft_model

    assert cache_argument(tiny_model) == INNER
    lora = get_peft_model(
        CacheLlama.from_pretrained(tiny_dir), LoraConfig(r=2, target_modules=["q_proj"])
    )
    assert cache_argument(lora) == "cache"
