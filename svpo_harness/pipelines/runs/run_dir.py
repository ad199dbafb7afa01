"""The run folder: one convention for every long command (`svpo annotate` now, `svpo train` later).

A run folder holds ``manifest.json`` (the command, the settings that define the run, library
version, tokenizer fingerprint) beside the command's output files. Opening it again with the same
settings continues the run (the caller skips what :func:`read_finished_trees` reports); other
settings are refused, naming each setting that differs; ``overwrite=True`` starts over and removes
only the command's own files. Output is append-only JSON Lines (a killed run loses at most the
record in flight; the torn line it leaves is cut on the next open) plus whole JSON files written
atomically. Shards (``--shard I/N``) and merging them live in ``run_shards.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from svpo_harness import __version__
from svpo_harness.core.jsonl_io import atomic_write_json, repair_jsonl_tail
from svpo_harness.core.schemas import Record, record_from_dict, to_dict

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
ANNOTATE_FILES = ("trees.jsonl", "pairs.jsonl", "stats.json", "warnings.jsonl")
_UNSET = "(not set)"

__all__ = [
    "ANNOTATE_FILES",
    "MANIFEST",
    "JsonlAppender",
    "RunDir",
    "RunDirError",
    "RunSettingsError",
    "append_warnings",
    "atomic_write_json",
    "drop_unfinished_records",
    "finished_question_ids",
    "iter_jsonl_lines",
    "manifest_differences",
    "new_manifest",
    "open_jsonl",
    "open_run_dir",
    "read_finished_trees",
    "read_manifest",
    "remove_outputs",
    "tree_key",
]


class RunDirError(ValueError):
    """The run folder cannot be used as asked; the message says why and what to do."""


class RunSettingsError(RunDirError):
    """The folder holds a run made with other settings (``differences``: name -> (old, new))."""

    def __init__(self, message: str, differences: dict[str, tuple[Any, Any]]) -> None:
        super().__init__(message)
        self.differences = differences


@dataclass(frozen=True)
class RunDir:
    path: Path
    manifest: dict[str, Any]
    resumed: bool  # the folder already held this run (same settings): skip finished work
    output_files: tuple[str, ...] = ANNOTATE_FILES

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def settings(self) -> dict[str, Any]:
        return self.manifest["settings"]

    @property
    def trees(self) -> Path:
        return self.path / "trees.jsonl"

    @property
    def pairs(self) -> Path:
        return self.path / "pairs.jsonl"

    @property
    def stats(self) -> Path:
        return self.path / "stats.json"

    @property
    def warnings(self) -> Path:
        return self.path / "warnings.jsonl"

    def read_stats(self) -> dict[str, Any]:
        """The stats of the run so far ({} before the first write): a resume adds to them."""
        return json.loads(self.stats.read_text(encoding="utf-8")) if self.stats.is_file() else {}

    def write_stats(self, stats: Mapping[str, Any]) -> None:
        atomic_write_json(self.stats, dict(stats))


# -- manifest ----------------------------------------------------------------------------------
def _plain(settings: Mapping[str, Any]) -> dict[str, Any]:
    """JSON round trip, so tuples vs lists or key order never count as a different setting."""
    try:
        return json.loads(json.dumps(dict(settings), sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"run settings must be plain JSON values: {err}") from None


def new_manifest(
    settings: Mapping[str, Any],
    tokenizer_fingerprint: str,
    *,
    command: str = "annotate",
    info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "command": command,
        "settings": _plain(settings),
        "tokenizer_fingerprint": tokenizer_fingerprint,
        "library_version": __version__,
        "info": _plain(info or {}),
    }


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of run folder ``path``; RunDirError when missing or unreadable."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise RunDirError(f"{path}: no {MANIFEST}: not a run folder")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirError(
            f"{file}: not valid JSON ({err}); pass --overwrite to start over"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise RunDirError(f"{file}: field 'settings': expected an object; not a run manifest")
    if data.get("manifest_version") != MANIFEST_VERSION:
        raise RunDirError(
            f"{file}: field 'manifest_version': expected {MANIFEST_VERSION}, got "
            f"{data.get('manifest_version')!r} (made by another svpo-harness version)"
        )
    return data


def manifest_differences(
    old: Mapping[str, Any], new: Mapping[str, Any], *, ignore: Iterable[str] = ()
) -> dict[str, tuple[Any, Any]]:
    """Name -> (old, new) of everything that defines a run and differs: the command, the
    tokenizer fingerprint and each setting (a setting one side lacks shows as "(not set)")."""
    skip = set(ignore)
    diffs: dict[str, tuple[Any, Any]] = {}
    for key in ("command", "tokenizer_fingerprint"):
        if old.get(key) != new.get(key):
            diffs[key] = (old.get(key), new.get(key))
    a, b = old.get("settings", {}), new.get("settings", {})
    for key in sorted(set(a) | set(b)):
        if key not in skip and a.get(key, _UNSET) != b.get(key, _UNSET):
            diffs[f"setting '{key}'"] = (a.get(key, _UNSET), b.get(key, _UNSET))
    return diffs


def format_differences(diffs: Mapping[str, tuple[Any, Any]], old: str, new: str) -> str:
    return "\n".join(f"  {name}: {a!r} {old}, {b!r} {new}" for name, (a, b) in diffs.items())


def remove_outputs(path: Path, names: Iterable[str]) -> None:
    """Delete the command's own files (and their temp files) and the manifest, nothing else."""
    for name in (*names, MANIFEST):
        if Path(name).name != name or name in ("", ".", ".."):
            raise ValueError(f"output file names must be plain names, got {name!r}")
        target = path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        for tmp in (*path.glob(f".{name}.*.tmp"), path / f"{name}.tmp"):  # killed atomic writes
            tmp.unlink(missing_ok=True)


