"""``svpo.json``: the checkpoint's metadata record, and the tokenizer fingerprint it carries.

Split from ``checkpoint.py`` (which loads and saves whole folders) so that the record's schema,
its validation and the hub/file look-ups read on their own. Everything here is re-exported by
``engines.checkpoint``; import from there.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from svpo_harness import __version__
from svpo_harness.core.step_format import StepFormat, get_step_format
from svpo_harness.engines.value_head import ValueHeadConfig

SCHEMA_VERSION = 1
KIND = "svpo-checkpoint"
META_FILE = "svpo.json"
DEFAULT_STEP_FORMAT = "cot"  # for plain HF models (method.md section 2)
# A hub id is "name" or "owner/name" with no path-like start; anything else is a path.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class CheckpointError(ValueError):
    """A user-facing checkpoint problem; the message says what to do in one line."""


@dataclass
class CheckpointMeta:
    """The content of ``svpo.json`` (fields: see the ``engines.checkpoint`` docstring)."""

    base_model: str
    policy: Literal["full", "lora"] = "full"
    step_format: StepFormat = field(default_factory=lambda: get_step_format(DEFAULT_STEP_FORMAT))
    value_head: ValueHeadConfig | None = None
    tokenizer_fingerprint: str | None = None
    # The chat template applied to prompts (None: plain-text prompts).
    chat_template: str | None = None
    training: dict[str, Any] = field(default_factory=dict)
    library_version: str = __version__
    schema_version: int = SCHEMA_VERSION
    # Absolute path of a local base at save time: the fallback when ``base_model`` (recorded
    # relative to the checkpoint folder) is not found (engines.checkpoint_lineage).
    base_model_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # base_model_path only when there is one: hub ids and older files keep their layout.
        where = {"base_model_path": self.base_model_path} if self.base_model_path else {}
        return {
            "schema_version": self.schema_version,
            "kind": KIND,
            "library_version": self.library_version,
            "base_model": self.base_model,
            **where,
            "policy": self.policy,
            "step_format": self.step_format.to_dict(),
            "value_head": self.value_head.to_dict() if self.value_head else None,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "chat_template": self.chat_template,
            "training": self.training,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = META_FILE) -> CheckpointMeta:
        if not isinstance(data, dict):
            raise CheckpointError(
                f"{source}: expected a JSON object (the svpo.json of a checkpoint), got "
                f"{type(data).__name__}; the checkpoint is damaged"
            )
        version = data.get("schema_version")
        if data.get("kind") != KIND or version != SCHEMA_VERSION:
            raise CheckpointError(
                f"{source}: unsupported checkpoint (kind={data.get('kind')!r}, "
                f"schema_version={version!r}); this svpo-harness {__version__} reads "
                f"kind={KIND!r} schema_version={SCHEMA_VERSION} (upgrade svpo-harness)"
            )
        try:
            policy = data["policy"]
            if policy not in ("full", "lora"):
                raise ValueError(f"policy must be 'full' or 'lora', got {policy!r}")
            head = data.get("value_head")
            return cls(
                base_model=str(data["base_model"]),
                base_model_path=_optional_str(data.get("base_model_path")),
                policy=policy,
                step_format=get_step_format(data["step_format"]),
                value_head=ValueHeadConfig.from_dict(head) if head else None,
                tokenizer_fingerprint=data.get("tokenizer_fingerprint"),
                chat_template=data.get("chat_template"),
                training=dict(data.get("training") or {}),
                library_version=str(data.get("library_version", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{source}: invalid field: {err}") from None


def _optional_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ValueError(f"base_model_path must be a string or null, got {type(value).__name__}")


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A stable hash of what decides token ids: vocab, merges, specials, pre-tokenizer, class.

    Trees and pairs record it next to stored ids (method.md section 2.1) so ids are never fed
    to a model whose tokenizer gives them another meaning. ``add_bos_token`` and padding do not
    change what an id means, so they are left out.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise TypeError(
            f"need a fast (tokenizers-backed) tokenizer, got {type(tokenizer).__name__}"
        )
    state = json.loads(backend.to_str())
    model = state.get("model") or {}
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    payload = {
        "class": type(tokenizer).__name__,
        "model": model.get("type"),
        "vocab": sorted((model.get("vocab") or {}).items(), key=lambda kv: kv[1]),
        "merges": merges,
        "added": sorted(
            (t["id"], t["content"], t["special"]) for t in state.get("added_tokens", [])
        ),
        "specials": sorted(
            (name, str(value)) for name, value in tokenizer.special_tokens_map.items()
        ),
        "normalizer": state.get("normalizer"),
        "pre_tokenizer": state.get("pre_tokenizer"),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


# -- where svpo.json comes from ------------------------------------------------------------------
def is_hub_id(spec: str) -> bool:
    return not spec.startswith((".", "/", "~")) and bool(_HUB_ID.match(spec))


def hub_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """A file from a hub repo (or the local HF cache when offline); None if unavailable."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo_id, filename, revision=revision))
    except Exception:  # noqa: BLE001 - missing file, offline, unknown repo: all mean "none here"
        return None


def read_meta(source: str | Path, revision: str | None = None) -> CheckpointMeta | None:
    """``svpo.json`` of a folder or hub repo (at ``revision``), or None for a plain HF model."""
    spec = str(source)
    path = Path(spec).expanduser()
    file = (
        path / META_FILE
        if path.is_dir()
        else (hub_file(spec, META_FILE, revision) if is_hub_id(spec) else None)
    )
    if file is None or not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{file}: not valid JSON ({err}); the checkpoint is damaged"
        ) from None
    return CheckpointMeta.from_dict(data, source=str(file))
