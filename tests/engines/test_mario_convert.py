"""`svpo convert --from-mario/--to-mario`: the released SVPO_7B layout in and out of ours.

Each test writes a small Llama in the MARIO layout itself (the tiny fixture model cast to bf16,
`"value_model": true` in config.json, `value_head.pth` with `v_head.summary.*` in bf16), since
the released 7B cannot be downloaded here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from svpo_harness.cli import main
from svpo_harness.engines.checkpoint import CheckpointError, load_checkpoint
from svpo_harness.engines.mario_format import (
    BIAS_KEY,
    MARIO_HEAD_FILE,
    WEIGHT_KEY,
    export_mario,
    import_mario,
)

HIDDEN = 64  # the tiny fixture model's width (conftest.HIDDEN)
HOOK = Path(sysconfig.get_paths()["purelib"]) / "svpo_harness_lm_eval.pth"
TEXT = "Tom has 3 + 4 = 7 apples.\n\nThe answer is 7.\n"


def write_mario(src: Path, out: Path, *, dropout: float | None = None, seed: int = 3) -> Path:
    """The released layout: bf16 HF weights, "value_model": true, a bf16 value_head.pth."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16)
    model.config.value_model = True
    if dropout is not None:
        model.config.summary_dropout_prob = dropout
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    gen = torch.Generator().manual_seed(seed)
    # values spread over (-1, 1): a wrong hidden state or a dropped bias shows up clearly
    head = {
        WEIGHT_KEY: (torch.randn(1, HIDDEN, generator=gen) * 0.3).to(torch.bfloat16),
        BIAS_KEY: torch.tensor([0.125], dtype=torch.bfloat16),
    }
    torch.save(head, out / MARIO_HEAD_FILE)
    return out


@pytest.fixture(scope="module")
def mario_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mario(tiny_dir, tmp_path_factory.mktemp("mario") / "SVPO_tiny")


