"""The tiny demo model: offline build/reload, lossless tokenizer, fingerprint, token contract."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from svpo_harness.core.arith import arith_split  # noqa: E402
from svpo_harness.core.step_format import ARITH, COT  # noqa: E402
from svpo_harness.engines.tiny_model import (  # noqa: E402
    build_tiny_model,
    count_parameters,
    tokenizer_fingerprint,
    train_tiny_tokenizer,
    world_texts,
)


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory):
    """No hub access: offline flags and a throwaway HF_HOME for the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_DATASETS_OFFLINE", "1")
        mp.setenv("TRANSFORMERS_OFFLINE", "1")
        mp.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))
        yield


@pytest.fixture(scope="module")
def model_dir(offline, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", seed=0)


@pytest.fixture(scope="module")
def tok(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def solution_texts(n: int = 300) -> list[str]:
    problems = arith_split("dev", n) + arith_split("test", n)
    return [ARITH.prompt(p.question) + p.solution for p in problems]


def test_folder_reloads_offline_with_auto_classes(model_dir: Path, tok) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    names = {p.name for p in model_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert 200_000 <= count_parameters(model) <= 2_000_000
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied
    assert model.config.vocab_size == len(tok)
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (
        "<s>",
        "</s>",
        "<pad>",
        "<unk>",
    )
    ids = tok("Question: Tom has 12 apples.\n", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tok))
    assert torch.isfinite(logits).all()


def test_same_seed_same_weights(offline, model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    ref = load_file(model_dir / "model.safetensors")
    same, diff = load_file(again / "model.safetensors"), load_file(other / "model.safetensors")
    assert all((ref[k] == same[k]).all() for k in ref)
    assert any(not (ref[k] == diff[k]).all() for k in ref)


def test_bos_follows_add_bos_token_as_lm_eval_passes_it(model_dir: Path, tok) -> None:
    from transformers import AutoTokenizer

    plain = tok("Tom has 3 eggs.\n", add_special_tokens=False)["input_ids"]
    assert tok("Tom has 3 eggs.\n")["input_ids"] == [tok.bos_token_id] + plain
    no_bos = AutoTokenizer.from_pretrained(model_dir, add_bos_token=False)  # HFLM's kwarg
    assert no_bos("Tom has 3 eggs.\n")["input_ids"] == plain


def test_round_trip_is_lossless_on_world_texts(tok) -> None:
    texts = solution_texts() + world_texts(200) + ["\n", "\n\n", "  x  \n", "a.\n\nb ?", "7 / 2"]
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
        assert tok.unk_token_id not in ids
    # digits are single tokens (a tiny model learns column arithmetic more easily)
    assert tok.tokenize("123") == ["1", "2", "3"]
    assert tok.convert_tokens_to_ids("\u010a") != tok.unk_token_id  # "\n" is one token


def test_fingerprint_is_stable_across_reload_and_tells_tokenizers_apart(model_dir, tok) -> None:
    from transformers import AutoTokenizer

    fp = tokenizer_fingerprint(tok)
    assert fp.startswith("sha256:")
    assert tokenizer_fingerprint(AutoTokenizer.from_pretrained(model_dir)) == fp
    no_bos = AutoTokenizer.from_pretrained(model_dir, add_bos_token=False)
    assert tokenizer_fingerprint(no_bos) == fp
    assert tokenizer_fingerprint(train_tiny_tokenizer(world_texts())) == fp  # deterministic fit
    smaller = train_tiny_tokenizer(world_texts(), vocab_size=300)
    assert tokenizer_fingerprint(smaller) != fp
    other_text = train_tiny_tokenizer(["zebra quokka " * 50, "Question: 9 * 9 = 81\n"] * 20)
    assert tokenizer_fingerprint(other_text) != fp


def test_token_contract_boundary_hazard(tok) -> None:
    """method.md 2.1: re-encoding joined text is not the concatenation of the steps' ids."""
    enc = lambda s: tok(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    problem = arith_split("dev", 1)[0]
    steps = list(problem.solution_steps)
    newline2 = tok.convert_tokens_to_ids("\u010a\u010a")  # "\n\n" learned as one token
    assert newline2 != tok.unk_token_id

    # `cot` delimiter: "\n\n" ending a prefix is one token, but two before the next step.
    prefix = "".join(s + COT.delimiter for s in steps[:2])
    step = steps[2] + COT.delimiter
    assert enc(prefix)[-1] == newline2
    assert enc(prefix + step)[: len(enc(prefix))] != enc(prefix)  # not a prefix

    # `arith` delimiter: a sampled whitespace step merges with the delimiter before it.
    prefix = steps[0] + ARITH.delimiter
    assert enc(prefix + "\n")[: len(enc(prefix))] != enc(prefix)

    # Steps kept as sampled (each ends with the one-token "\n\n" the model emits) decode to
    # the joined text, but re-encoding that text splits every inner "\n\n" in two: the model
    # would be fed ids it never produced, and the value read one token off.
    prompt_ids = tok(COT.prompt(problem.question))["input_ids"]
    sampled = [enc(s + COT.delimiter) for s in steps]
    assert all(ids[-1] == newline2 for ids in sampled)
    state = prompt_ids + [i for ids in sampled for i in ids]
    joined = COT.prompt(problem.question) + "".join(s + COT.delimiter for s in steps)
    assert tok.decode(state, skip_special_tokens=True) == joined
    reencoded = tok(joined)["input_ids"]
    assert reencoded != state
    assert len(reencoded) == len(state) + len(steps) - 1  # each inner delimiter became 2 ids
