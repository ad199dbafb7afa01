"""Shards of a run (``--shard I/N``) and joining their folders into one (``merge_runs``).

A question's shard is a hash of its id, so it does not depend on the order of the input, on
``--limit`` or on which other questions exist: shard ``I/N`` of a longer list is a superset of
shard ``I/N`` of a prefix of it. Shard folders are ordinary run folders (``run_dir.py``) whose
settings differ in the shard spec only; a merge checks that before it copies a line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from svpo_harness.core.jsonl_io import atomic_write_json
from svpo_harness.pipelines.runs.run_dir import (
    ANNOTATE_FILES,
    MANIFEST,
    RunDirError,
    RunSettingsError,
    format_differences,
    is_tree_record,
    iter_jsonl_lines,
    manifest_differences,
    new_manifest,
    read_finished_trees,
    read_manifest,
    remove_outputs,
    tree_key,
)

SHARD_KEY = "shard"  # the settings key that holds the shard spec
# stats.json keys that are ratios, not counts: a sum of them means nothing, so a merge leaves
# them None for ``finish_stats`` to recompute from the summed counts.
RATIO_SUFFIXES = ("_rate", "_per_s", "_per_second", "_mean", "_frac", "_fraction")


class _HasId(Protocol):
    @property
    def question_id(self) -> str: ...


Q = TypeVar("Q", bound=_HasId)


# -- shards ------------------------------------------------------------------------------------
def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with ``0 <= I < N``; None or "" -> (0, 1), the whole set."""
    if spec is None or not str(spec).strip():
        return 0, 1
    found = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
    if not found:
        raise ValueError(f"--shard: expected I/N with 0 <= I < N (e.g. 0/4), got {spec!r}")
    index, count = int(found.group(1)), int(found.group(2))
    if count < 1 or not 0 <= index < count:
        raise ValueError(
            f"--shard {spec}: expected 0 <= I < N and N >= 1, got I={index}, N={count}"
        )
    return index, count


def normalise_shard(spec: str | None) -> str | None:
    """The form to store in settings: "I/N", or None for the whole set ("0/1" is no shard)."""
    index, count = parse_shard(spec)
    return None if count == 1 else f"{index}/{count}"


