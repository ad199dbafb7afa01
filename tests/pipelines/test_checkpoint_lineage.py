"""Issue 13: a checkpoint loads as exactly the policy it was trained as, wherever it was moved.

A chain demo model -> LoRA -> LoRA is trained with `svpo train` (a few steps each), the logits of
each policy are captured at the moment it is saved, and each folder is loaded back (in place,
moved together, moved alone, through `lm_eval --model svpo`) and compared with them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

PROMPT = "Question: Tom has 12 apples and buys 7 more. How many apples does he have?\nAnswer:\n"
NAMES = ("m", "l1", "l2")  # the demo model, a LoRA on it, a LoRA on that LoRA


def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits.float()


def _train_flags(model: str, out: str) -> list[str]:
    return [
        "train",
        "--objective=sft",
        f"--model={model}",
        f"--out={out}",
        "--data=arith",
        "--arith-n=16",
        "--max-steps=2",
        "--batch-size=4",
        "--lora-r=4",
        "--lr=0.02",
        "--max-length=96",
        "--save-every=0",
        "--device=cpu",
    ]


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> dict:
    """``svpo train --model m --out l1`` then ``--model l1 --out l2``, run from the set's folder
    with relative paths (as a user types them); the trained policies' logits, captured at save."""
    from click.testing import CliRunner

    import svpo_harness.engines.checkpoint as checkpoint
    from svpo_harness.cli import main
    from svpo_harness.pipelines.demo.demo_model import copy_shipped_demo_model

    root = tmp_path_factory.mktemp("lineage")
    folder = root / "set"
    copy_shipped_demo_model(folder / "m")
    base = checkpoint.load_checkpoint(folder / "m", value_head="none")
    ids = torch.tensor([base.tokenizer(PROMPT).input_ids])
    trained = {"m": _logits(base.model, ids)}
    real_save = checkpoint.save_checkpoint

    def capturing_save(out, model, *args, **kwargs):
        trained[Path(out).name] = _logits(model, ids)  # the policy as it was trained
        return real_save(out, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.setattr(checkpoint, "save_checkpoint", capturing_save)
        for parent, child in (("m", "l1"), ("l1", "l2")):
            result = CliRunner().invoke(main, _train_flags(parent, child))
            assert result.exit_code == 0, result.output
    return {"root": root, "folder": folder, "ids": ids, "trained": trained}


@contextmanager
def _moved(src: Path, dst: Path) -> Iterator[Path]:
    """Move a folder for the duration of a block, then put it back (the fixture is shared)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(src, dst)
    try:
        yield dst
    finally:
        shutil.move(dst, src)


def _assert_loads_as_trained(chain: dict, folder: Path) -> None:
    from svpo_harness.engines.checkpoint import load_checkpoint

    for name in NAMES:
        loaded = load_checkpoint(folder / name, value_head="none")
        got = _logits(loaded.model, chain["ids"])
        assert torch.allclose(got, chain["trained"][name], atol=1e-5), name


def test_each_checkpoint_records_its_parent_not_the_parents_base(chain) -> None:
    folder = chain["folder"]
    for name, parent in (("l1", "m"), ("l2", "l1")):
        meta = json.loads((folder / name / "svpo.json").read_text())
        assert meta["policy"] == "lora"
        assert meta["base_model"] == f"../{parent}"  # relative: moves with the set
        assert meta["base_model_path"] == os.path.abspath(folder / parent)  # the fallback
    # the three policies differ, so the comparisons below can tell them apart
    trained = chain["trained"]
    assert (trained["l1"] - trained["m"]).abs().max() > 1e-3
    assert (trained["l2"] - trained["l1"]).abs().max() > 1e-3


def test_lora_on_lora_keeps_the_first_adapter(chain) -> None:
    """The old loader put l2's adapter on the demo model's weights: l1's adapter was lost."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    folder = chain["folder"]
    _assert_loads_as_trained(chain, folder)
    first_lost = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(folder / "m")), str(folder / "l2")
    ).eval()
    lost = _logits(first_lost, chain["ids"])
    assert (lost - chain["trained"]["l2"]).abs().max() > 1e-3


