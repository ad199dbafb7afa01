"""SentencePiece-style (Metaspace) tokenizers, as in Llama-2 and Mistral (method.md 2.1).

Encoding a piece of text on its own prepends ``▁``: the delimiter ``"\\n\\n"`` becomes
``["▁", "\\n", "\\n"]`` and a re-tokenized step gains a leading space. Steps and the delimiter's
canonical ids must instead decode, after the stored ids, to exactly the step's text.
"""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
import torch

from svpo_harness.core.policy import StepRequest
from svpo_harness.core.step_format import ARITH, COT
from svpo_harness.engines.backends.hf import HFStepPolicy
from svpo_harness.engines.backends.hf_sampling import _advance, _Row
from svpo_harness.engines.tokenization import continuation_ids, decodes_after, delimiter_ids

QUESTION = "Tom has 3 apples and buys 4 more."


def _lines(n: int = 300) -> list[str]:
    rng = random.Random(1)
    out = []
    for _ in range(n):
        a, b = rng.randint(1, 60), rng.randint(1, 40)
        out.append(f"Tom has {a} + {b} = {a + b} apples.\n\nThe answer is {a + b}.\n")
    return out


def build_metaspace_llama(folder: Path) -> Path:
    """A BPE tokenizer with a Metaspace pre-tokenizer and byte fallback (Llama-2's decoder
    chain), and a random tiny Llama on its vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(byte_fallback=True, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),  # the sequence-start space SentencePiece added
        ]
    )
    specials = ["<unk>", "<s>", "</s>", *(f"<0x{i:02X}>" for i in range(256))]
    trainer = trainers.BpeTrainer(vocab_size=520, special_tokens=specials, show_progress=False)
    tok.train_from_iterator([*_lines(), string.printable], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        initializer_range=0.1,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def metaspace(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_metaspace_llama(tmp_path_factory.mktemp("metaspace"))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, tokenizer


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def test_the_fixture_has_the_sentencepiece_problem(metaspace):
    _, tokenizer = metaspace
    alone = _encode(tokenizer, "\n\n")
    assert tokenizer.convert_ids_to_tokens(alone)[0] == "▁"  # what encoding alone does
    assert not decodes_after(tokenizer, _encode(tokenizer, "Tom has 3."), alone, "\n\n")


def test_canonical_delimiter_ids_carry_no_metaspace_prefix(metaspace):
    model, tokenizer = metaspace
    policy = HFStepPolicy(model, tokenizer, COT)
    ids = policy._spec.delimiter_ids
    assert ids == delimiter_ids(tokenizer, "\n\n")
    assert "▁" not in tokenizer.convert_ids_to_tokens(list(ids))
    for step in ("Tom has 3.", "The answer is 7", "x"):
        assert decodes_after(tokenizer, _encode(tokenizer, step), ids, "\n\n")


@pytest.mark.parametrize("text", [" 4 more", "4 more.\n", "The answer is 7.", "\n\n"])
def test_continuation_ids_decode_to_the_text_after_the_context(metaspace, text):
    _, tokenizer = metaspace
    context = _encode(tokenizer, "Tom has 3 apples.\n")
    ids = continuation_ids(tokenizer, context, text)
    assert decodes_after(tokenizer, context, ids, text)


def test_a_step_cut_inside_a_token_is_retokenized_without_a_space(metaspace):
    """The sampling loop's cut: a token that runs past the delimiter ("6.\\n" with delimiter ".")
    leaves "6." to re-tokenize where it follows the state's ids."""
    _, tokenizer = metaspace
    vocab = tokenizer.get_vocab()
    token = vocab["6.\n"]
    spec = HFStepPolicy(*metaspace, ARITH.with_overrides(delimiter=".", stop_sequences=()))._spec
    context = _encode(tokenizer, "He has 3 + 4 = ")
    row = _Row(0, 0, 0, 0.0, 20, None, context, tokenizer.decode(context))
    assert _advance(spec, row, token, -1.0, with_values=True) == []  # rescored afterwards
    assert row.retokenized and row.text == "6."
    assert tokenizer.decode(context + row.ids) == tokenizer.decode(context) + "6."


def test_an_eos_step_reads_its_value_after_the_delimiter_without_a_space(metaspace):
    """On the search path: an EOS step's value ids are its ids + the canonical delimiter ids,
    and they decode to the step's text + the delimiter."""
    model, tokenizer = metaspace
    fmt = ARITH.with_overrides(delimiter="@@@@", stop_sequences=())
    probe = HFStepPolicy(model, tokenizer, fmt)
    prompt = probe.encode_prompt(QUESTION)
    request = StepRequest(prompt, n=1, seed=0, temperature=0.0, max_step_tokens=12)
    greedy = list(probe.sample_steps([request])[0][0].token_ids)
    k = next(k for k in range(2, len(greedy)) if greedy[k] not in greedy[:k])
    eos_policy = HFStepPolicy(model, tokenizer, fmt, eos_token_ids=[greedy[k]])
    (step,) = eos_policy.sample_steps([request])[0]
    assert step.finish_reason == "eos" and list(step.token_ids) == greedy[:k]
    expected = tokenizer.decode(prompt + step.token_ids) + "@@@@"
    assert tokenizer.decode(prompt + step.value_ids) == expected