def shard_of(question_id: str, count: int) -> int:
    digest = hashlib.sha256(question_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def shard_questions(questions: Sequence[Q], shard: str | None) -> list[Q]:
    """The questions of shard ``I/N`` (input order kept); the N shards partition the input."""
    index, count = parse_shard(shard)
    if count == 1:
        return list(questions)
    return [q for q in questions if shard_of(q.question_id, count) == index]


# -- stats -------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sum_stats(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts summed key by key (nested dicts too); ratio keys (``RATIO_SUFFIXES``) None; other
    values kept when every shard agrees, lists joined without repeats, else None."""
    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for item in items for k in item):
        values = [item[key] for item in items if key in item]
        if all(isinstance(v, Mapping) for v in values):
            out[key] = sum_stats(values)
        elif all(_is_number(v) for v in values):
            out[key] = None if key.endswith(RATIO_SUFFIXES) else sum(values)
        elif all(isinstance(v, list) for v in values):
            joined = {json.dumps(x, sort_keys=True): x for v in values for x in v}
            out[key] = list(joined.values())
        else:
            out[key] = values[0] if all(v == values[0] for v in values) else None
    return out


# -- merge -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MergeResult:
    out: Path
    shards: list[str]  # the shard spec of each input folder, in merge order
    missing_shards: list[int]  # shard indices of I/N not among the inputs (a partial merge)
    records: dict[str, int] = field(default_factory=dict)  # file -> lines written

    def summary(self) -> str:
        counts = ", ".join(f"{n} {name}" for name, n in self.records.items())
        line = f"merged {len(self.shards)} shard(s) into {self.out}: {counts}"
        if self.missing_shards:
            line += f"; missing shards {self.missing_shards} (merge them in later runs)"
        return line


def _check_same_run(manifests: list[tuple[Path, dict[str, Any]]], shard_key: str) -> None:
    first_dir, first = manifests[0]
    for other_dir, other in manifests[1:]:
        diffs = manifest_differences(first, other, ignore=(shard_key,))
        if diffs:
            raise RunSettingsError(
                f"cannot merge {other_dir} with {first_dir}: they were made with other settings "
                "or tokenizers:\n"
                + format_differences(diffs, f"in {first_dir}", f"in {other_dir}"),
                diffs,
            )


def _shard_order(
    manifests: list[tuple[Path, dict[str, Any]]], shard_key: str
) -> tuple[list[tuple[Path, dict[str, Any]]], list[str], list[int]]:
    """Folders sorted by shard index; refuses mixed N and a shard given twice."""
    parsed = [(parse_shard(m["settings"].get(shard_key)), d, m) for d, m in manifests]
    counts = {count for (_, count), _, _ in parsed}
    if len(counts) > 1:
        raise RunDirError(f"cannot merge shards of different splits (N = {sorted(counts)})")
    seen: dict[int, Path] = {}
    for (index, count), folder, _ in parsed:
        if index in seen:
            raise RunDirError(f"shard {index}/{count} given twice: {seen[index]} and {folder}")
        seen[index] = folder
    parsed.sort(key=lambda item: item[0][0])
    count = counts.pop()
    specs = [f"{i}/{n}" for (i, n), _, _ in parsed]
    return [(d, m) for _, d, m in parsed], specs, sorted(set(range(count)) - set(seen))


def _check_disjoint(finished: list[tuple[Path, set[tuple[str, int]]]]) -> None:
    owner: dict[str, Path] = {}
    for folder, trees in finished:
        for qid in sorted({qid for qid, _ in trees}):
            if qid in owner:
                raise RunDirError(
                    f"question {qid!r} is in two shards ({owner[qid]} and {folder}): these "
                    "folders were not split by one --shard I/N; merge refused"
                )
            owner[qid] = folder


def _merge_jsonl(name: str, sources: list[tuple[Path, set[tuple[str, int]]]], out: Path) -> int:
    """Concatenate one JSONL file of every shard: tree records only of finished trees (a shard
    killed mid-question may hold its pairs but not its tree), other lines (warnings) once."""
    tmp = out / f"{name}.tmp"
    written, seen = 0, set()
    with open(tmp, "wb") as fh:
        for folder, finished in sources:
            path = folder / name
            for number, raw, data in iter_jsonl_lines(path):
                if is_tree_record(data):
                    if tree_key(path, number, data) not in finished:
                        continue
                else:
                    key = json.dumps(data, sort_keys=True)
                    if key in seen:  # every shard reads the same input: same input warnings
                        continue
                    seen.add(key)
                fh.write(raw)
                written += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, out / name)
    return written


def merge_runs(
    dirs: Iterable[str | Path],
    out: str | Path,
    *,
    overwrite: bool = False,
    shard_key: str = SHARD_KEY,
    output_files: Iterable[str] = ANNOTATE_FILES,
    finish_stats: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> MergeResult:
    """Join shard folders into ``out``: JSONL files concatenated in shard order, stats summed
    (:func:`sum_stats`, then ``finish_stats`` to recompute ratios), and a manifest whose settings
    are the shards' with ``shard_key`` = None, so ``out`` reads as one unsharded run (continuing
    it with the same settings runs what the shards did not). Refused: folders whose settings differ
    in anything but the shard, or in tokenizer fingerprint; a question in two folders; mixed N;
    an ``out`` that already holds a run (unless ``overwrite``)."""
    folders = [Path(d) for d in dirs]
    if not folders:
        raise RunDirError("merge: no shard folders given")
    target, files = Path(out), tuple(output_files)
    if target.resolve() in {f.resolve() for f in folders}:
        raise RunDirError(f"merge: the output folder {target} is one of the shards")
    manifests = [(f, read_manifest(f)) for f in folders]
    _check_same_run(manifests, shard_key)
    manifests, specs, missing = _shard_order(manifests, shard_key)
    finished = [(folder, read_finished_trees(folder / "trees.jsonl")) for folder, _ in manifests]
    _check_disjoint(finished)
    if not overwrite and any((target / n).exists() for n in (MANIFEST, *files)):
        raise RunDirError(f"{target} already holds a run; pass --overwrite to replace it")
    if missing:
        warnings.warn(f"merge: shards {missing} are not among the inputs", stacklevel=2)
    versions = {m.get("library_version") for _, m in manifests}
    if len(versions) > 1:
        warnings.warn(
            f"merge: shards made by svpo-harness {sorted(map(str, versions))}", stacklevel=2
        )
    first = manifests[0][1]
    settings = dict(first["settings"])
    if shard_key in settings:
        settings[shard_key] = None
    if overwrite and target.is_dir():
        remove_outputs(target, files)
    target.mkdir(parents=True, exist_ok=True)
    result = MergeResult(target, specs, missing)
    for name in files:
        if name.endswith(".jsonl"):
            result.records[name] = _merge_jsonl(name, finished, target)
    if "stats.json" in files:
        parts = [
            json.loads((d / "stats.json").read_text(encoding="utf-8"))
            for d, _ in manifests
            if (d / "stats.json").is_file()
        ]
        stats = sum_stats(parts)
        stats["shards_merged"] = len(manifests)
        atomic_write_json(target / "stats.json", finish_stats(stats) if finish_stats else stats)
    # The manifest last: a merge killed before this leaves no folder that reads as a run.
    merged_from = [{"dir": str(d), "shard": s} for (d, _), s in zip(manifests, specs, strict=True)]
    manifest = new_manifest(
        settings,
        first["tokenizer_fingerprint"],
        command=first["command"],
        info={"merged_from": merged_from, "missing_shards": missing},
    )
    atomic_write_json(target / MANIFEST, manifest)
    return result
