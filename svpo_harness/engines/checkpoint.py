"""The one place that loads and saves checkpoints (design.md, "Contracts that outlive refactors").

A checkpoint folder is:
- ``svpo.json``: ``{"schema_version": 1, "kind": "svpo-checkpoint", "library_version",
  "base_model", "policy": "full"|"lora", "step_format", "value_head": {"hidden_size",
  "dropout"}|null, "tokenizer_fingerprint", "chat_template", "training": {...}}``;
- policy ``"full"``: ``save_pretrained`` files at the top level, so ``AutoModelForCausalLM
  .from_pretrained(CKPT)`` and ``lm_eval --model hf --model_args pretrained=CKPT`` load it as is;
- policy ``"lora"``: peft adapter files at the top level (``PeftModel.from_pretrained(base, CKPT)``
  loads it as is) and the base model named by ``base_model`` (a folder or a hub id);
- tokenizer files at the top level in both cases; ``value_head.safetensors`` optional.

``base_model`` names the parent the checkpoint was trained from (the folder or hub id given to
``svpo train --model``), not the parent's own parent. A local parent is recorded relative to the
checkpoint folder (``"../m"``), with its absolute path in ``base_model_path`` as the fallback, so
a checkpoint loads as exactly the policy it was trained as after its folders are moved together
(or it alone is). A LoRA checkpoint on a LoRA parent loads the parent recursively, merged, then
its own adapter. The rule and the order of look-ups: ``engines.checkpoint_lineage``.

A plain HF folder or hub id without ``svpo.json`` loads too (step format ``cot``, no value head), as
does a bare peft adapter folder. Writes are atomic: everything goes into a sibling
``<name>.tmp-XXXX`` folder that is renamed into place only when complete.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from svpo_harness.core.step_format import StepFormat, get_step_format
from svpo_harness.engines.checkpoint_lineage import check_lineage, locate_base, missing_base
from svpo_harness.engines.checkpoint_meta import (
    DEFAULT_STEP_FORMAT,
    KIND,
    META_FILE,
    SCHEMA_VERSION,
    CheckpointError,
    CheckpointMeta,
    hub_file,
    is_hub_id,
    read_meta,
    tokenizer_fingerprint,
)
from svpo_harness.engines.checkpoint_save import save_checkpoint
from svpo_harness.engines.value_head import DEFAULT_DROPOUT, VALUE_HEAD_FILE, ValueHead

__all__ = [
    "DEFAULT_STEP_FORMAT",
    "KIND",
    "META_FILE",
    "SCHEMA_VERSION",
    "CheckpointError",
    "CheckpointMeta",
    "LoadedCheckpoint",
    "init_value_head_checkpoint",
    "load_checkpoint",
    "load_head",
    "meta_of",
    "read_meta",
    "resolve_device",
    "resolve_dtype",
    "save_checkpoint",
    "tokenizer_fingerprint",
]

ADAPTER_CONFIG = "adapter_config.json"  # peft's adapter file: a bare adapter folder loads too
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedCheckpoint:
    """What ``load_checkpoint`` returns. ``value_head`` is None when there is none."""

    model: Any  # transformers PreTrainedModel or peft PeftModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    value_head: ValueHead | None
    step_format: StepFormat
    meta: CheckpointMeta


# -- small resolvers -----------------------------------------------------------------------------
def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when present; CUDA asked for but absent falls back to CPU (warned)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device {device!r} requested but CUDA is not available; using CPU", stacklevel=2
        )
        return torch.device("cpu")
    return dev


def resolve_dtype(dtype: str | torch.dtype) -> str | torch.dtype:
    """``"auto"`` (the checkpoint's own dtype) or a torch dtype from its name."""
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise CheckpointError(f"unknown dtype {dtype!r}; use auto, {', '.join(DTYPES)}") from None


def _check_source(spec: str) -> None:
    path = Path(spec).expanduser()
    if path.exists() and not path.is_dir():
        raise CheckpointError(f"{spec} is a file; a checkpoint is a folder (or a hub id)")
    if not path.exists() and not is_hub_id(spec):
        raise CheckpointError(f"checkpoint folder not found: {spec} (check the path)")


def _from_pretrained(loader: Any, spec: str, what: str, **kwargs: Any) -> Any:
    try:
        return loader.from_pretrained(spec, **kwargs)
    except OSError as err:  # missing files, unknown hub id, offline without a cached copy
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"cannot load the {what} from {spec!r}: {first} (a local folder, or a hub id "
            "available offline in the HF cache)"
        ) from None


