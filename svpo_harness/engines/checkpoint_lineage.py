"""What a checkpoint was trained from, recorded so that it still loads after folders move.

The rule (issue 13): a checkpoint loads as exactly the policy it was trained as, wherever it was
moved. So ``base_model`` in ``svpo.json`` names the *parent*: the folder or hub id that was given
to ``svpo train --model`` (or to ``save_checkpoint`` as ``meta.base_model``), never the parent's
own parent. A LoRA checkpoint whose parent is itself a LoRA checkpoint loads that parent first
(recursively, adapter merged) and adds its own adapter on top, as in training (method.md
section 5: merge the previous adapter before adding a new one).

A local parent is recorded twice:

- ``base_model``: the path *relative to the checkpoint folder* (``"../m"``), so a set of folders
  moved or copied together keeps working;
- ``base_model_path``: the absolute path at save time, the fallback when only the checkpoint
  moved.

Loading tries, in order: ``base_model`` relative to the checkpoint folder, ``base_model_path``,
then ``base_model`` as written (relative to the working directory: checkpoints saved before this
rule, or a hub id). Anything else in ``base_model`` (the demo model's description of itself) is
a note, fine for full weights; a LoRA checkpoint whose base is found nowhere is an error that
lists the places tried.
"""

from __future__ import annotations

import os
from pathlib import Path

from svpo_harness.engines.checkpoint_meta import CheckpointError, CheckpointMeta, is_hub_id

MAX_LINEAGE = 32  # LoRA-on-LoRA depth; deeper means a loop the path check did not catch


def local_folder(spec: str) -> str | None:
    """The absolute path of ``spec`` when it is an existing local folder, else None."""
    if not spec:
        return None
    path = Path(spec).expanduser()
    # abspath, not resolve(): relative records are made and followed lexically on both sides.
    return os.path.abspath(path) if path.is_dir() else None


def parent_spec(model: str) -> str:
    """How to name the parent given to ``--model``: its absolute path, or the hub id as given."""
    return local_folder(model) or model


def record_base(
    base_model: str, out: str | Path, base_model_path: str | None = None
) -> tuple[str, str | None]:
    """``(base_model, base_model_path)`` to write into ``out/svpo.json`` (see the module doc).

    ``base_model`` is a folder (absolute or relative to the working directory) or a hub id;
    ``base_model_path`` an absolute fallback (a meta read from another checkpoint carries one).
    """
    absolute = local_folder(base_model) or local_folder(base_model_path or "")
    if absolute is None:  # a hub id or a description: kept as given
        return base_model, base_model_path
    try:
        relative = os.path.relpath(absolute, os.path.abspath(Path(out).expanduser()))
    except ValueError:  # another drive (Windows): no relative path exists
        return absolute, absolute
    return Path(relative).as_posix(), absolute


def base_candidates(spec: str, meta: CheckpointMeta) -> list[str]:
    """Where the base of the checkpoint at ``spec`` may be, in the order tried."""
    recorded = meta.base_model
    found: list[str] = []
    checkpoint = local_folder(spec)
    if checkpoint and recorded and not Path(recorded).expanduser().is_absolute():
        found.append(os.path.normpath(os.path.join(checkpoint, recorded)))
    if meta.base_model_path:
        found.append(meta.base_model_path)
    if recorded:
        found.append(recorded)
    return list(dict.fromkeys(found))  # first occurrence wins, order kept


def locate_base(spec: str, meta: CheckpointMeta) -> str | None:
    """The base's absolute folder, or its hub id; None when it is found nowhere."""
    for candidate in base_candidates(spec, meta):
        folder = local_folder(candidate)
        if folder is not None:
            return folder
    return meta.base_model if is_hub_id(meta.base_model) else None


def missing_base(spec: str, meta: CheckpointMeta) -> CheckpointError:
    tried = ", ".join(repr(c) for c in base_candidates(spec, meta)) or "nothing recorded"
    return CheckpointError(
        f"{spec}: the base model of this LoRA checkpoint is not found (tried {tried}); move its "
        "parent folder back next to it, or set base_model in its svpo.json to the parent's path"
    )


def check_lineage(spec: str, base: str, chain: tuple[str, ...]) -> str:
    """The key of ``spec`` in the chain being loaded; refuses a loop or an absurd depth."""
    key = local_folder(spec) or spec
    if base == key or base in chain:
        raise CheckpointError(f"{spec}: its base_model chain loops back to {base}")
    if len(chain) >= MAX_LINEAGE:
        raise CheckpointError(f"{spec}: more than {MAX_LINEAGE} LoRA checkpoints stacked")
    return key
