"""Benchmark problems: one record shape for every data set, from the hub or a local folder.

A *problem* is ``{"question_id", "question", "answer", "solution", "dataset"}``: ``answer`` is the
gold final answer as text (what the grader compares against), ``solution`` the worked solution
when the set has one. Sources, in order:

1. a local folder (``data_dir=`` or ``$SVPO_DATA_DIR``) laid out as ``<name>/<split>.jsonl`` with
   either the data set's original fields (as in the project's ``../shared/data``) or already
   normalised records (what ``svpo data fetch|import`` writes);
2. the public hub dataset (ids below), through ``datasets.load_dataset``.

Neither available -> :class:`DataUnavailableError` with one line saying how to fix it.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA_DIR_ENV = "SVPO_DATA_DIR"


class DataUnavailableError(RuntimeError):
    """The data set is neither in the local folder nor reachable on the hub."""


class ProblemFormatError(ValueError):
    """A record lacks a field we need; the message names file, line and field."""


@dataclass(frozen=True)
class HubSource:
    """Where the public copy lives. ``configs``/``splits`` with several entries are concatenated."""

    path: str
    configs: tuple[str | None, ...] = (None,)
    splits: dict[str, tuple[str, ...]] | None = None  # our split -> hub splits

    def hub_splits(self, split: str) -> tuple[str, ...]:
        return (self.splits or {}).get(split, (split,))


def _first(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        if name in record and record[name] is not None:
            return record[name]
    raise KeyError(names[0])


def _number_text(value: Any) -> str:
    """Gold numbers stored as floats (5.0) are written the way a solver writes them (5)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _boxed_answer(solution: str) -> str:
    from svpo_harness.grading import extract_answer

    found = extract_answer(solution, style="boxed")
    if found is None:
        raise KeyError("solution (no \\boxed{} answer)")
    return found.answer


def _gsm8k(rec: dict[str, Any]) -> tuple[str, str, str]:
    solution = _first(rec, "answer")
    return _first(rec, "question"), solution.split("####")[-1].strip().replace(",", ""), solution


def _math(rec: dict[str, Any]) -> tuple[str, str, str]:
    solution = _first(rec, "solution")
    answer = rec.get("answer") or _boxed_answer(solution)
    return _first(rec, "problem", "question"), str(answer), solution


# Two GaoKao2023-Math-En records (HMMT2023General_9, 052023SATS4_11) have an empty ``answer``
# and carry it at the end of the question ("...answers: $\\frac{3}{10}$"): recover it and cut it
# off the question, so the model is never shown the answer.
_TRAILING_ANSWER = re.compile(r"\s*(?:answers?|Answer)\s*:\s*(?P<answer>[^:]{1,80})$")


def _gaokao(rec: dict[str, Any]) -> tuple[str, str, str]:
    question, answer = _first(rec, "question", "problem"), str(_first(rec, "answer")).strip()
    match = _TRAILING_ANSWER.search(question)
    if not answer and match:
        question, answer = question[: match.start()], match.group("answer").strip()
    return question, answer, ""


def _svamp(rec: dict[str, Any]) -> tuple[str, str, str]:
    if "Body" in rec:
        question = f"{rec['Body'].strip()} {rec['Question'].strip()}"
    else:
        question = _first(rec, "question_concat", "question")
    return question, _number_text(_first(rec, "Answer", "answer")), ""


def _asdiv(rec: dict[str, Any]) -> tuple[str, str, str]:
    question = f"{_first(rec, 'body').strip()} {_first(rec, 'question').strip()}"
    answer = str(_first(rec, "answer")).strip()
    # "9 (apples)" -> "9": the unit in brackets is not part of the answer.
    if answer.endswith(")") and " (" in answer:
        answer = answer[: answer.rindex(" (")].strip()
    return question, answer, ""


def _mawps(rec: dict[str, Any]) -> tuple[str, str, str]:
    return _first(rec, "input", "question"), _number_text(_first(rec, "target", "result")), ""


def _tabmwp(rec: dict[str, Any]) -> tuple[str, str, str]:
    parts = []
    if rec.get("table_title"):
        parts.append(f"Table: {rec['table_title']}")
    if rec.get("table"):
        parts.append(str(rec["table"]))
    parts.append(str(_first(rec, "question")))
    if rec.get("choices"):
        parts.append("Choices: " + ", ".join(str(c) for c in rec["choices"]))
    return "\n".join(parts), str(_first(rec, "answer")).strip(), str(rec.get("solution") or "")


def _gsm_hard(rec: dict[str, Any]) -> tuple[str, str, str]:
    return _first(rec, "input", "question"), _number_text(_first(rec, "target", "answer")), ""


def _college(rec: dict[str, Any]) -> tuple[str, str, str]:
    return _first(rec, "question", "problem"), str(_first(rec, "answer")).strip(), ""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    normalise: Callable[[dict[str, Any]], tuple[str, str, str]]
    hub: HubSource
    splits: tuple[str, ...] = ("test",)
    id_fields: tuple[str, ...] = ("unique_id", "idx", "id", "ID", "pid")