def open_run_dir(
    path: str | Path,
    settings: Mapping[str, Any],
    *,
    tokenizer_fingerprint: str,
    command: str = "annotate",
    output_files: Iterable[str] = ANNOTATE_FILES,
    overwrite: bool = False,
    info: Mapping[str, Any] | None = None,
) -> RunDir:
    """Start or continue the run in ``path``; see the module docstring.

    ``settings`` are what make two runs the same run (plain JSON values; the shard spec is one
    of them); ``info`` is stored but never compared (e.g. which shards a merge joined).
    """
    root, files = Path(path), tuple(output_files)
    if root.exists() and not root.is_dir():
        raise RunDirError(f"{root} exists and is not a folder")
    manifest = new_manifest(settings, tokenizer_fingerprint, command=command, info=info)
    if overwrite and root.is_dir():
        remove_outputs(root, files)
    elif (root / MANIFEST).exists():
        old = read_manifest(root)
        diffs = manifest_differences(old, manifest)
        if diffs:
            raise RunSettingsError(
                f"{root} holds a run made with other settings:\n"
                f"{format_differences(diffs, 'in the folder', 'now')}\n"
                "Run with the folder's settings to continue it, use another output folder, "
                f"or pass --overwrite to start over (removes {', '.join(files)} there).",
                diffs,
            )
        if old.get("library_version") != __version__:
            warnings.warn(
                f"{root}: continuing a run started by svpo-harness "
                f"{old.get('library_version')} with {__version__}",
                stacklevel=2,
            )
        return RunDir(root, old, True, files)
    else:
        present = [name for name in files if (root / name).exists()]
        if present:
            raise RunDirError(
                f"{root} holds {', '.join(present)} but no {MANIFEST}, so nothing says how they "
                "were made; use another output folder or pass --overwrite to start over"
            )
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_json(root / MANIFEST, manifest)
    return RunDir(root, manifest, False, files)


