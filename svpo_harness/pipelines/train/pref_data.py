"""Training records for the preference objectives, read from an annotation run or a JSONL file.

- ``svpo``: step-level ``pair`` records (DPO + value ranking) and ``step_q`` records (value
  regression to Q), as ``svpo annotate`` / ``svpo pairs`` write them.
- ``dpo``: solution-level pairs built from the trees: a correct full path against an incorrect
  full path of the same question (the baseline without step-level credit).
- ``alphamath``: ``path`` records (cross-entropy on correct solutions) and ``step_q`` records
  (MSE of the value against Q), the reference's recipe.
- ``value``: svpo's records (``pair`` for the ranking, ``step_q`` for the regression), to train
  the value head alone on a frozen policy.
- ``rft``: rejection-sampling fine-tuning, the SFT baseline on the same trees: cross-entropy on
  the unique correct root-to-answer paths (``path`` records; a path found by several trees of
  one question counts once).

Everything is checked before any weights load: no usable records, records made with another
tokenizer (fingerprint) or another step format are clear errors naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svpo_harness.core.schemas import PairRecord, PathRecord, StepQRecord, TreeRecord

KINDS_BY_OBJECTIVE: dict[str, tuple[str, ...]] = {
    "svpo": ("pair", "step_q"),
    "dpo": ("tree",),
    "alphamath": ("path", "step_q"),
    "rft": ("path",),
    "value": ("pair", "step_q"),
}


class PreferenceDataError(ValueError):
    """The data cannot train this model: one line naming the file (and line)."""


@dataclass
class PreferenceData:
    records: list[Any]  # PairRecord | StepQRecord | PathRecord
    source: list[str]  # the files read
    counts: dict[str, int] = field(default_factory=dict)  # records by kind
    skipped: dict[str, int] = field(default_factory=dict)  # trees without a usable pair, ...


def data_files(source: str | Path, objective: str) -> list[Path]:
    """An annotation folder -> its trees.jsonl (dpo) or pairs.jsonl (the others)."""
    path = Path(source)
    if path.is_dir():
        name = "trees.jsonl" if objective == "dpo" else "pairs.jsonl"
        file = path / name
        if not file.is_file():
            raise PreferenceDataError(f"{path} has no {name} (an `svpo annotate` output folder?)")
        return [file]
    if not path.is_file():
        raise PreferenceDataError(f"training data not found: {path}")
    return [path]


def _records(files: list[Path], kinds: tuple[str, ...]) -> Iterator[tuple[Path, int, Any]]:
    """Validated records of ``kinds`` with file and line (malformed lines raise RecordError)."""
    import json

    from svpo_harness.core.schemas import record_from_dict

    for file in files:
        with open(file, encoding="utf-8") as fh:
            lines = fh.read().split("\n")
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as err:
                if number == len(lines) and not text.endswith("\n"):
                    continue  # a torn last line of a killed writer
                raise PreferenceDataError(f"{file}:{number}: not JSON ({err.msg})") from None
            if isinstance(data, dict) and data.get("type") in kinds:
                yield file, number, record_from_dict(data, path=file, line=number)


def solution_pairs(tree: TreeRecord) -> list[PairRecord]:
    """Correct vs incorrect full paths of one tree, matched in node order (one pair per
    correct path while incorrect ones last)."""

    def path_of(node_id: int) -> list[int]:
        ids = []
        while node_id:
            ids.append(node_id)
            node_id = tree.nodes[node_id].parent_id or 0
        return ids[::-1]

    answered = [n for n in tree.nodes if n.terminal_reason == "answer" and n.reward is not None]
    good = [n for n in answered if n.reward == 1.0]
    bad = [n for n in answered if n.reward == -1.0]
    pairs = []
    for win, lose in zip(good, bad, strict=False):
        steps_w = [tree.nodes[i] for i in path_of(win.node_id)]
        steps_l = [tree.nodes[i] for i in path_of(lose.node_id)]
        pairs.append(
            PairRecord(
                question_id=tree.question_id,
                prefix_ids=tree.prompt_ids,
                chosen_ids=tuple(t for n in steps_w for t in n.train_ids()),
                rejected_ids=tuple(t for n in steps_l for t in n.train_ids()),
                chosen_text="".join(n.text for n in steps_w),
                rejected_text="".join(n.text for n in steps_l),
                q_chosen=1.0,
                q_rejected=-1.0,
                tokenizer_fingerprint=tree.tokenizer_fingerprint,
                step_format=str(tree.step_format.get("name")),
                chosen_node_id=win.node_id,
                rejected_node_id=lose.node_id,
                parent_node_id=0,
                tree_index=tree.tree_index,
                chosen_sampled_mask=_path_mask(steps_w),
                rejected_sampled_mask=_path_mask(steps_l),
            )
        )
    return pairs


def _path_mask(steps: list[Any]) -> tuple[int, ...]:
    if not any(n.sampled_mask for n in steps):
        return ()
    out: list[int] = []
    for n in steps:
        out.extend(n.sampled_mask or (1,) * len(n.token_ids))
        out.extend((1,) * len(n.appended_ids))
    return tuple(out)


def load_preference_data(
    source: str | Path, objective: str, *, tokenizer_fingerprint: str, step_format: str
) -> PreferenceData:
    """The records ``objective`` trains on, checked against the model's tokenizer and format."""
    if objective not in KINDS_BY_OBJECTIVE:
        raise PreferenceDataError(f"no preference data for objective {objective!r}")
    files = data_files(source, objective)
    data = PreferenceData(records=[], source=[str(f) for f in files])
    seen_paths: set[tuple[str, tuple]] = set()
    for file, number, record in _records(files, KINDS_BY_OBJECTIVE[objective]):
        fingerprint = record.tokenizer_fingerprint
        fmt = (
            record.step_format
            if isinstance(record.step_format, str)
            else record.step_format.get("name")
        )
        if fingerprint != tokenizer_fingerprint:
            raise PreferenceDataError(
                f"{file}:{number}: made with tokenizer {fingerprint}, but the model's is "
                f"{tokenizer_fingerprint}: its token ids mean other text (annotate again with "
                "this model, or train the model the data was made with)"
            )
        if fmt != step_format:
            raise PreferenceDataError(
                f"{file}:{number}: made with step format {fmt!r}, but the model uses "
                f"{step_format!r} (pass --step-format {fmt}, or annotate again)"
            )
        if objective == "rft":
            key = (record.question_id, record.step_ids)
            if key in seen_paths:
                data.skipped["duplicate_paths"] = data.skipped.get("duplicate_paths", 0) + 1
                continue
            seen_paths.add(key)
        if isinstance(record, TreeRecord):
            pairs = solution_pairs(record)
            if not pairs:
                data.skipped["trees_without_a_correct_and_an_incorrect_path"] = (
                    data.skipped.get("trees_without_a_correct_and_an_incorrect_path", 0) + 1
                )
            data.records.extend(pairs)
        else:
            data.records.append(record)
    for record in data.records:
        data.counts[record.KIND] = data.counts.get(record.KIND, 0) + 1
    needed = {"svpo": "pair", "dpo": "pair", "alphamath": "path", "rft": "path", "value": "pair"}[
        objective
    ]
    if not data.counts.get(needed):
        raise PreferenceDataError(
            f"{', '.join(data.source)}: no {needed} records for --objective {objective} "
            f"(found {data.counts or 'nothing'}; skipped {data.skipped or 'nothing'})"
        )
    return data


__all__ = [
    "PathRecord",
    "PreferenceData",
    "PreferenceDataError",
    "StepQRecord",
    "load_preference_data",
    "solution_pairs",
]
