"""HFStepPolicy against slow, obvious references (full forwards without a KV cache).

The random tiny model cannot be told what to write, so stop conditions are constructed from
its own greedy continuation: a delimiter equal to the text of its k-th token (a clean stop), a
delimiter ending inside a token (the re-tokenized path), or its k-th token declared EOS.
"""

from __future__ import annotations

import pytest
import torch

from svpo_harness.core.policy import StepPolicy, StepRequest
from svpo_harness.core.step_format import ARITH
from svpo_harness.engines.backends.hf import HFStepPolicy
from svpo_harness.engines.backends.hf_sampling import LoopSpec, _advance, _Row
from svpo_harness.engines.tokenization import continuation_ids

NEVER = "@@@@@@@@"  # a delimiter the model does not produce within a few tokens
QUESTIONS = ["Tom has 3 apples.", "Ann has 12 + 7 = 19 pens and gives away 4 of them.", "Bob?"]
TOL = 1e-5  # fp32 KV-cache path vs fresh forward (method.md section 2.1)
BF16_VALUE, BF16_LOGP = 0.06, 0.15  # bf16 weights vs the fp32 reference: ~2-4x what was seen


def make(model, tokenizer, head=None, delimiter: str = NEVER, **kw) -> HFStepPolicy:
    fmt = ARITH.with_overrides(delimiter=delimiter, stop_sequences=())
    return HFStepPolicy(model, tokenizer, fmt, head, **kw)


def greedy_req(state, max_tokens: int = 12, seed: int = 0) -> StepRequest:
    return StepRequest(tuple(state), n=1, seed=seed, temperature=0.0, max_step_tokens=max_tokens)


def test_protocol_and_greedy_equals_naive_loop(tiny_model, tiny_tokenizer, tiny_head, ref) -> None:
    pol = make(tiny_model, tiny_tokenizer, tiny_head)
    assert isinstance(pol, StepPolicy) and pol.has_value_head
    prompts = [pol.encode_prompt(q) for q in QUESTIONS]
    results = pol.sample_steps([greedy_req(p) for p in prompts])
    for prompt, (step,) in zip(prompts, results, strict=True):
        assert step.finish_reason == "length" and len(step.token_ids) == 12
        assert list(step.token_ids) == ref.greedy(tiny_model, prompt, 12)
        assert step.text == pol.decode(step.token_ids)
        lps = ref.logprobs(tiny_model, prompt, step.token_ids)
        assert step.logprob_sum == pytest.approx(sum(lps), abs=1e-4)
        assert step.logprob_mean == pytest.approx(sum(lps) / 12, abs=1e-5)
        assert step.value == pytest.approx(
            ref.value(tiny_model, tiny_head, prompt + step.token_ids), abs=TOL
        )
        assert abs(step.value) > 0.05  # the head really reads something
        assert step.value_ids == () and not step.retokenized


# NEVER: every step ends by length, all values come from the KV-cache read; "\n": this
# tokenizer merges "\n" with what follows, so most steps take the re-tokenized path.
@pytest.mark.parametrize("delimiter", [NEVER, "\n"])
def test_per_row_determinism_across_batches(
    tiny_model, tiny_tokenizer, tiny_head, ref, delimiter
) -> None:
    pol = make(tiny_model, tiny_tokenizer, tiny_head, delimiter=delimiter)
    prompts = [pol.encode_prompt(q) for q in QUESTIONS]  # different lengths: left padding
    reqs = [
        StepRequest(p, n=3, seed=10 + i, temperature=1.0, max_step_tokens=10)
        for i, p in enumerate(prompts)
    ]
    reqs.append(StepRequest(prompts[0], n=2, seed=99, temperature=0.6, max_step_tokens=10))
    together = pol.sample_steps(reqs)
    alone = [pol.sample_steps([r])[0] for r in reqs]
    small = make(tiny_model, tiny_tokenizer, tiny_head, delimiter=delimiter, max_batch_rows=2)
    packed = small.sample_steps(list(reversed(reqs)))[::-1]
    for a, b, c in zip(together, alone, packed, strict=True):
        assert [s.token_ids for s in a] == [s.token_ids for s in b] == [s.token_ids for s in c]
        for x, y in zip(a, b, strict=True):
            assert x.logprob_sum == pytest.approx(y.logprob_sum, abs=1e-4)
            assert x.value == pytest.approx(y.value, abs=TOL)
    assert len({s.token_ids for s in together[0]}) > 1  # sample j has its own stream
    for step in together[-1]:  # sampled at T=0.6, scored raw (T=1), value at the step's end
        state = prompts[0] + step.ids_for_value
        lps = ref.logprobs(tiny_model, prompts[0], step.token_ids)
        assert step.logprob_sum == pytest.approx(sum(lps), abs=1e-4)
        assert step.value == pytest.approx(ref.value(tiny_model, tiny_head, state), abs=TOL)
    # the same seed again gives the same steps; another seed does not
    assert pol.sample_steps([reqs[1]])[0] == alone[1]
    other = StepRequest(prompts[1], n=3, seed=12345, temperature=1.0, max_step_tokens=10)
    assert [s.token_ids for s in pol.sample_steps([other])[0]] != [s.token_ids for s in alone[1]]


