"""A tiny Llama trained from scratch on the arithmetic world: the offline demo and test model.

Why: every pipeline (annotation, training, search, the lm-eval model) needs a real HF causal LM
with a real BPE tokenizer to test against, and no hub download is allowed. This module builds one
in seconds: a byte-level BPE tokenizer trained locally on the world's text and a randomly
initialised ``LlamaForCausalLM`` of about 0.9M parameters, saved as an ordinary HF folder
(safetensors) that ``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained`` load offline.

Tokenizer choices, and why:
- Byte-level BPE (GPT-2 style pre-tokenizer): any text encodes, and decode(encode(t)) == t.
- Digits are split one per token, as in Llama tokenizers: a tiny model learns column arithmetic
  far more easily than arithmetic on multi-digit tokens.
- The BOS token is added by the post-processor and controlled by ``add_bos_token``, the switch
  lm-eval's HFLM passes to ``AutoTokenizer.from_pretrained``.
- ``clean_up_tokenization_spaces`` is off: the cleanup rewrites " ." to "." and would break the
  lossless round trip the token contract (method.md section 2.1) relies on.
- It is saved with a Llama config, not Qwen2: for a Qwen2 config AutoTokenizer swaps in Qwen's
  own pre-tokenizer, and the ids would silently change.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from svpo_harness.core.arith import arith_split
from svpo_harness.core.step_format import ARITH, COT, TOOL
from svpo_harness.engines.checkpoint_meta import tokenizer_fingerprint  # noqa: F401 (re-export)

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)  # ids 0..3, in this order
DEFAULT_VOCAB_SIZE = 512  # 256 byte symbols + 4 specials + ~250 merges
TOKENIZER_TRAIN_PROBLEMS = 5000  # train-split problems the tokenizer is fitted on (~1 s)


def train_tiny_tokenizer(
    texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE
) -> PreTrainedTokenizerFast:
    """Fit a byte-level BPE on ``texts`` and wrap it for transformers (deterministic)."""
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must cover the 256 bytes and the specials, got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte stays encodable
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        add_bos_token=True,
        add_eos_token=False,
        clean_up_tokenization_spaces=False,
        model_max_length=512,
    )


def world_texts(
    n_problems: int = TOKENIZER_TRAIN_PROBLEMS, step_format: str = "arith"
) -> list[str]:
    """The tokenizer's training text: train-split problems laid out as the model will see them.

    Mostly the ``arith`` layout (prompt + one step per line). Every fourth problem is also laid
    out with the ``cot`` delimiter ``"\\n\\n"`` and ends with it, so ``"\\n\\n"`` becomes one token
    at the end of a string, as in real tokenizers; tests of the ``cot`` format and of the token
    contract's boundary hazard (method.md section 2.1) then run on this tokenizer too.
    ``step_format="tool"``: the ``tool`` layout (core.arith_tool) instead, so its tags and
    ``print(`` become a few tokens each.
    """
    if step_format == "tool":
        from svpo_harness.core.arith_tool import teacher_tool_solution

        problems = arith_split("train", n_problems)
        return [TOOL.prompt(p.question) + teacher_tool_solution(p) for p in problems]
    if step_format != "arith":
        raise ValueError(
            f"the tiny tokenizer is fitted on 'arith' or 'tool' text, not {step_format!r}"
        )
    texts = []
    for i, problem in enumerate(arith_split("train", n_problems)):
        steps = problem.teacher_steps or problem.solution_steps  # what SFT will feed
        texts.append(ARITH.prompt(problem.question) + ARITH.delimiter.join(steps) + ARITH.delimiter)
        if i % 4 == 0:
            texts.append("".join(step + COT.delimiter for step in steps))
    return texts


def tiny_llama_config(
    tokenizer: PreTrainedTokenizerBase,
    hidden_size: int = 128,
    layers: int = 4,
    heads: int = 4,
    max_position_embeddings: int = 512,
) -> LlamaConfig:
    """A small Llama config (~0.9M parameters at the defaults) with tied embeddings.

    Sized so SFT on 2 CPU cores for about 3 minutes gives a model that solves some, not all,
    arithmetic-world problems (a reason for search and a value head to matter).
    """
    if hidden_size % heads:
        raise ValueError(f"hidden_size {hidden_size} must be divisible by heads {heads}")
    # SwiGLU width ~ 8/3 * hidden, rounded up to a multiple of 32 (Llama's convention).
    intermediate = -(-(8 * hidden_size // 3) // 32) * 32
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_position_embeddings,
        rms_norm_eps=1e-6,
        rope_theta=10000.0,
        initializer_range=0.02,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attention_dropout=0.0,
    )


def build_tiny_model(
    out_dir: str | Path,
    seed: int = 0,
    *,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    n_problems: int = TOKENIZER_TRAIN_PROBLEMS,
    step_format: str = "arith",
    **config_kwargs: Any,
) -> Path:
    """Write tokenizer + randomly initialised LlamaForCausalLM to ``out_dir``; returns it.

    ``seed`` fixes the weights (the tokenizer depends only on the world and ``step_format``,
    the layout its text is written in: ``arith`` or ``tool``). ``config_kwargs``
    go to ``tiny_llama_config`` (hidden_size, layers, heads, max_position_embeddings).
    """
    import torch
    from transformers import LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tiny_tokenizer(world_texts(n_problems, step_format), vocab_size=vocab_size)
    config = tiny_llama_config(tokenizer, **config_kwargs)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out


def count_parameters(model: Any) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())