# Hub ids checked against the hub's dataset pages (2026-11). Where the public copy differs from
# the evaluation-harness subset (svamp, asdiv, mawps, tabmwp) the local folder is the reference;
# docs/tasks_and_data.md lists the differences.
DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("gsm8k", _gsm8k, HubSource("openai/gsm8k", ("main",)), ("train", "test")),
        DatasetSpec(
            "math",
            _math,
            HubSource(
                "EleutherAI/hendrycks_math",
                (
                    "algebra",
                    "counting_and_probability",
                    "geometry",
                    "intermediate_algebra",
                    "number_theory",
                    "prealgebra",
                    "precalculus",
                ),
            ),
            ("train", "test"),
        ),
        DatasetSpec("math500", _math, HubSource("HuggingFaceH4/MATH-500")),
        DatasetSpec(
            "gaokao2023en",
            _gaokao,
            HubSource("MARIO-Math-Reasoning/Gaokao2023-Math-En", splits={"test": ("train",)}),
        ),
        DatasetSpec("ocw", _math, HubSource("math-ai/minervamath")),
        DatasetSpec(
            "svamp", _svamp, HubSource("ChilleD/SVAMP", splits={"test": ("train", "test")})
        ),
        DatasetSpec(
            "asdiv", _asdiv, HubSource("EleutherAI/asdiv", splits={"test": ("validation",)})
        ),
        DatasetSpec("mawps", _mawps, HubSource("MU-NLPC/Calc-mawps")),
        DatasetSpec("tabmwp", _tabmwp, HubSource("Arietem/tabmwp", splits={"test": ("train",)})),
        DatasetSpec(
            "gsm_hard",
            _gsm_hard,
            HubSource("reasoning-machines/gsm-hard", splits={"test": ("train",)}),
        ),
        DatasetSpec(
            "college_math",
            _college,
            HubSource("qq8933/College_Math_Test", splits={"test": ("train",)}),
        ),
    )
}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(
            f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}"
        ) from None


def normalise_record(
    spec: DatasetSpec, record: dict[str, Any], index: int, split: str, where: str = "<hub>"
) -> dict[str, Any]:
    """One original (or already normalised) record -> a problem. ``where`` names file:line."""
    if not isinstance(record, dict):
        raise ProblemFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if {"question_id", "question", "answer"} <= record.keys():
        question, answer, solution = (
            record["question"],
            str(record["answer"]),
            record.get("solution", ""),
        )
        question_id = str(record["question_id"])
    else:
        try:
            question, answer, solution = spec.normalise(record)
        except KeyError as missing:
            raise ProblemFormatError(
                f"{where}: field {missing.args[0]!r} is missing (data set {spec.name!r} needs it)"
            ) from None
        ident = next((record[f] for f in spec.id_fields if record.get(f) is not None), index)
        question_id = f"{spec.name}/{split}/{ident}"
    if not isinstance(question, str) or not question.strip():
        raise ProblemFormatError(f"{where}: field 'question' is empty or not text")
    return {
        "question_id": question_id,
        "question": question,
        "answer": answer,
        "solution": solution or "",
        "dataset": spec.name,
    }


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as err:
                raise ProblemFormatError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None


def local_path(
    name: str, split: str, data_dir: str | os.PathLike[str] | None = None
) -> Path | None:
    root = data_dir or os.environ.get(DATA_DIR_ENV)
    return Path(root) / name / f"{split}.jsonl" if root else None


def load_local(spec: DatasetSpec, split: str, path: Path) -> list[dict[str, Any]]:
    return [
        normalise_record(spec, rec, i, split, where=f"{path}:{line_no}")
        for i, (line_no, rec) in enumerate(_read_jsonl(path))
    ]


def load_hub(spec: DatasetSpec, split: str) -> list[dict[str, Any]]:
    import datasets

    rows: list[dict[str, Any]] = []
    for config in spec.hub.configs:
        for hub_split in spec.hub.hub_splits(split):
            part = datasets.load_dataset(spec.hub.path, config, split=hub_split)
            rows.extend(dict(r) for r in part)
    return [normalise_record(spec, rec, i, split) for i, rec in enumerate(rows)]


def load_problems(
    name: str, split: str = "test", data_dir: str | os.PathLike[str] | None = None
) -> list[dict[str, Any]]:
    """All problems of one data set split, local folder first, then the hub."""
    spec = get_spec(name)
    if split not in spec.splits:
        raise ValueError(
            f"data set {name!r} has no split {split!r}; it has {', '.join(spec.splits)}"
        )
    path = local_path(name, split, data_dir)
    if path is not None:
        if path.is_file():
            return _with_gold(load_local(spec, split, path), f"{name}/{split}")
        raise DataUnavailableError(
            f"{path} not found: the data folder must hold <name>/<split>.jsonl "
            f"(run `svpo data fetch {name} --to {path.parent.parent}` where the hub is reachable, "
            f"or `svpo data import {name} --from FILE --to {path.parent.parent}`)"
        )
    try:
        rows = load_hub(spec, split)
    except Exception as err:  # noqa: BLE001 - offline, missing id, gated: one clear line instead
        raise DataUnavailableError(
            f"cannot load {name}/{split}: hub dataset {spec.hub.path!r} is unreachable "
            f"({type(err).__name__}); set {DATA_DIR_ENV} to a folder laid out as "
            f"<name>/<split>.jsonl (e.g. the project's shared/data) or use `svpo data import`"
        ) from None
    return _with_gold(rows, f"{name}/{split}")


def _with_gold(rows: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    """Drop problems whose gold answer is empty (MATH train number_theory/7115 and 7117 have an
    empty ``\\boxed{}``): no output could ever be graded right on them."""
    kept = [row for row in rows if row["answer"].strip()]
    if len(kept) < len(rows):
        dropped = [row["question_id"] for row in rows if not row["answer"].strip()]
        warnings.warn(
            f"{where}: skipped {len(dropped)} problem(s) without a gold answer: "
            f"{', '.join(dropped[:5])}",
            stacklevel=3,
        )
    return kept


def write_problems(records: Iterable[dict[str, Any]], out: Path) -> int:
    """Write normalised problems atomically (tmp file + rename): a kill never leaves half a file."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    count = 0
    with tmp.open("w", encoding="utf-8") as handle:
        for rec in records:
            handle.write(json.dumps(rec, ensure_ascii=False) + "\n")
            count += 1
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, out)
    return count
