"""Stop strings end a solution inside the sampling loop (lm-eval `until`, issue 10 item 5).

Built from the random tiny model's own greedy text, like test_hf_policy: a stop string that
starts at a token boundary (the token is dropped, the step keeps its sampled ids), one that
starts inside a token (the step is re-tokenized), and one that began in the state's text.
Values are read as after EOS: at the step's ids plus the delimiter's canonical ids.
"""

from __future__ import annotations

import pytest

from svpo_harness.core.policy import StepRequest
from svpo_harness.core.step_format import ARITH
from svpo_harness.engines.backends.hf import HFStepPolicy
from svpo_harness.engines.tokenization import decodes_after

NEVER = "@@@@@@@@"
QUESTION = "Ann has 12 + 7 = 19 pens and gives away 4 of them."
TOL = 1e-5


def _policy(model, tokenizer, head=None) -> HFStepPolicy:
    return HFStepPolicy(
        model, tokenizer, ARITH.with_overrides(delimiter=NEVER, stop_sequences=()), head
    )


def _greedy(policy, state, stop=(), tokens: int = 16):
    req = StepRequest(tuple(state), n=1, seed=0, temperature=0.0, max_step_tokens=tokens, stop=stop)
    return policy.sample_steps([req])[0][0]


def _texts(tokenizer, prompt, ids) -> list[str]:
    """Text of the step after each of its tokens (decoded in context, as the loop does)."""
    base = tokenizer.decode(list(prompt))
    return [
        tokenizer.decode(list(prompt) + list(ids[: k + 1]))[len(base) :] for k in range(len(ids))
    ]


def _check_scores(step, prompt, model, head, ref, delim_ids) -> None:
    assert step.value_ids == step.token_ids + delim_ids
    value, lps = ref.scores(model, head, prompt, step.token_ids, step.value_ids)
    assert step.value == pytest.approx(value, abs=TOL)
    assert step.logprob_sum == pytest.approx(sum(lps), abs=1e-4)


def test_stop_at_a_token_boundary_drops_that_token(tiny_model, tiny_tokenizer, tiny_head, ref):
    policy = _policy(tiny_model, tiny_tokenizer, tiny_head)
    prompt = policy.encode_prompt(QUESTION)
    free = _greedy(policy, prompt)
    texts = _texts(tiny_tokenizer, prompt, free.token_ids)
    k = next(k for k in range(2, len(texts)) if texts[k][len(texts[k - 1]) :] not in texts[k - 1])
    stop = texts[k][len(texts[k - 1]) :]  # exactly token k's text: first seen at token k
    step = _greedy(policy, prompt, stop=(stop,))
    assert step.finish_reason == "stop" and not step.retokenized
    assert step.token_ids == free.token_ids[:k] and step.text == texts[k - 1]
    _check_scores(step, prompt, tiny_model, tiny_head, ref, policy._spec.delimiter_ids)


def test_stop_inside_a_token_cuts_and_retokenizes(tiny_model, tiny_tokenizer, tiny_head, ref):
    policy = _policy(tiny_model, tiny_tokenizer, tiny_head)
    prompt = policy.encode_prompt(QUESTION)
    free = _greedy(policy, prompt)
    texts = _texts(tiny_tokenizer, prompt, free.token_ids)
    # a token of at least 2 characters whose tail (from its 2nd character) is new text
    k = next(
        k
        for k in range(1, len(texts))
        if len(texts[k]) - len(texts[k - 1]) >= 2
        and texts[k][len(texts[k - 1]) + 1 :] not in texts[k - 1]
    )
    cut = len(texts[k - 1]) + 1
    stop = texts[k][cut:]
    assert texts[k].find(stop) == cut
    step = _greedy(policy, prompt, stop=(stop,))
    assert step.finish_reason == "stop" and step.retokenized
    assert step.text == texts[k][:cut]
    assert decodes_after(tiny_tokenizer, prompt, step.token_ids, step.text)
    _check_scores(step, prompt, tiny_model, tiny_head, ref, policy._spec.delimiter_ids)


def test_stop_that_began_in_the_state_ends_the_next_step(
    tiny_model, tiny_tokenizer, tiny_head, ref
):
    """e.g. the arith format: delimiter "\\n", stop "\\n\\n" spans two steps."""
    policy = _policy(tiny_model, tiny_tokenizer, tiny_head)
    prompt = policy.encode_prompt(QUESTION)
    free = _greedy(policy, prompt)
    state = prompt + free.token_ids[:3]
    nxt = _greedy(policy, state)
    tail = tiny_tokenizer.decode(list(state))[-2:]
    first = _texts(tiny_tokenizer, state, nxt.token_ids)[0]
    step = _greedy(policy, state, stop=(tail + first[:1],))
    assert step.finish_reason == "stop" and step.text == "" and step.token_ids == ()
    _check_scores(step, state, tiny_model, tiny_head, ref, policy._spec.delimiter_ids)


def test_no_stop_strings_change_nothing(tiny_model, tiny_tokenizer, tiny_head):
    policy = _policy(tiny_model, tiny_tokenizer, tiny_head)
    prompt = policy.encode_prompt(QUESTION)
    free = _greedy(policy, prompt)
    again = _greedy(policy, prompt, stop=(NEVER + "x",))
    assert (again.token_ids, again.text, again.finish_reason) == (
        free.token_ids,
        free.text,
        free.finish_reason,
    )
    assert again.value == pytest.approx(free.value, abs=TOL)
