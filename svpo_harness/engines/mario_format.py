"""The released AlphaMath/SVPO layout (Super_MARIO) in and out of our checkpoint layout.

``MARIO-Math-Reasoning/SVPO_7B`` (and AlphaMath-7B) is a plain HF causal-LM folder (Llama
architecture) whose ``config.json`` says ``"value_model": true``, plus ``value_head.pth``: a
``torch.save``d dict ``{"v_head.summary.weight": [1, H], "v_head.summary.bias": [1]}`` in bf16.
The reference's head (trl's ``ValueHead``) is ``tanh(summary(dropout(h)))`` on the final-layer
hidden state after the final norm, read at the last input token; dropout is
``config.summary_dropout_prob`` (0.1 when absent) and is off at inference. Ours
(``engines.value_head``) is ``tanh(Linear(dropout(h)))`` at the same position (method.md section
2.1), so the mapping is exact: ``summary.weight`` -> ``linear.weight``, ``summary.bias`` ->
``linear.bias``, the same dropout. The one difference is arithmetic: the reference runs the head
in the dtype of its weights (bf16), ours upcasts the bf16 weights and the hidden state to fp32
(exact casts), so our value is the fp32 value of the same function.

Both directions load through ``engines.checkpoint.load_checkpoint`` (the one loader) and
``--from-mario`` writes through ``save_checkpoint``: no second format of ours.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from svpo_harness.core.step_format import StepFormat, get_step_format
from svpo_harness.engines.checkpoint import (
    META_FILE,
    CheckpointError,
    CheckpointMeta,
    load_checkpoint,
    save_checkpoint,
    tokenizer_fingerprint,
)
from svpo_harness.engines.value_head import ValueHead

MARIO_HEAD_FILE = "value_head.pth"
WEIGHT_KEY = "v_head.summary.weight"
BIAS_KEY = "v_head.summary.bias"
VALUE_MODEL_FLAG = "value_model"  # config.json key the reference's forked vLLM looks for
DROPOUT_KEY = "summary_dropout_prob"  # trl's ValueHead reads its dropout from here
MARIO_DROPOUT = 0.1  # trl's default when the config has no summary_dropout_prob
HEAD_DTYPE = torch.bfloat16  # what the released value_head.pth holds
# The released models write tool-integrated steps (prompt "<question> {q} </question>\n", steps
# "<step><p>...</p><code>...</code><output>...</output></step>", stops at </code> and </step>,
# code run between steps): the `tool` step format (core.step_format, core.tool_policy), recorded
# unless told otherwise.
MARIO_STEP_FORMAT = "tool"
MARIO_FORMAT_NOTE = (
    "recorded step format {name!r}; the released SVPO/AlphaMath models were trained on the "
    "tool-integrated format ('tool'), so decoding with this checkpoint prompts it off its "
    "training format"
)


@dataclass
class ConvertResult:
    """What a conversion wrote, and what the user should know about it (one line each)."""

    out: Path
    notes: list[str] = field(default_factory=list)


# -- reading the MARIO layout ----------------------------------------------------------------------
def read_mario_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a MARIO folder, checked to describe a causal LM."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    file = folder / "config.json"
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: not a folder (expected a MARIO model folder)")
    if not file.is_file():
        raise CheckpointError(f"{file}: missing (a MARIO model folder has the HF config.json)")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{file}:{err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{file}: expected a JSON object, got {type(config).__name__}")
    archs = config.get("architectures") or []
    model_type = config.get("model_type")
    causal = any(str(a).endswith("ForCausalLM") for a in archs) or (
        not archs and model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    )
    if not causal:
        raise CheckpointError(
            f"{file}: field 'architectures': expected a causal LM (e.g. LlamaForCausalLM, as "
            f"in SVPO_7B), got {archs or None} (model_type {model_type!r})"
        )
    if not isinstance(config.get("hidden_size"), int):
        raise CheckpointError(f"{file}: field 'hidden_size': expected an integer")
    return config


def read_mario_head(folder: Path, hidden_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight [1, H], bias [1])`` from ``value_head.pth``, checked, in their stored dtype."""
    import pickle

    file = folder / MARIO_HEAD_FILE
    if not file.is_file():
        hint = (
            f" ({folder} has {META_FILE}: it is already an svpo checkpoint)"
            if (folder / META_FILE).is_file()
            else " (the released layout keeps the value head there, next to config.json)"
        )
        raise CheckpointError(f"{file}: missing{hint}")
    try:  # weights_only: a pickle from the internet must not run code when loaded
        state = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"{file}: cannot be read as a tensor dict ({first})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{file}: expected a dict of tensors, got {type(state).__name__}")
    expected = {WEIGHT_KEY: (1, hidden_size), BIAS_KEY: (1,)}
    if set(state) != set(expected):
        raise CheckpointError(
            f"{file}: expected the keys {sorted(expected)}, found {sorted(map(str, state))}"
        )
    for key, shape in expected.items():
        tensor = state[key]
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            raise CheckpointError(f"{file}: key {key!r}: expected a float tensor")
        if tuple(tensor.shape) != shape:
            raise CheckpointError(
                f"{file}: key {key!r}: expected shape {list(shape)} (hidden_size "
                f"{hidden_size} from config.json), found {list(tensor.shape)}"
            )
    return state[WEIGHT_KEY], state[BIAS_KEY]


