"""Checkpoints: the folder contract (svpo.json, HF/peft files at the top), round trips, atomic
writes, clear errors, and `svpo value-head init`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from svpo_harness import __version__
from svpo_harness.core.step_format import ARITH
from svpo_harness.engines.checkpoint import (
    META_FILE,
    CheckpointError,
    CheckpointMeta,
    init_value_head_checkpoint,
    load_checkpoint,
    save_checkpoint,
    tokenizer_fingerprint,
)
from svpo_harness.engines.value_head import VALUE_HEAD_FILE, ValueHead

IDS = torch.tensor([[1, 40, 41, 42, 43, 44, 45]])


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits.float()


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(folder.name + "."))


def test_full_round_trip(tmp_path, tiny_dir, tiny_model, tiny_tokenizer, tiny_head) -> None:
    meta = CheckpointMeta(base_model=str(tiny_dir), step_format=ARITH, training={"beta": 0.1})
    out = save_checkpoint(tmp_path / "ckpt", tiny_model, tiny_tokenizer, tiny_head, meta)
    names = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        META_FILE,
        VALUE_HEAD_FILE,
    } <= names
    data = json.loads((out / META_FILE).read_text())
    assert data["schema_version"] == 1 and data["kind"] == "svpo-checkpoint"
    assert data["library_version"] == __version__
    assert data["policy"] == "full" and data["base_model_path"] == str(tiny_dir)
    assert data["base_model"] == Path(os.path.relpath(tiny_dir, out)).as_posix()  # moves along
    assert data["step_format"] == ARITH.to_dict()
    assert data["value_head"] == {"hidden_size": 64, "dropout": 0.1}
    assert data["tokenizer_fingerprint"] == tokenizer_fingerprint(tiny_tokenizer)
    assert data["training"] == {"beta": 0.1} and data["chat_template"] is None
    assert meta.value_head is None  # the caller's meta was not mutated

    loaded = load_checkpoint(out)
    assert loaded.step_format == ARITH and loaded.meta.policy == "full"
    assert torch.equal(loaded.value_head.linear.weight, tiny_head.linear.weight)
    assert torch.equal(loaded.value_head.linear.bias, tiny_head.linear.bias)
    assert not loaded.value_head.training and not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert torch.equal(_logits(loaded.model), _logits(tiny_model))

    from transformers import AutoModelForCausalLM

    as_is = AutoModelForCausalLM.from_pretrained(out)  # plain HF loads the folder as is
    assert torch.equal(_logits(as_is), _logits(tiny_model))


def test_lora_round_trip(tmp_path, tiny_dir, tiny_model, tiny_tokenizer, tiny_head) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    # init_lora_weights=False: a non-zero adapter, so a lost adapter would change the logits
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(0)
    lora = get_peft_model(base, config).eval()
    expected = _logits(lora)
    assert not torch.allclose(expected, _logits(tiny_model))
    meta = CheckpointMeta(base_model=str(tiny_dir))
    out = save_checkpoint(tmp_path / "lora", lora, tiny_tokenizer, tiny_head, meta)
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= names
    assert "model.safetensors" not in names
    assert json.loads((out / META_FILE).read_text())["policy"] == "lora"

    loaded = load_checkpoint(out)
    assert isinstance(loaded.model, PeftModel)
    assert torch.allclose(_logits(loaded.model), expected, atol=1e-6)
    assert torch.equal(loaded.value_head.linear.weight, tiny_head.linear.weight)
    merged = load_checkpoint(out, peft="merge", value_head="none")
    assert not isinstance(merged.model, PeftModel) and merged.value_head is None
    assert torch.allclose(_logits(merged.model), expected, atol=1e-5)
    fresh_base = AutoModelForCausalLM.from_pretrained(tiny_dir)
    as_is = PeftModel.from_pretrained(fresh_base, out).eval()  # peft loads the folder as is
    assert torch.allclose(_logits(as_is), expected, atol=1e-6)


def test_trainable_and_new_adapter(tmp_path, tiny_dir) -> None:
    from peft import LoraConfig

    loaded = load_checkpoint(
        tiny_dir, peft=LoraConfig(r=2, target_modules=["q_proj"]), trainable=True
    )
    trainable = [n for n, p in loaded.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_plain_hf_folder_and_dtype(tiny_dir, tiny_model) -> None:
    loaded = load_checkpoint(tiny_dir)
    assert loaded.value_head is None and loaded.step_format.name == "cot"
    assert loaded.meta.base_model == str(tiny_dir)
    assert torch.equal(_logits(loaded.model), _logits(tiny_model))
    bf16 = load_checkpoint(tiny_dir, dtype="bfloat16", step_format="arith")
    assert bf16.model.dtype == torch.bfloat16 and bf16.step_format.name == "arith"


def test_clear_errors(tmp_path, tiny_dir, tiny_model, tiny_tokenizer) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint("nobody-has/this-model")  # offline hub id
    with pytest.raises(CheckpointError, match="unknown dtype"):
        load_checkpoint(tiny_dir, dtype="float8")
    out = save_checkpoint(
        tmp_path / "c", tiny_model, tiny_tokenizer, ValueHead(64), CheckpointMeta(str(tiny_dir))
    )
    meta_path = out / META_FILE
    good = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**good, "schema_version": 99}))
    with pytest.raises(CheckpointError, match="schema_version=99"):
        load_checkpoint(out)
    meta_path.write_text(json.dumps({**good, "value_head": {"hidden_size": 32, "dropout": 0.1}}))
    with pytest.raises(CheckpointError, match="hidden size"):
        load_checkpoint(out)
    meta_path.write_text(json.dumps(good))
    wrong = tmp_path / "wrong_head"
    wrong.mkdir()
    ValueHead(32).save(wrong)
    with pytest.raises(CheckpointError, match="another base model"):
        load_checkpoint(out, value_head=wrong)
    (out / VALUE_HEAD_FILE).unlink()
    with pytest.raises(CheckpointError, match="value_head='none'"):
        load_checkpoint(out)
    assert load_checkpoint(out, value_head="none").value_head is None
    with pytest.raises(CheckpointError, match="already exists"):
        save_checkpoint(out, tiny_model, tiny_tokenizer, None, CheckpointMeta(str(tiny_dir)))


def test_atomic_save_leaves_nothing_half_written(
    tmp_path, tiny_dir, tiny_model, tiny_tokenizer, monkeypatch
) -> None:
    meta = CheckpointMeta(base_model=str(tiny_dir))
    target = tmp_path / "ckpt"

    def boom(self, folder):
        (Path(folder) / VALUE_HEAD_FILE).write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ValueHead, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        save_checkpoint(target, tiny_model, tiny_tokenizer, ValueHead(64), meta)
    assert not target.exists() and _siblings(target) == []

    monkeypatch.undo()
    save_checkpoint(target, tiny_model, tiny_tokenizer, None, meta)
    before = sorted(p.name for p in target.iterdir())
    monkeypatch.setattr(ValueHead, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):  # a failed overwrite keeps the old one
        save_checkpoint(target, tiny_model, tiny_tokenizer, ValueHead(64), meta, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == before and _siblings(target) == []
    monkeypatch.undo()
    save_checkpoint(target, tiny_model, tiny_tokenizer, ValueHead(64), meta, overwrite=True)
    assert (target / VALUE_HEAD_FILE).is_file() and _siblings(target) == []


def test_value_head_init_command(tmp_path, tiny_dir, tiny_model) -> None:
    from click.testing import CliRunner

    from svpo_harness.cli.value_head import value_head

    runner = CliRunner()
    out = tmp_path / "vh"
    result = runner.invoke(
        value_head,
        [
            "init",
            "--model",
            str(tiny_dir),
            "--out",
            str(out),
            "--seed",
            "3",
            "--step-format",
            "arith",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output
    loaded = load_checkpoint(out)
    assert loaded.step_format == ARITH and loaded.meta.training["value_head_init"]["seed"] == 3
    assert loaded.value_head is not None and loaded.value_head.linear.bias.item() == 0.0
    assert torch.equal(_logits(loaded.model), _logits(tiny_model))
    again = init_value_head_checkpoint(tiny_dir, tmp_path / "vh2", seed=3, step_format="arith")
    other = init_value_head_checkpoint(tiny_dir, tmp_path / "vh4", seed=4)
    w = loaded.value_head.linear.weight
    assert torch.equal(load_checkpoint(again).value_head.linear.weight, w)
    assert not torch.equal(load_checkpoint(other).value_head.linear.weight, w)
    # a user mistake: one line, no traceback, non-zero exit
    result = runner.invoke(
        value_head, ["init", "--model", str(tmp_path / "nope"), "--out", str(out)]
    )
    assert result.exit_code != 0 and "not found" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content", ["[]", '"svpo"', "42", "null"])
def test_svpo_json_that_is_not_an_object_is_a_clear_error(
    tmp_path, tiny_dir, tiny_model, tiny_tokenizer, content
) -> None:
    """A damaged svpo.json names the file and what was expected, never an AttributeError."""
    out = save_checkpoint(
        tmp_path / "c", tiny_model, tiny_tokenizer, ValueHead(64), CheckpointMeta(str(tiny_dir))
    )
    (out / META_FILE).write_text(content)
    with pytest.raises(CheckpointError, match=r"svpo\.json: expected a JSON object"):
        load_checkpoint(out)


def _our_warnings(record: list) -> list[str]:
    return [str(w.message) for w in record if "svpo.json" in str(w.message)]


def test_value_head_without_svpo_json_warns_and_names_the_assumed_format(
    tmp_path, tiny_dir, tiny_model, tiny_tokenizer
) -> None:
    import warnings

    out = save_checkpoint(
        tmp_path / "c", tiny_model, tiny_tokenizer, ValueHead(64), CheckpointMeta(str(tiny_dir))
    )
    (out / META_FILE).unlink()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        loaded = load_checkpoint(out)
    assert loaded.value_head is not None
    assert any("no svpo.json" in m and "'cot'" in m for m in _our_warnings(record))
    with warnings.catch_warnings(record=True) as record:  # the user chose: nothing to say
        warnings.simplefilter("always")
        load_checkpoint(out, step_format="arith")
    assert _our_warnings(record) == []


def test_recorded_tokenizer_fingerprint_is_checked_on_load(
    tmp_path, tiny_dir, tiny_model, tiny_tokenizer
) -> None:
    import warnings

    meta = CheckpointMeta(
        str(tiny_dir), tokenizer_fingerprint=tokenizer_fingerprint(tiny_tokenizer)
    )
    out = save_checkpoint(tmp_path / "c", tiny_model, tiny_tokenizer, None, meta)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load_checkpoint(out)
    assert _our_warnings(record) == []  # it matches
    data = json.loads((out / META_FILE).read_text())
    (out / META_FILE).write_text(json.dumps({**data, "tokenizer_fingerprint": "sha256:0000"}))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        load_checkpoint(out)
    assert any("fingerprint" in m and "sha256:0000" in m for m in _our_warnings(record))


# -- lineage (issue 13): the parent is recorded, a LoRA parent loads merged, folders move ---------
def _adapter(seed: int):
    from peft import LoraConfig

    torch.manual_seed(seed)  # init_lora_weights=False: a lost adapter would change the logits
    return LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)


def _lora_chain(root: Path, tiny_dir: Path, tokenizer) -> tuple[Path, Path, torch.Tensor]:
    """tiny -> LoRA a -> LoRA b, trained as `svpo train` does: a loaded with a new adapter."""
    first = load_checkpoint(tiny_dir, peft=_adapter(0))
    a = save_checkpoint(root / "a", first.model, tokenizer, None, CheckpointMeta(str(tiny_dir)))
    second = load_checkpoint(a, peft=_adapter(1))
    expected = _logits(second.model)
    b = save_checkpoint(root / "b", second.model, tokenizer, None, CheckpointMeta(str(a)))
    return a, b, expected


def test_lora_on_a_lora_checkpoint_loads_both_adapters_after_a_move(
    tmp_path, tiny_dir, tiny_model, tiny_tokenizer
) -> None:
    a, b, expected = _lora_chain(tmp_path / "set", tiny_dir, tiny_tokenizer)
    data = json.loads((b / META_FILE).read_text())
    assert data["base_model"] == "../a" and data["base_model_path"] == str(a)
    loaded = load_checkpoint(b)
    assert loaded.meta.base_model == str(a)  # where it was found, so a re-save records it again
    assert torch.allclose(_logits(loaded.model), expected, atol=1e-5)
    for other in (load_checkpoint(a).model, tiny_model):  # neither a's policy nor the base's
        assert not torch.allclose(_logits(other), expected, atol=1e-3)
    merged = load_checkpoint(b, peft="merge")
    assert torch.allclose(_logits(merged.model), expected, atol=1e-5)

    moved = Path(shutil.move(tmp_path / "set", tmp_path / "x" / "moved"))
    # b finds a by its relative record; a finds tiny_dir (not moved) by the absolute fallback
    assert torch.allclose(_logits(load_checkpoint(moved / "b").model), expected, atol=1e-5)


def test_lineage_errors(tmp_path, tiny_dir, tiny_tokenizer) -> None:
    a, b, _ = _lora_chain(tmp_path, tiny_dir, tiny_tokenizer)
    before = _logits(load_checkpoint(a).model)
    loaded = load_checkpoint(a, peft=_adapter(2))
    with pytest.raises(CheckpointError, match="own base"):  # it would destroy its own weights
        meta = CheckpointMeta(str(a))
        save_checkpoint(a, loaded.model, tiny_tokenizer, None, meta, overwrite=True)
    assert torch.equal(_logits(load_checkpoint(a).model), before)
    meta_a = json.loads((a / META_FILE).read_text())
    (a / META_FILE).write_text(json.dumps({**meta_a, "base_model": "../b", "base_model_path": ""}))
    with pytest.raises(CheckpointError, match="loops back"):
        load_checkpoint(b)
    (a / META_FILE).write_text(
        json.dumps({**meta_a, "base_model": "a note", "base_model_path": ""})
    )
    with pytest.raises(CheckpointError, match=r"base model .* not found \(tried .*'a note'"):
        load_checkpoint(a)


def test_merged_lora_parent_is_fully_trainable(tmp_path, tiny_dir, tiny_tokenizer) -> None:
    """`svpo train --full` on a LoRA checkpoint trains all weights of the merged policy."""
    a, _, _ = _lora_chain(tmp_path, tiny_dir, tiny_tokenizer)
    loaded = load_checkpoint(a, peft="merge", trainable=True)
    assert all(p.requires_grad for p in loaded.model.parameters())


def test_record_base_keeps_hub_ids_and_notes(tmp_path, tiny_dir) -> None:
    from svpo_harness.engines.checkpoint_lineage import record_base

    assert record_base("org/model", tmp_path / "c") == ("org/model", None)
    assert record_base("a note", tmp_path / "c") == ("a note", None)
    rel, absolute = record_base(str(tiny_dir), tmp_path / "c")
    assert absolute == str(tiny_dir) and Path(os.path.normpath(tmp_path / "c" / rel)) == tiny_dir