# -- loading ------------------------------------------------------------------------------------
def load_checkpoint(
    path_or_hub_id: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "auto",
    peft: Any = None,
    value_head: str | Path | None = None,
    step_format: str | dict[str, Any] | StepFormat | None = None,
    trainable: bool = False,
    device_map: str | dict[str, Any] | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    tokenizer_kwargs: dict[str, Any] | None = None,
) -> LoadedCheckpoint:
    """Load a svpo checkpoint, a plain HF model folder/hub id, or a bare peft adapter folder.

    - ``device``: the weights load straight onto it (no full host copy first); ``"auto"``: CUDA
      if present. ``device_map`` (``"auto"``, a dict) spreads the policy over GPUs instead; the
      head then sits on its first device. ``model_kwargs`` (``attn_implementation``,
      ``max_memory``...) go to ``from_pretrained``, ``tokenizer_kwargs`` to the tokenizer's.
    - ``revision``: the hub revision of this checkpoint's own files, not of a LoRA ``base_model``.
    - ``dtype``: ``"auto"`` keeps the stored dtype; ``"float32"``/``"bfloat16"`` cast the policy
      (the value head always stays fp32).
    - ``peft``: None loads the policy as recorded (a LoRA checkpoint stays a ``PeftModel``);
      ``"merge"`` merges a LoRA adapter into plain weights; a peft config (e.g. ``LoraConfig``)
      attaches a fresh adapter for training, after merging any recorded one (method.md section 5:
      merge the SFT adapter before adding a new one); a folder loads that adapter on top.
    - ``value_head``: None loads the checkpoint's head if it has one; ``"none"`` skips it; a
      folder or ``.safetensors`` path loads that head (checked against the model's hidden size).
    - ``step_format``: overrides the recorded one (name, dict or object).
    - ``trainable``: False freezes every parameter; True leaves the policy's (or only the
      adapter's) parameters and the head's trainable. The model is in eval mode either way
      (dropout off in the policy forwards, method.md section 5); the trainer sets modes.
    """
    spec = str(path_or_hub_id)
    _check_source(spec)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype)
    local = Path(spec).expanduser()
    if local.is_dir():
        spec = str(local)
    hub = {"revision": revision} if revision else {}
    meta, recorded = meta_of(spec, revision)
    found = locate_base(spec, meta) if recorded else None
    if found is not None:  # where the base is now (absolute): a re-save records it afresh
        meta.base_model, meta.base_model_path = found, None

    from transformers import AutoTokenizer

    remote = {"trust_remote_code": True} if trust_remote_code else {}
    tokenizer = _from_pretrained(
        AutoTokenizer, spec, "tokenizer", **hub, **remote, **(tokenizer_kwargs or {})
    )
    placed = _placement(torch_device, device_map)
    load = {"dtype": torch_dtype, **placed, **remote, **(model_kwargs or {})}
    model = _load_policy(spec, meta, load, hub, trainable)
    model = _apply_peft_option(model, peft, trainable)
    if not placed:
        model.to(torch_device)  # the CPU: where from_pretrained loaded it (a no-op)
    model.eval()
    if not trainable:
        model.requires_grad_(False)
    elif not _is_peft(model):  # a merged adapter leaves the base weights frozen: train them all
        model.requires_grad_(True)

    head_device = torch_device if device_map is None else _first_device(model)
    head = load_head(spec, meta, value_head, model, head_device, revision)
    if head is not None:
        head.eval()
        head.requires_grad_(trainable)
    fmt = get_step_format(step_format) if step_format is not None else meta.step_format
    _warn_about_metadata(spec, recorded, meta, head, fmt, tokenizer, step_format is not None)
    return LoadedCheckpoint(
        model=model, tokenizer=tokenizer, value_head=head, step_format=fmt, meta=meta
    )


def meta_of(spec: str, revision: str | None = None) -> tuple[CheckpointMeta, bool]:
    """``(meta, recorded)``: svpo.json, else what a plain HF model or bare adapter implies."""
    meta = read_meta(spec, revision)
    if meta is not None:
        return meta, True
    adapter = Path(spec).expanduser() / ADAPTER_CONFIG
    if not adapter.is_file():
        return CheckpointMeta(base_model=spec, policy="full"), False
    config = json.loads(adapter.read_text(encoding="utf-8"))
    base = str(config.get("base_model_name_or_path") or "")
    if not base:
        raise CheckpointError(f"{spec}: adapter_config.json names no base model")
    return CheckpointMeta(base_model=base, policy="lora"), False


def _load_policy(
    spec: str,
    meta: CheckpointMeta,
    load: dict[str, Any],
    hub: dict[str, Any],
    trainable: bool,
    chain: tuple[str, ...] = (),
) -> Any:
    """The policy as trained: full weights, or its base plus this adapter. A base that is itself
    a LoRA checkpoint is loaded the same way and merged first, as training on it did."""
    from transformers import AutoModelForCausalLM

    if meta.policy == "full":
        return _from_pretrained(AutoModelForCausalLM, spec, "model", **hub, **load)
    from peft import PeftModel

    base = locate_base(spec, meta)
    if base is None:
        raise missing_base(spec, meta)
    key = check_lineage(spec, base, chain)
    parent_meta, _ = meta_of(base)  # the base's own files: no revision (that is this one's)
    if parent_meta.policy == "lora":
        parent = _load_policy(base, parent_meta, load, {}, False, (*chain, key))
        parent = parent.merge_and_unload()
    else:
        parent = _from_pretrained(AutoModelForCausalLM, base, "base model", **load)
    return PeftModel.from_pretrained(parent, spec, is_trainable=trainable, **hub)


def _is_peft(model: Any) -> bool:
    return hasattr(model, "merge_and_unload") and hasattr(model, "peft_config")