def _clean_stop(tokenizer, greedy: list[int]) -> tuple[int, str]:
    """(k, text of token k) such that stopping at that text ends exactly at token k."""
    for k in range(1, len(greedy)):
        before = tokenizer.decode(greedy[:k])
        tok = tokenizer.decode(greedy[k : k + 1])
        if (
            tok.strip()
            and tok not in before
            and tokenizer.decode(greedy[: k + 1]).find(tok) == len(before)
        ):
            return k, tok
    pytest.skip("no clean stop token in this greedy continuation")


def test_stop_at_delimiter(tiny_model, tiny_tokenizer, tiny_head, ref) -> None:
    probe = make(tiny_model, tiny_tokenizer)
    prompt = probe.encode_prompt(QUESTIONS[1])
    greedy = ref.greedy(tiny_model, prompt, 20)
    k, delimiter = _clean_stop(tiny_tokenizer, greedy)
    pol = make(tiny_model, tiny_tokenizer, tiny_head, delimiter=delimiter)
    (step,) = pol.sample_steps([greedy_req(prompt, 30)])[0]
    assert step.finish_reason == "delimiter" and not step.retokenized
    assert list(step.token_ids) == greedy[: k + 1]
    assert step.text.endswith(delimiter) and step.text.count(delimiter) == 1
    assert step.value == pytest.approx(
        ref.value(tiny_model, tiny_head, prompt + step.token_ids), abs=TOL
    )
    lps = ref.logprobs(tiny_model, prompt, step.token_ids)
    assert step.logprob_sum == pytest.approx(sum(lps), abs=1e-4)


def test_delimiter_inside_a_token_is_retokenized(
    tiny_model, tiny_tokenizer, tiny_head, ref
) -> None:
    probe = make(tiny_model, tiny_tokenizer)
    prompt = probe.encode_prompt(QUESTIONS[0])
    greedy = ref.greedy(tiny_model, prompt, 20)
    k = next(k for k in range(1, 20) if len(tiny_tokenizer.decode(greedy[k : k + 1])) >= 2)
    # everything up to one character into token k: the delimiter ends inside that token
    delimiter = tiny_tokenizer.decode(greedy[: k + 1])[: len(tiny_tokenizer.decode(greedy[:k])) + 1]
    pol = make(tiny_model, tiny_tokenizer, tiny_head, delimiter=delimiter)
    (step,) = pol.sample_steps([greedy_req(prompt, 30)])[0]
    assert step.finish_reason == "delimiter" and step.retokenized
    assert step.text == delimiter
    assert list(step.token_ids) == tiny_tokenizer.encode(delimiter, add_special_tokens=False)
    assert step.value == pytest.approx(
        ref.value(tiny_model, tiny_head, prompt + step.token_ids), abs=TOL
    )
    lps = ref.logprobs(tiny_model, prompt, step.token_ids)
    assert step.logprob_sum == pytest.approx(sum(lps), abs=1e-4)


def test_retokenize_cut_on_a_merged_token(tiny_tokenizer) -> None:
    """A real merged token such as ".\\n\\nThe answer is " runs past the "\\n\\n" delimiter."""
    vocab = tiny_tokenizer.get_vocab()
    merged = next(
        i
        for i in sorted(vocab.values())
        if (t := tiny_tokenizer.decode([i])).find("\n\n") > 0 and not t.endswith("\n\n")
    )
    text = tiny_tokenizer.decode([merged])
    first = tiny_tokenizer.encode("Tom has 3", add_special_tokens=False)
    spec = LoopSpec(
        "\n\n",
        tuple(tiny_tokenizer.encode("\n\n", add_special_tokens=False)),
        frozenset({2}),
        0,
        tiny_tokenizer.decode,
        lambda context, s: continuation_ids(tiny_tokenizer, context, s),
    )
    row = _Row(0, 0, 0, 0.0, 50, None, [], "", ids=list(first), logprobs=[-1.0] * len(first))
    assert _advance(spec, row, merged, -2.0, with_values=True) == []  # rescored afterwards
    cut = "Tom has 3" + text[: text.find("\n\n") + 2]
    assert row.reason == "delimiter" and row.retokenized and row.text == cut
    assert row.ids == tiny_tokenizer.encode(cut, add_special_tokens=False)