@pytest.fixture(scope="module")
def converted(mario_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ours") / "ckpt"
    result = CliRunner().invoke(
        main, ["convert", "--from-mario", str(mario_dir), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "off its training format" not in result.output  # the released format: no caveat
    return out


@torch.inference_mode()
def test_values_equal_tanh_of_the_released_head_by_hand(mario_dir, converted, tiny_tokenizer):
    """Our loader's value = tanh(W h + b) from the bf16 pth, h = last token, after final norm."""
    from transformers import AutoModelForCausalLM

    source = AutoModelForCausalLM.from_pretrained(mario_dir).eval()
    raw = torch.load(mario_dir / MARIO_HEAD_FILE, weights_only=True)
    ids = torch.tensor([tiny_tokenizer(TEXT)["input_ids"]])
    h = source(ids, output_hidden_states=True).hidden_states[-1][0].float()  # [T, H]
    by_hand = torch.tanh(h @ raw[WEIGHT_KEY].float()[0] + raw[BIAS_KEY].float()[0])

    loaded = load_checkpoint(converted)
    assert loaded.value_head is not None and loaded.value_head.config.dropout == 0.1
    assert loaded.value_head.linear.weight.dtype == torch.float32
    ours_h = loaded.model(ids, output_hidden_states=True).hidden_states[-1][0]
    ours = loaded.value_head(ours_h)
    # Same weights, same fp32 arithmetic on the same bf16 state: only summation order differs.
    assert torch.allclose(ours, by_hand, atol=1e-6, rtol=0), (ours - by_hand).abs().max()
    assert by_hand.abs().max() > 0.3 and by_hand.std() > 0.05  # not a constant, not ~0
    # the reference computes the head in bf16: ours is that function without its rounding
    bf16 = torch.tanh(
        torch.nn.functional.linear(h.bfloat16(), raw[WEIGHT_KEY], raw[BIAS_KEY])
    ).squeeze(-1)
    assert torch.allclose(ours, bf16.float(), atol=2e-2)


@torch.inference_mode()
def test_logits_equal_the_source_model(mario_dir, converted, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    source = AutoModelForCausalLM.from_pretrained(mario_dir).eval()
    loaded = load_checkpoint(converted)
    ids = torch.tensor([tiny_tokenizer(TEXT)["input_ids"]])
    assert next(loaded.model.parameters()).dtype == torch.bfloat16  # kept as stored
    assert torch.equal(loaded.model(ids).logits, source(ids).logits)


def test_svpo_json_records_the_conversion(mario_dir, converted):
    meta = json.loads((converted / "svpo.json").read_text())
    assert meta["policy"] == "full"
    assert meta["step_format"]["name"] == "tool"  # the released models' format
    assert meta["value_head"] == {"hidden_size": HIDDEN, "dropout": 0.1}
    info = meta["training"]["converted_from_mario"]
    assert info["source"] == str(mario_dir.resolve())
    assert info["value_head_dtype"] == "bfloat16"
    config = json.loads((converted / "config.json").read_text())
    assert "value_model" not in config  # our head lives in value_head.safetensors
    assert not (converted / MARIO_HEAD_FILE).exists()


def test_to_mario_round_trips_exactly(mario_dir, converted, tmp_path):
    from safetensors.torch import load_file

    back = tmp_path / "back"
    result = CliRunner().invoke(main, ["convert", "--to-mario", str(converted), "--out", str(back)])
    assert result.exit_code == 0, result.output
    before = torch.load(mario_dir / MARIO_HEAD_FILE, weights_only=True)
    after = torch.load(back / MARIO_HEAD_FILE, weights_only=True)
    assert list(after) == list(before) == [WEIGHT_KEY, BIAS_KEY]
    for key in before:
        assert after[key].dtype == torch.bfloat16
        assert after[key].shape == before[key].shape
        assert torch.equal(after[key], before[key]), key
    config = json.loads((back / "config.json").read_text())
    assert config["value_model"] is True and config["architectures"] == ["LlamaForCausalLM"]
    assert "summary_dropout_prob" not in config  # the default: not written
    weights, original = (
        load_file(back / "model.safetensors"),
        load_file(mario_dir / "model.safetensors"),
    )
    assert weights.keys() == original.keys()
    assert all(torch.equal(weights[k], original[k]) for k in original)
    # and the exported folder imports again to the same checkpoint values
    again = import_mario(back, tmp_path / "again")
    assert torch.equal(
        load_checkpoint(again.out).value_head.linear.weight,
        load_checkpoint(converted).value_head.linear.weight,
    )


def test_a_non_default_dropout_is_carried_both_ways(tiny_dir, tmp_path):
    src = write_mario(tiny_dir, tmp_path / "m", dropout=0.0)
    ours = import_mario(src, tmp_path / "ours").out
    assert load_checkpoint(ours).value_head.config.dropout == 0.0
    back = export_mario(ours, tmp_path / "back").out
    assert json.loads((back / "config.json").read_text())["summary_dropout_prob"] == 0.0


def test_lora_checkpoint_is_merged_on_export(converted, tmp_path, tiny_tokenizer):
    """--to-mario of a LoRA checkpoint writes the merged policy, whose logits match the LoRA's."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    from svpo_harness.engines.checkpoint import CheckpointMeta, save_checkpoint

    lora_config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"])
    loaded = load_checkpoint(converted, dtype="float32", peft=lora_config, trainable=True)
    with torch.no_grad():  # a non-zero adapter, so merging changes the weights
        for name, param in loaded.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    meta = CheckpointMeta(base_model=str(converted), step_format=loaded.step_format)
    lora = save_checkpoint(
        tmp_path / "lora", loaded.model, loaded.tokenizer, loaded.value_head, meta
    )
    assert json.loads((lora / "svpo.json").read_text())["policy"] == "lora"
    # fp32 on both sides: the merge itself is then exact up to fp32 rounding
    back = export_mario(lora, tmp_path / "back", dtype="float32").out
    assert not (back / "adapter_config.json").exists()
    ids = torch.tensor([tiny_tokenizer(TEXT)["input_ids"]])
    with torch.inference_mode():
        expected = load_checkpoint(lora, dtype="float32").model(ids).logits
        got = AutoModelForCausalLM.from_pretrained(back).eval()(ids).logits
        plain = load_checkpoint(converted, dtype="float32").model(ids).logits
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, atol=1e-4), (got - expected).abs().max()
    assert not torch.allclose(got, plain, atol=1e-2)  # the adapter really is in the weights
    head = torch.load(back / MARIO_HEAD_FILE, weights_only=True)
    assert torch.equal(head[WEIGHT_KEY].float(), loaded.value_head.linear.weight)


# -- clear errors ----------------------------------------------------------------------------------
def _convert(*args: str):
    return CliRunner().invoke(main, ["convert", *args])


def test_missing_value_head_pth_is_named(mario_dir, tmp_path):
    src = tmp_path / "m"
    shutil.copytree(mario_dir, src)
    (src / MARIO_HEAD_FILE).unlink()
    result = _convert("--from-mario", str(src), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert f"{src / MARIO_HEAD_FILE}: missing" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("key", "tensor", "found"),
    [
        (WEIGHT_KEY, torch.zeros(1, HIDDEN + 1), f"[1, {HIDDEN + 1}]"),
        (WEIGHT_KEY, torch.zeros(HIDDEN), f"[{HIDDEN}]"),
        (BIAS_KEY, torch.zeros(2), "[2]"),
    ],
)
def test_wrong_shapes_name_the_key_and_the_shape(mario_dir, tmp_path, key, tensor, found):
    src = tmp_path / "m"
    shutil.copytree(mario_dir, src)
    state = torch.load(src / MARIO_HEAD_FILE, weights_only=True)
    torch.save({**state, key: tensor.to(torch.bfloat16)}, src / MARIO_HEAD_FILE)
    with pytest.raises(CheckpointError, match=rf"key '{key}'.*found \{found}") as err:
        import_mario(src, tmp_path / "o")
    assert "expected shape" in str(err.value)


def test_wrong_keys_are_listed(mario_dir, tmp_path):
    src = tmp_path / "m"
    shutil.copytree(mario_dir, src)
    state = torch.load(src / MARIO_HEAD_FILE, weights_only=True)
    torch.save({k.removeprefix("v_head."): v for k, v in state.items()}, src / MARIO_HEAD_FILE)
    with pytest.raises(CheckpointError, match=r"found \['summary.bias', 'summary.weight'\]"):
        import_mario(src, tmp_path / "o")


def test_a_pickle_with_code_is_refused_not_run(mario_dir, tmp_path):
    """weights_only=True: a pickle that would call a function is an error, and nothing runs."""
    src = tmp_path / "m"
    shutil.copytree(mario_dir, src)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({WEIGHT_KEY: Evil()}, src / MARIO_HEAD_FILE)
    with pytest.raises(CheckpointError, match="cannot be read as a tensor dict"):
        import_mario(src, tmp_path / "o")
    assert not marker.exists()


def test_missing_config_and_not_a_causal_lm(mario_dir, tmp_path):
    src = tmp_path / "m"
    shutil.copytree(mario_dir, src)
    config = json.loads((src / "config.json").read_text())
    (src / "config.json").unlink()
    result = _convert("--from-mario", str(src), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "config.json: missing" in result.output
    (src / "config.json").write_text(
        json.dumps({**config, "architectures": ["BertModel"], "model_type": "bert"})
    )
    result = _convert("--from-mario", str(src), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "expected a causal LM" in result.output and "BertModel" in result.output
    missing = _convert("--from-mario", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    assert missing.exit_code != 0 and "not a folder" in missing.output


def test_export_needs_a_value_head_and_one_direction(converted, tmp_path):
    bare = load_checkpoint(converted, value_head="none")
    from svpo_harness.engines.checkpoint import save_checkpoint

    headless = save_checkpoint(tmp_path / "bare", bare.model, bare.tokenizer, None, bare.meta)
    result = _convert("--to-mario", str(headless), "--out", str(tmp_path / "o"))
    assert result.exit_code != 0 and "no value head" in result.output
    both = _convert("--to-mario", str(converted), "--from-mario", "x", "--out", str(tmp_path / "o"))
    assert both.exit_code == 2 and "exactly one of" in both.output
    taken = _convert("--to-mario", str(converted), "--out", str(converted))
    assert taken.exit_code != 0 and "already exists" in taken.output
    again = _convert("--from-mario", str(tmp_path), "--out", str(converted))
    assert again.exit_code != 0 and "already exists" in again.output


# -- the converted checkpoint under stock lm-eval --------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(
    not HOOK.is_file(), reason="lm-eval start-up hook not installed (pip install -e . first)"
)
def test_converted_checkpoint_evaluates_with_stock_lm_eval(tmp_path, monkeypatch):
    """MARIO layout of the shipped demo model -> ours -> `lm_eval --model svpo` greedy: the
    same responses as the demo model itself (greedy reads no value, and the policy weights are
    copied exactly)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # responses compared token for token: one thread
    pytest.importorskip("lm_eval")
    from svpo_harness.grading import extract_answer, is_equiv
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    demo = shipped_demo_model()
    loaded = load_checkpoint(demo)
    src = tmp_path / "mario"
    loaded.model.config.value_model = True
    loaded.model.save_pretrained(src)
    loaded.tokenizer.save_pretrained(src)
    head = loaded.value_head.linear
    torch.save(
        {WEIGHT_KEY: head.weight.detach().bfloat16(), BIAS_KEY: head.bias.detach().bfloat16()},
        src / MARIO_HEAD_FILE,
    )
    result = import_mario(src, tmp_path / "ckpt", step_format="arith")
    assert any("off its training format" in note for note in result.notes)  # not 'tool': said
    ckpt = result.out

    def run(model: Path, name: str) -> list[str]:
        out = tmp_path / name
        out.mkdir()
        lm_eval = Path(sys.executable).with_name("lm_eval")
        cmd = [str(lm_eval), "--model", "svpo", "--model_args",
               f"pretrained={model},decoding=greedy,device=cpu", "--tasks", "svpo_arith",
               "--limit", "3", "--output_path", str(out), "--log_samples"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=out, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        results = json.loads(next(out.rglob("results_*.json")).read_text())["results"]
        samples = [json.loads(x) for x in next(out.rglob("samples_svpo_arith*.jsonl")).open()]
        assert len(samples) == 3
        # each question's score is the grader's verdict on its response; acc is their mean
        for s in samples:
            found = extract_answer(s["resps"][0][0], style="strict")
            right = found is not None and is_equiv(found.answer, str(s["doc"]["answer"]))
            assert s["acc"] == float(right), s["resps"][0][0]
        assert results["svpo_arith"]["acc,none"] == pytest.approx(
            sum(s["acc"] for s in samples) / 3
        )
        return [s["resps"][0][0] for s in samples]

    got = run(ckpt, "converted")
    assert all(text.strip() for text in got)
    assert got == run(demo, "demo")