def _warn_about_metadata(
    spec: str,
    recorded: bool,
    meta: CheckpointMeta,
    head: ValueHead | None,
    fmt: StepFormat,
    tokenizer: Any,
    format_given: bool,
) -> None:
    """Say what was assumed or does not match, instead of loading silently."""
    if not recorded and head is not None and not format_given:
        warnings.warn(
            f"{spec}: a value head but no {META_FILE}; assuming step format {fmt.name!r} "
            "(pass step_format=... if the head was trained on another one)",
            stacklevel=3,
        )
    if recorded and meta.tokenizer_fingerprint:
        found = tokenizer_fingerprint(tokenizer)
        if found != meta.tokenizer_fingerprint:
            warnings.warn(
                f"{spec}: the tokenizer's fingerprint {found} differs from the one recorded in "
                f"{META_FILE} ({meta.tokenizer_fingerprint}); token ids of trees and pairs "
                "made with this checkpoint may not match",
                stacklevel=3,
            )


def _apply_peft_option(model: Any, peft: Any, trainable: bool) -> Any:
    if peft is None:
        return model
    is_peft = _is_peft(model)
    if isinstance(peft, str) and peft == "merge":
        return model.merge_and_unload() if is_peft else model
    if isinstance(peft, (str, Path)):
        from peft import PeftModel

        if is_peft:
            model = model.merge_and_unload()
        if not Path(peft).is_dir():
            raise CheckpointError(f"peft adapter folder not found: {peft}")
        return PeftModel.from_pretrained(model, str(peft), is_trainable=trainable)
    from peft import PeftConfig, get_peft_model

    if not isinstance(peft, PeftConfig):
        raise CheckpointError(
            "peft must be None, 'merge', an adapter folder or a peft config, "
            f"got {type(peft).__name__}"
        )
    if is_peft:
        model = model.merge_and_unload()
    return get_peft_model(model, peft)


def _placement(device: torch.device, device_map: str | dict[str, Any] | None) -> dict[str, Any]:
    """from_pretrained's ``device_map``: weights land on the accelerator directly (no full copy
    in host memory first) or spread by accelerate's map; the CPU is from_pretrained's default."""
    if device_map is not None:
        return {"device_map": device_map}
    if device.type == "cpu":
        return {}
    return {"device_map": str(device)}


def _first_device(model: Any) -> torch.device:
    """Where a mapped model takes its inputs (and gives its outputs back): its first device."""
    for param in model.parameters():
        if param.device.type != "meta":  # disk-offloaded weights sit on "meta"
            return param.device
    return torch.device("cpu")


def _hidden_size(model: Any) -> int:
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return int(text.hidden_size)


def load_head(
    spec: str,
    meta: CheckpointMeta,
    choice: str | Path | None,
    model: Any,
    device: torch.device,
    revision: str | None = None,
) -> ValueHead | None:
    if choice is not None and str(choice) == "none":
        return None
    hidden = _hidden_size(model)
    if choice is None:
        local = Path(spec) / VALUE_HEAD_FILE
        file = local if local.is_file() else None
        if file is None and meta.value_head is not None and is_hub_id(spec):
            file = hub_file(spec, VALUE_HEAD_FILE, revision)
        if file is None:
            if meta.value_head is not None:
                raise CheckpointError(
                    f"{spec}: svpo.json records a value head but {VALUE_HEAD_FILE} is missing "
                    "(copy it back, or pass value_head='none')"
                )
            return None
        config = meta.value_head
    else:
        file, config = Path(choice), None
        head_meta = read_meta(file) if file.is_dir() else None
        config = head_meta.value_head if head_meta else None
    try:
        return ValueHead.load(file, config=config, expected_hidden_size=hidden, device=device)
    except (FileNotFoundError, ValueError) as err:
        raise CheckpointError(str(err)) from None


def init_value_head_checkpoint(
    base: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    step_format: str | StepFormat | None = None,
    *,
    dtype: str = "auto",
    dropout: float = DEFAULT_DROPOUT,
    overwrite: bool = False,
) -> Path:
    """``svpo value-head init``: BASE's policy as full weights plus a freshly initialised head.

    A LoRA BASE is merged first. The head's init draws from a generator seeded with
    ``derive_seed(seed, "value-head-init")``, so the same seed gives the same head anywhere.
    """
    from svpo_harness.core.seeding import derive_seed

    loaded = load_checkpoint(
        base, dtype=dtype, peft="merge", value_head="none", step_format=step_format
    )
    generator = torch.Generator().manual_seed(derive_seed(seed, "value-head-init"))
    head = ValueHead(_hidden_size(loaded.model), dropout, generator=generator)
    meta = CheckpointMeta(
        base_model=str(base),
        step_format=loaded.step_format,
        tokenizer_fingerprint=tokenizer_fingerprint(loaded.tokenizer),
        chat_template=loaded.meta.chat_template,
        training={"value_head_init": {"seed": seed, "dropout": dropout}},
    )
    return save_checkpoint(out_dir, loaded.model, loaded.tokenizer, head, meta, overwrite=overwrite)