def test_eos_step_reads_value_at_appended_delimiter(
    tiny_model, tiny_tokenizer, tiny_head, ref
) -> None:
    probe = make(tiny_model, tiny_tokenizer)
    prompt = probe.encode_prompt(QUESTIONS[0])
    other = probe.encode_prompt(QUESTIONS[1])
    greedy = ref.greedy(tiny_model, prompt, 20)
    k = next(k for k in range(2, 20) if greedy[k] not in greedy[:k])
    pol = make(tiny_model, tiny_tokenizer, tiny_head, eos_token_ids=[greedy[k]])
    delim_ids = tuple(tiny_tokenizer.encode(NEVER, add_special_tokens=False))
    assert len(delim_ids) > 1  # a multi-token value chunk rides along with continuing rows
    eos_step, busy = (
        s[0] for s in pol.sample_steps([greedy_req(prompt, 30), greedy_req(other, 30)])
    )
    assert eos_step.finish_reason == "eos" and list(eos_step.token_ids) == greedy[:k]
    assert eos_step.value_ids == eos_step.token_ids + delim_ids and eos_step.eos_appended
    assert eos_step.text == tiny_tokenizer.decode(greedy[:k])
    assert eos_step.value == pytest.approx(
        ref.value(tiny_model, tiny_head, prompt + eos_step.value_ids), abs=TOL
    )
    lps = ref.logprobs(tiny_model, prompt, eos_step.token_ids)  # EOS not in the sum
    assert eos_step.logprob_sum == pytest.approx(sum(lps), abs=1e-4)
    # the row that kept going after the chunk was fed next to it is unaffected
    assert busy.value == pytest.approx(
        ref.value(tiny_model, tiny_head, other + busy.token_ids), abs=TOL
    )
    assert busy.token_ids == pol.sample_steps([greedy_req(other, 30)])[0][0].token_ids
    # EOS as the very first token: an empty step, value read at the delimiter alone
    first = make(tiny_model, tiny_tokenizer, tiny_head, eos_token_ids=[greedy[0]])
    (empty,) = first.sample_steps([greedy_req(prompt)])[0]
    assert empty.finish_reason == "eos" and empty.token_ids == () and empty.value_ids == delim_ids
    assert empty.value == pytest.approx(
        ref.value(tiny_model, tiny_head, prompt + delim_ids), abs=TOL
    )


def test_joined_steps_decode_to_joined_text(tiny_model, tiny_tokenizer, tiny_head) -> None:
    pol = make(tiny_model, tiny_tokenizer, tiny_head, delimiter="\n")
    prompt = pol.encode_prompt(QUESTIONS[2])
    state, texts, reasons = prompt, [], set()
    for depth in range(6):
        req = StepRequest(state, n=1, seed=depth, temperature=1.0, max_step_tokens=8)
        (step,) = pol.sample_steps([req])[0]
        reasons.add(step.finish_reason)
        if step.finish_reason == "delimiter":
            assert step.text.endswith("\n") and step.text.count("\n") == 1
        state, texts = state + step.token_ids, texts + [step.text]
    assert pol.decode(state[len(prompt) :]) == "".join(texts)
    assert pol.decode(state) == pol.decode(prompt) + "".join(texts)
    assert "delimiter" in reasons


def test_values_match_fresh_forwards(tiny_model, tiny_tokenizer, tiny_head, ref) -> None:
    pol = make(tiny_model, tiny_tokenizer, tiny_head, max_batch_rows=2)
    states = [pol.encode_prompt(q) for q in QUESTIONS]
    got = pol.values(states)
    assert got == pytest.approx([ref.value(tiny_model, tiny_head, s) for s in states], abs=TOL)
    with pytest.raises(RuntimeError, match="no value head"):
        make(tiny_model, tiny_tokenizer).values(states)
    (step,) = make(tiny_model, tiny_tokenizer).sample_steps([greedy_req(states[0])])[0]
    assert step.value is None  # no head, no value
    with pytest.raises(ValueError, match="non-empty"):
        pol.sample_steps([StepRequest((), n=1, seed=0)])