# -- append-only JSON Lines --------------------------------------------------------------------
class JsonlAppender:
    """One open JSONL file: torn last line repaired on open, then write + flush + fsync per record.

    Takes schema records (trees, pairs, ...), objects with ``to_dict()`` (``InputWarning``) or
    dicts; with ``validate=True`` a dict must be a valid schema record (as ``append_jsonl``).
    """

    def __init__(self, path: str | Path, *, validate: bool = True) -> None:
        self.path, self.validate = Path(path), validate
        repair_jsonl_tail(self.path)
        self._fh = open(self.path, "ab")  # closed by close() or the with block

    def append(self, record: Record | Mapping[str, Any] | Any) -> None:
        if dataclasses.is_dataclass(record) and hasattr(record, "KIND"):
            data = to_dict(record)  # type: ignore[arg-type]
        elif hasattr(record, "to_dict"):
            data = record.to_dict()
        elif self.validate:
            data = to_dict(record_from_dict(dict(record)))
        else:
            data = dict(record)
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._fh.write(line.encode("utf-8") + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_jsonl(path: str | Path, *, validate: bool = True) -> JsonlAppender:
    return JsonlAppender(path, validate=validate)


def iter_jsonl_lines(path: str | Path) -> Iterator[tuple[int, bytes, Any]]:
    """(line number, raw line with its newline, parsed JSON) of every complete line.

    A torn last line (no newline, not JSON: a killed writer) ends the file; any other line that
    is not JSON raises RunDirError naming file and line.
    """
    if not Path(path).is_file():
        return
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                if not raw.endswith(b"\n"):
                    return
                raise RunDirError(
                    f"{path}:{number}: not valid JSON ({err}); damaged file"
                ) from None
            yield number, raw if raw.endswith(b"\n") else raw + b"\n", data


def append_warnings(path: str | Path, items: Iterable[Any]) -> int:
    """Append the warnings not already in the file; returns how many were new.

    A resumed run reads its input again and finds the same bad lines: they are logged once.
    """
    seen = {json.dumps(data, sort_keys=True) for _, _, data in iter_jsonl_lines(path)}
    added = 0
    with JsonlAppender(path, validate=False) as out:
        for item in items:
            data = item.to_dict() if hasattr(item, "to_dict") else dict(item)
            key = json.dumps(data, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(data)
                added += 1
    return added


# -- what is finished --------------------------------------------------------------------------
def tree_key(path: str | Path, number: int, data: Any) -> tuple[str, int]:
    """(question_id, tree_index) of a record; RunDirError naming file:line when malformed."""
    qid = data.get("question_id") if isinstance(data, dict) else None
    index = data.get("tree_index", 0) if isinstance(data, dict) else None
    if not isinstance(qid, str) or isinstance(index, bool) or not isinstance(index, int):
        raise RunDirError(
            f"{path}:{number}: field 'question_id'/'tree_index': expected text and an integer, "
            f"got {qid!r}, {index!r}"
        )
    return qid, index


def read_finished_trees(path: str | Path) -> set[tuple[str, int]]:
    """(question_id, tree_index) of each tree record in ``trees.jsonl`` (torn last line ignored)."""
    return {
        tree_key(path, number, data)
        for number, _, data in iter_jsonl_lines(path)
        if not isinstance(data, dict) or data.get("type", "tree") == "tree"
    }


def finished_question_ids(path: str | Path, trees_per_question: int = 1) -> set[str]:
    """Questions whose trees 0..trees_per_question-1 are all written."""
    have: dict[str, set[int]] = {}
    for qid, index in read_finished_trees(path):
        have.setdefault(qid, set()).add(index)
    wanted = set(range(trees_per_question))
    return {qid for qid, indices in have.items() if wanted <= indices}


def is_tree_record(data: Any) -> bool:
    """A record that belongs to one tree (pair, step_q, path, tree), not a warning line."""
    return isinstance(data, dict) and data.get("type") in ("tree", "pair", "step_q", "path")


def drop_unfinished_records(path: str | Path, finished: set[tuple[str, int]]) -> int:
    """Rewrite ``path`` (atomically) without records of trees not in ``finished``.

    Pairs written before a kill cut their tree off would otherwise be duplicated when the
    resumed run searches that tree again. Returns the number of records dropped.
    """
    tmp = Path(f"{path}.tmp")
    dropped = 0
    with open(tmp, "wb") as fh:  # streamed: pairs files can be large
        for number, raw, data in iter_jsonl_lines(path):
            if is_tree_record(data) and tree_key(path, number, data) not in finished:
                dropped += 1
            else:
                fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    if dropped:
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return dropped
