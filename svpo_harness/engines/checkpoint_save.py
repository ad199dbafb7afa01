"""Writing checkpoint folders atomically (the layout is described in ``engines.checkpoint``)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from svpo_harness.engines.checkpoint_lineage import local_folder, record_base
from svpo_harness.engines.checkpoint_meta import (
    META_FILE,
    CheckpointError,
    CheckpointMeta,
    tokenizer_fingerprint,
)
from svpo_harness.engines.value_head import ValueHead


def _fsync_tree(folder: Path) -> None:
    for file in folder.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())


def save_checkpoint(
    out_dir: str | Path,
    model: Any,
    tokenizer: Any,
    value_head: ValueHead | None,
    meta: CheckpointMeta,
    *,
    overwrite: bool = False,
    policy_state_dict: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint folder atomically and return its path.

    The policy kind follows the model: a ``PeftModel`` is saved as its adapter (``"lora"``),
    anything else as full weights. ``meta.value_head`` and a missing
    ``meta.tokenizer_fingerprint`` are filled in from the objects. Everything is written into
    ``<out_dir>.tmp-XXXX`` first; on any error that folder is removed and ``out_dir`` is left
    as it was. An existing ``out_dir`` is replaced only with ``overwrite=True``.

    ``meta.base_model`` names the parent (engines.checkpoint_lineage): a local folder is written
    relative to ``out_dir``, with its absolute path in ``base_model_path``; a hub id as given.

    ``policy_state_dict``: the model's full state dict when its own tensors are shards (DeepSpeed
    ZeRO-3, FSDP); passed to ``save_pretrained``, which keeps only the adapter for a PeftModel.
    """
    out = Path(out_dir).expanduser()
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out} already exists (choose another folder or overwrite it)")
    is_peft = hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")
    meta = CheckpointMeta(**{**meta.__dict__})  # never mutate the caller's object
    meta.policy = "lora" if is_peft else "full"
    meta.value_head = value_head.config if value_head is not None else None
    if meta.tokenizer_fingerprint is None:
        meta.tokenizer_fingerprint = tokenizer_fingerprint(tokenizer)
    if is_peft and not meta.base_model:
        meta.base_model = str(next(iter(model.peft_config.values())).base_model_name_or_path)
    if meta.policy == "lora" and not meta.base_model:
        raise CheckpointError("a LoRA checkpoint needs meta.base_model (the base folder or hub id)")
    if meta.policy == "lora" and local_folder(meta.base_model) == os.path.abspath(out):
        # the adapter would replace the weights it needs: nothing could load it again
        raise CheckpointError(f"{out} is this LoRA checkpoint's own base; save it elsewhere")
    meta.base_model, meta.base_model_path = record_base(meta.base_model, out, meta.base_model_path)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{out.name}.tmp-", dir=out.parent))
    old: Path | None = None
    try:
        # safetensors; a PeftModel writes only its adapter
        if policy_state_dict is None:
            model.save_pretrained(tmp)
        else:
            model.save_pretrained(tmp, state_dict=policy_state_dict)
        tokenizer.save_pretrained(tmp)
        if value_head is not None:
            value_head.save(tmp)
        (tmp / META_FILE).write_text(json.dumps(meta.to_dict(), indent=2) + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        if out.exists():  # rename() cannot replace a non-empty folder: move the old one aside
            old = Path(tempfile.mkdtemp(prefix=f"{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old / out.name, out)  # put the previous checkpoint back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return out
