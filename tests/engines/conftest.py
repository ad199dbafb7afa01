"""Fixtures for the engine tests: a tiny byte-level BPE tokenizer + random tiny Llama, built once.

Self-contained on purpose (not ``engines.tiny_model``): these tests pin the token contract of the
backend, so the fixture must not change under them. The tokenizer is trained with
``ByteLevel(use_regex=False)``, so BPE merges may cross spaces, newlines and punctuation and
tokens like ``".\\n\\nThe"`` exist: exactly the tokens that run past a step delimiter.

Also: reference computations done the slow, obvious way (full forwards, no KV cache) that the
backend's results are checked against.
"""

from __future__ import annotations

import os
import random
import string
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

# No network, ever: hub look-ups must fail fast and nothing may land in the user's HF cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

HIDDEN = 64  # tiny model width (brief: hidden 64, 2 layers, 4 heads)


@pytest.fixture(scope="session", autouse=True)
def _hf_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["HF_HOME"] = str(tmp_path_factory.mktemp("hf_home"))


@pytest.fixture(autouse=True)
def _one_thread():
    """Engine tests run single-threaded: with 64-wide matrices intra-op thread hand-offs cost
    more than they save, and on a shared 2-core box spinning threads made the tiny-model tests
    ~10x and the SmolLM2 test ~4x slower (36 s -> 160 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def arithmetic_lines(n: int = 400, seed: int = 0) -> list[str]:
    """A few hundred lines of arithmetic-like text with step delimiters in it."""
    rng = random.Random(seed)
    names = ["Tom", "Ann", "Bob", "Sue", "Max"]
    things = ["apples", "pens", "coins", "cards"]
    lines = []
    for _ in range(n):
        a, b = rng.randint(1, 60), rng.randint(1, 40)
        who, what = rng.choice(names), rng.choice(things)
        lines.append(
            f"{who} has {a} + {b} = {a + b} {what}.\n\nThe answer is {a + b}.\n"
            f"Then {who} gives away {b}, so {a + b} - {b} = {a}.\nThe answer is {a}.\n\n"
        )
    return lines


def build_tiny(folder: Path) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<pad>", "<s>", "</s>"],  # ids 0, 1, 2
        # Alphabet = the bytes seen (ASCII only): every token is valid UTF-8 on its own, so a
        # random model cannot emit half characters that only decode together.
        show_progress=False,
    )
    # + every printable ASCII character once, so prompts in any words encode without loss
    tok.train_from_iterator([*arithmetic_lines(), string.printable], trainer=trainer)
    # Llama-style convention: the post-processor adds BOS (encode_prompt's add_bos="auto").
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        clean_up_tokenization_spaces=False,
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention, as in real models
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        tie_word_embeddings=False,
        initializer_range=0.1,  # peakier random logits than 0.02: more varied greedy text
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture(scope="session")
def tiny_model(tiny_dir: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()


@pytest.fixture()
def tiny_head():
    from svpo_harness.engines.value_head import ValueHead

    # A head with a larger weight than the N(0, 0.02) init, so values are far from 0 and a
    # wrong hidden state shows up clearly in the comparisons.
    head = ValueHead(HIDDEN, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        head.linear.weight.mul_(10.0)
        head.linear.bias.fill_(0.05)
    return head.eval()


# -- slow, obvious references -------------------------------------------------------------------
@torch.inference_mode()
def fresh_value(model, head, ids) -> float:
    """Value head at the last token of one full forward (no cache, no padding)."""
    out = model(torch.tensor([list(ids)]), output_hidden_states=True)
    return float(head(out.hidden_states[-1][0, -1]))


@torch.inference_mode()
def fresh_logprobs(model, prefix, step) -> list[float]:
    """Raw log-probs of ``step`` after ``prefix`` from one full forward, fp32."""
    ids = list(prefix) + list(step)
    logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    return [float(logp[len(prefix) + k - 1, t]) for k, t in enumerate(step)]


@torch.inference_mode()
def naive_greedy(model, ids, n: int) -> list[int]:
    """Greedy continuation with a full forward per token."""
    seq = list(ids)
    for _ in range(n):
        seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
    return seq[len(ids) :]


@torch.inference_mode()
def fresh_scores(model, head, prefix, step, value_ids=None) -> tuple[float, list[float]]:
    """One full forward of ``prefix + value_ids`` (default ``step``): the value at its last
    token and the raw log-probs of ``step`` (a prefix of ``value_ids``). For big models."""
    tail = list(value_ids) if value_ids else list(step)
    assert tail[: len(step)] == list(step)
    out = model(torch.tensor([list(prefix) + tail]), output_hidden_states=True)
    logp = torch.log_softmax(out.logits[0].float(), dim=-1)
    lps = [float(logp[len(prefix) + k - 1, t]) for k, t in enumerate(step)]
    return float(head(out.hidden_states[-1][0, -1])), lps


@pytest.fixture(scope="session")
def ref() -> SimpleNamespace:
    return SimpleNamespace(
        value=fresh_value, logprobs=fresh_logprobs, greedy=naive_greedy, scores=fresh_scores
    )