def head_from_mario(weight: torch.Tensor, bias: torch.Tensor, dropout: float) -> ValueHead:
    """Our head holding exactly the released weights (bf16 -> fp32 is exact)."""
    head = ValueHead(int(weight.shape[-1]), dropout)
    with torch.no_grad():
        head.linear.weight.copy_(weight.to(torch.float32))
        head.linear.bias.copy_(bias.to(torch.float32))
    return head.eval()


# -- MARIO -> ours ---------------------------------------------------------------------------------
def import_mario(
    src: str | Path,
    out: str | Path,
    *,
    step_format: str | StepFormat | None = None,
    dtype: str = "auto",
    overwrite: bool = False,
) -> ConvertResult:
    """``svpo convert --from-mario SRC --out OUT``: policy weights + fp32 head + svpo.json."""
    folder = Path(src).expanduser()
    if Path(out).expanduser().exists() and not overwrite:  # before loading billions of weights
        raise CheckpointError(f"{out} already exists (choose another folder or pass --force)")
    config = read_mario_config(folder)
    weight, bias = read_mario_head(folder, int(config["hidden_size"]))
    notes: list[str] = []
    if config.get(VALUE_MODEL_FLAG) is not True:
        notes.append(
            f'{folder / "config.json"}: no "value_model": true (the released layout has it); '
            f"converted anyway since {MARIO_HEAD_FILE} is there"
        )
    dropout = float(config.get(DROPOUT_KEY) or 0.0) if DROPOUT_KEY in config else MARIO_DROPOUT
    fmt = get_step_format(step_format or MARIO_STEP_FORMAT)
    if fmt.name != MARIO_STEP_FORMAT:
        notes.append(MARIO_FORMAT_NOTE.format(name=fmt.name))

    loaded = load_checkpoint(folder, dtype=dtype, value_head="none", step_format=fmt)
    model = loaded.model
    for key in (VALUE_MODEL_FLAG, DROPOUT_KEY):  # the head's settings now live in svpo.json
        if key in model.config.__dict__:
            delattr(model.config, key)
    head = head_from_mario(weight, bias, dropout)
    meta = CheckpointMeta(
        base_model=str(folder),
        step_format=fmt,
        tokenizer_fingerprint=tokenizer_fingerprint(loaded.tokenizer),
        training={
            "converted_from_mario": {
                "source": str(folder.resolve()),
                "value_head_dtype": str(weight.dtype).removeprefix("torch."),
                "value_head_dropout": dropout,
                "value_model_flag": config.get(VALUE_MODEL_FLAG) is True,
                "step_format_recorded": fmt.name,
                "source_step_format": "mario-tool",
            }
        },
    )
    path = save_checkpoint(out, model, loaded.tokenizer, head, meta, overwrite=overwrite)
    return ConvertResult(path, notes)


# -- ours -> MARIO ---------------------------------------------------------------------------------
def export_mario(
    ckpt: str | Path, out: str | Path, *, dtype: str = "auto", overwrite: bool = False
) -> ConvertResult:
    """``svpo convert --to-mario CKPT --out OUT``: HF folder + ``value_head.pth`` (bf16).

    A LoRA checkpoint is merged first (through its whole lineage, as ``load_checkpoint`` does).
    """
    if Path(out).expanduser().exists() and not overwrite:
        raise CheckpointError(f"{out} already exists (choose another folder or pass --force)")
    loaded = load_checkpoint(ckpt, dtype=dtype, peft="merge")
    head = loaded.value_head
    if head is None:
        raise CheckpointError(
            f"{ckpt}: no value head; the MARIO layout needs one (create it with "
            "`svpo value-head init` or train one)"
        )
    model = loaded.model
    setattr(model.config, VALUE_MODEL_FLAG, True)
    if head.config.dropout != MARIO_DROPOUT:  # trl's head reads it from the config
        setattr(model.config, DROPOUT_KEY, head.config.dropout)
    weight = head.linear.weight.detach().to("cpu", HEAD_DTYPE).contiguous()
    bias = head.linear.bias.detach().to("cpu", HEAD_DTYPE).contiguous()
    notes = []
    lost = max(
        float((weight.float() - head.linear.weight.detach().cpu()).abs().max()),
        float((bias.float() - head.linear.bias.detach().cpu()).abs().max()),
    )
    if lost > 0:
        notes.append(f"value head rounded from fp32 to bf16 (largest weight change {lost:.2e})")
    if loaded.step_format.name != MARIO_STEP_FORMAT or loaded.meta.chat_template:
        notes.append(
            f"step format {loaded.step_format.name!r} and chat template are not part of the "
            "MARIO layout; prompt the exported model as this checkpoint was trained"
        )
    with _atomic_folder(Path(out).expanduser(), overwrite) as tmp:
        model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        torch.save({WEIGHT_KEY: weight, BIAS_KEY: bias}, tmp / MARIO_HEAD_FILE)
    return ConvertResult(Path(out).expanduser(), notes)


@contextmanager
def _atomic_folder(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a sibling temp folder that replaces ``out`` only when the block succeeds."""
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out} already exists (choose another folder or pass --force)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
    old: Path | None = None
    try:
        yield tmp
        if out.exists():  # rename() cannot replace a non-empty folder: move the old one aside
            old = Path(tempfile.mkdtemp(prefix=f"{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        if old is not None and not out.exists():
            os.replace(old / out.name, out)  # put the previous folder back
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