def test_the_set_moved_together_or_one_folder_alone_still_loads(chain) -> None:
    root, folder = chain["root"], chain["folder"]
    with _moved(folder, root / "elsewhere" / "deeper" / "set") as moved:
        _assert_loads_as_trained(chain, moved)  # relative records (absolute ones are stale)
    with _moved(folder / "l2", root / "alone" / "l2") as alone:
        from svpo_harness.engines.checkpoint import load_checkpoint

        got = _logits(load_checkpoint(alone, value_head="none").model, chain["ids"])
        assert torch.allclose(got, chain["trained"]["l2"], atol=1e-5)  # absolute fallback


def test_a_missing_parent_is_a_clear_error_naming_the_places_tried(chain) -> None:
    from svpo_harness.engines.checkpoint import CheckpointError, load_checkpoint

    folder = chain["folder"]
    with _moved(folder / "l1", chain["root"] / "gone" / "l1"):
        with pytest.raises(CheckpointError, match=r"not found \(tried .*l1") as err:
            load_checkpoint(folder / "l2")
    assert "move its parent folder back" in str(err.value)


def test_training_on_the_moved_chain_and_lm_eval_loading(chain) -> None:
    """`svpo train --model l2` and `lm_eval --model svpo` both load the moved checkpoint."""
    pytest.importorskip("lm_eval")
    from click.testing import CliRunner

    from svpo_harness.cli import main
    from svpo_harness.lm_eval_model import SVPOLM
    from svpo_harness.lm_eval_plugin import register_all

    register_all()
    with _moved(chain["folder"], chain["root"] / "moved" / "set") as moved:
        lm = SVPOLM.create_from_arg_obj(
            {"pretrained": str(moved / "l2"), "device": "cpu", "decoding": "greedy"}
        )
        got = _logits(lm.loaded.model, chain["ids"])
        assert torch.allclose(got, chain["trained"]["l2"], atol=1e-5)
        out = chain["root"] / "l3"
        result = CliRunner().invoke(main, _train_flags(str(moved / "l2"), str(out)))
        assert result.exit_code == 0, result.output
        assert json.loads((out / "svpo.json").read_text())["base_model_path"] == str(moved / "l2")


def test_lora_out_folder_cannot_be_its_own_model(tmp_path) -> None:
    from svpo_harness.pipelines.train.train_config import TrainConfig

    with pytest.raises(ValueError, match="out must differ from model"):
        TrainConfig(model=str(tmp_path / "m"), out=str(tmp_path / "m" / ".." / "m"))
    TrainConfig(model=str(tmp_path / "m"), out=str(tmp_path / "m"), full=True)  # overwrites


def test_lora_on_lora_resumes_from_its_step_checkpoint(chain, tmp_path) -> None:
    """Step checkpoints in OUT.run/ name the same parent (relative to themselves): a killed
    LoRA-on-LoRA run resumes on the merged parent and ends where the uninterrupted one does."""
    from svpo_harness.engines.checkpoint import load_checkpoint
    from svpo_harness.pipelines.train.train import run_training
    from svpo_harness.pipelines.train.train_config import TrainConfig

    def cfg(out: str, **over) -> TrainConfig:
        settings = dict(model=str(chain["folder"] / "l1"), out=str(tmp_path / out), arith_n=16)
        settings.update(max_steps=3, batch_size=4, lora_r=4, lr=0.02, max_length=96)
        return TrainConfig(**settings, save_every=1, device="cpu", **over)

    straight = run_training(cfg("a"), progress=False)

    def kill_at_2(step: int, loss: float) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(cfg("b"), on_step=kill_at_2, progress=False)
    resumed = run_training(cfg("b", resume=True), progress=False)
    assert resumed.resumed_from == 1
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5, abs=1e-6)
    logits = [
        _logits(load_checkpoint(tmp_path / name, value_head="none").model, chain["ids"])
        for name in ("a", "b")
    ]
    assert torch.allclose(logits[0], logits[1], atol=1e-4)
    assert (logits[0] - chain["trained"]["l1"]).abs().max() > 1e-3  # a new adapter on top