def test_encode_prompt_bos_and_chat_template(tiny_model, tiny_tokenizer) -> None:
    pol = make(tiny_model, tiny_tokenizer)
    ids = pol.encode_prompt("Tom has 3 apples.")
    assert ids[0] == tiny_tokenizer.bos_token_id and ids.count(tiny_tokenizer.bos_token_id) == 1
    assert pol.decode(ids[1:]) == pol.step_format.prompt("Tom has 3 apples.")
    plain = make(tiny_model, tiny_tokenizer, add_bos=False).encode_prompt("Tom has 3 apples.")
    assert plain == ids[1:]
    template = (
        "{% for m in messages %}<s>[{{ m['role'] }}] {{ m['content'] }}{% endfor %}"
        "{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    chat = make(tiny_model, tiny_tokenizer, apply_chat_template=True, chat_template=template)
    chat_ids = chat.encode_prompt("Tom has 3 apples.")
    assert (
        chat_ids.count(tiny_tokenizer.bos_token_id) == 1
        and chat_ids[0] == tiny_tokenizer.bos_token_id
    )
    assert chat.decode(chat_ids).endswith("[assistant] ")


def test_from_checkpoint_and_lora_policy(
    tmp_path, tiny_dir, tiny_model, tiny_tokenizer, tiny_head
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from svpo_harness.engines.checkpoint import (
        CheckpointMeta,
        save_checkpoint,
        tokenizer_fingerprint,
    )

    torch.manual_seed(0)
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_dir),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    ckpt = save_checkpoint(
        tmp_path / "c",
        lora,
        tiny_tokenizer,
        tiny_head,
        CheckpointMeta(str(tiny_dir), step_format=ARITH),
    )
    if torch.cuda.is_available():
        pol = HFStepPolicy.from_checkpoint(ckpt, device="cpu")
    else:  # a CUDA request on a machine without CUDA falls back to CPU, with a warning
        with pytest.warns(UserWarning, match="CUDA is not available"):
            pol = HFStepPolicy.from_checkpoint(ckpt, device="cuda")
    assert pol.device.type == "cpu"
    assert pol.has_value_head and pol.step_format == ARITH and not pol.apply_chat_template
    assert pol.tokenizer_fingerprint == tokenizer_fingerprint(tiny_tokenizer)
    merged = HFStepPolicy.from_checkpoint(ckpt, device="cpu", peft="merge")
    prompt = pol.encode_prompt(QUESTIONS[0])
    reqs = [
        greedy_req(prompt),
        StepRequest(prompt, n=2, seed=3, temperature=0.8, max_step_tokens=12),
    ]
    a, b = pol.sample_steps(reqs), merged.sample_steps(reqs)
    assert [s.token_ids for r in a for s in r] == [s.token_ids for r in b for s in r]
    for x, y in zip(a[1], b[1], strict=True):
        assert x.value == pytest.approx(y.value, abs=1e-4)


def test_bf16_policy_matches_the_fp32_reference(
    tiny_dir, tiny_model, tiny_tokenizer, tiny_head, ref
) -> None:
    """bf16 weights: values and log-probs of the sampled steps agree with the fp32 model's full
    forward within bf16 rounding (measured: values 0.025, log-probs 0.035 apart at most)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.bfloat16)
    pol = make(model, tiny_tokenizer, tiny_head, delimiter="\n")
    prompt = pol.encode_prompt(QUESTIONS[0])
    steps = pol.sample_steps(
        [StepRequest(prompt, n=3, seed=1, temperature=0.7, max_step_tokens=8)]
    )[0]
    for s in steps:
        want = ref.value(tiny_model, tiny_head, prompt + s.ids_for_value)
        lps = ref.logprobs(tiny_model, prompt, s.token_ids)
        assert s.value == pytest.approx(want, abs=BF16_VALUE)
        assert s.logprob_sum == pytest.approx(sum(lps), abs=BF16_LOGP)
    assert len({s.token_ids for s in steps}) > 1  # three different steps were checked
    root = ref.value(tiny_model, tiny_head, prompt)
    assert abs(root) > 0.5 and pol.values([prompt])[0] == pytest.approx(root, abs=BF16_VALUE)
