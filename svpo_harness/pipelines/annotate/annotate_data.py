"""Questions with gold answers for `svpo annotate`, from a named split or any JSON Lines file.

``load_annotation_questions(spec)`` takes ``arith:train`` (the synthetic world; ``arith_hard:train``
its hard split, core/arith_hard.py), ``gsm8k:train``,
``math:train`` (any ``name:split`` the problem loaders know: local folder or hub, as
``svpo_harness.data.problems`` finds them) or a path ``FILE.jsonl`` whose fields are detected per
record: GSM8K-style (``question``, ``answer`` ending ``#### 42``), MATH-style (``problem``,
``solution`` with ``\\boxed{}``; an ``answer`` field wins when present, as in MATH-500) or plain
``{question, answer}``. Bad input never raises: the line is skipped and reported as an
:class:`InputWarning` (file, line, field, message) for ``warnings.jsonl``. Order is the input's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from svpo_harness.data.problems import (
    DATASETS,
    ProblemFormatError,
    load_problems,
    local_path,
    normalise_record,
)

ID_FIELDS = ("question_id", "unique_id", "id")  # a record's own id, first present wins
QUESTION_FIELDS = ("question", "problem")
# MATH-style ``unique_id`` ("test/precalculus/807.json"): the key prm800k / MATH-500 share.
MATH_UNIQUE_ID = re.compile(r"(?:^|/)((?:train|test)/[A-Za-z_]+/\d+\.json)$")
# Sentence punctuation cut from both ends of each word: "apples." == "apples"; math operators
# (+ - < > = ^) are kept, so "x > 5" and "x < 5" stay different questions.
_EDGE_PUNCT = ".,;:!?\"'`“”‘’«»…"


class AnnotationDataError(ValueError):
    """The data spec itself is unusable (unknown name, missing file): one line for the user."""


@dataclass(frozen=True)
class AnnotationQuestion:
    question_id: str
    question: str
    gold_answer: str
    source: str  # the spec it came from ("gsm8k:train", "arith:train", or the file path)
    unique_id: str | None = None  # MATH-style id when known (contamination check)


_Found = tuple[AnnotationQuestion, str, int | None]  # a question, its file and line


@dataclass(frozen=True)
class InputWarning:
    """A skipped or suspicious input record; one line of ``warnings.jsonl``."""

    file: str
    line: int | None
    field: str
    message: str
    kind: str = "input"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    def __str__(self) -> str:
        line = "?" if self.line is None else self.line
        return f"{self.file}:{line}: field '{self.field}': {self.message}"


def normalise_question(text: str) -> str:
    """Key for duplicates and contamination: NFKC, lowercase, one space, edge punctuation cut."""
    words = unicodedata.normalize("NFKC", text).lower().split()
    return " ".join(w for w in (w.strip(_EDGE_PUNCT) for w in words) if w)


def question_hash(text: str) -> str:
    return hashlib.sha256(normalise_question(text).encode("utf-8")).hexdigest()


def math_unique_id(*candidates: Any) -> str | None:
    """The first candidate that is or ends in a MATH ``unique_id`` (``test/algebra/1.json``)."""
    for value in candidates:
        if isinstance(value, str):
            found = MATH_UNIQUE_ID.search(value)
            if found:
                return found.group(1)
    return None


# -- gold answers ------------------------------------------------------------------------------
class _BadField(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def _gold(value: Any, field: str) -> str:
    """A gold answer from a field value: after the last ``####``, the last ``\\boxed{}``, or as is.

    The GSM8K and MATH rules are the problem loaders' own normalisers, so a record gets the same
    gold whether it is read as ``gsm8k:train`` or as a file.
    """
    if value is None:
        raise _BadField(field, "missing gold answer")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _BadField(field, f"expected text or a number, got {type(value).__name__}")
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if "####" in value:
        gold = DATASETS["gsm8k"].normalise({"question": "", "answer": value})[1]
        if not gold:
            raise _BadField(field, "nothing after '####' (expected '#### <answer>')")
        return gold
    if "\\boxed" in value or "\\fbox" in value:
        try:
            gold = DATASETS["math"].normalise({"problem": "", "solution": value})[1]
        except KeyError:
            gold = ""
        if not gold.strip():
            raise _BadField(field, "unparsable or empty \\boxed{} answer")
        return gold.strip()
    if not value.strip():
        raise _BadField(field, "empty gold answer")
    return value.strip()


def _from_record(
    rec: Any, question_field: str | None, answer_field: str | None
) -> tuple[str, str, str | None]:
    """(question, gold, own id or None) of one file record; raises _BadField."""
    if not isinstance(rec, dict):
        raise _BadField("(line)", f"expected a JSON object, got {type(rec).__name__}")
    names = (question_field,) if question_field else QUESTION_FIELDS
    q_name = next((n for n in names if n in rec), None)
    if q_name is None:
        raise _BadField(
            names[0], f"missing question (expected one of {', '.join(map(repr, names))})"
        )
    question = rec[q_name]
    if not isinstance(question, str) or not question.strip():
        raise _BadField(q_name, "expected non-empty question text")
    if answer_field:
        gold = _gold(rec.get(answer_field), answer_field)
    elif rec.get("answer") is not None:  # plain, GSM8K (####) or MATH-500 (answer + solution)
        gold = _gold(rec["answer"], "answer")
    elif rec.get("solution") is not None:
        if "\\boxed" not in str(rec["solution"]) and "\\fbox" not in str(rec["solution"]):
            raise _BadField("solution", "no \\boxed{} answer in the solution")
        gold = _gold(rec["solution"], "solution")
    else:
        raise _BadField("answer", "missing gold answer (expected 'answer' or 'solution')")
    own = next((rec[n] for n in ID_FIELDS if rec.get(n) not in (None, "")), None)
    return question, gold, None if own is None else str(own)


def _lines(path: Path) -> Iterator[tuple[int, Any | _BadField]]:
    """(line number, parsed JSON or the reason it is not) for every non-blank line."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                yield number, _BadField("(line)", f"not UTF-8 text ({err.reason})")
                continue
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as err:
                yield (
                    number,
                    _BadField("(line)", f"not valid JSON ({err.msg} at column {err.colno})"),
                )


def _load_file(
    path: Path, source: str, question_field: str | None, answer_field: str | None
) -> Iterator[_Found | InputWarning]:
    for number, rec in _lines(path):
        try:
            if isinstance(rec, _BadField):
                raise rec
            question, gold, own_id = _from_record(rec, question_field, answer_field)
        except _BadField as bad:
            yield InputWarning(str(path), number, bad.field, bad.message)
            continue
        # A derived id depends on the text only, so it survives reordering and --limit.
        qid = own_id or f"{path.stem}-{question_hash(question)[:12]}"
        uid = math_unique_id(rec.get("unique_id"), own_id)
        yield AnnotationQuestion(qid, question, gold, source, uid), str(path), number


_FIELD_IN_MESSAGE = re.compile(r"field '(\w+)")


def _load_named(
    name: str, split: str, source: str, data_dir: str | Path | None, limit: int | None
) -> Iterator[_Found | InputWarning]:
    if name in ("arith", "arith_hard"):
        from svpo_harness.core.arith import arith_split
        from svpo_harness.core.arith_hard import arith_hard_split

        make = arith_split if name == "arith" else arith_hard_split
        try:
            problems = make(split, n=limit)  # type: ignore[arg-type]
        except ValueError as err:
            raise AnnotationDataError(f"{source}: {err}") from None
        for p in problems:
            yield AnnotationQuestion(p.question_id, p.question, str(p.answer), source), source, None
        return
    if name not in DATASETS:
        known = ", ".join(["arith", "arith_hard", *sorted(DATASETS)])
        raise AnnotationDataError(f"unknown data set {name!r} in {source!r}; known: {known}")
    spec = DATASETS[name]
    if split not in spec.splits:
        raise AnnotationDataError(f"data set {name!r} has no split {split!r}: {spec.splits}")
    path = local_path(name, split, data_dir)
    if path is None or not path.is_file():
        # Hub (or the loader's one-line "not found" error): the loader decides, as everywhere.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rows = load_problems(name, split, data_dir)
        for w in caught:
            yield InputWarning(source, None, "answer", str(w.message))
        for row in rows:
            uid = math_unique_id(row["question_id"])
            item = AnnotationQuestion(
                row["question_id"], row["question"], row["answer"], source, uid
            )
            yield item, source, None
        return
    # Local file: the loader's own per-record normaliser, but one bad line is a warning, not a
    # crash that loses the whole set. ``index`` counts every non-blank line, so a broken line
    # does not shift the index-derived ids of the lines after it.
    for index, (number, rec) in enumerate(_lines(path)):
        if isinstance(rec, _BadField):
            yield InputWarning(str(path), number, rec.field, rec.message)
            continue
        try:
            row = normalise_record(spec, rec, index, split, where=f"{path}:{number}")
        except ProblemFormatError as err:
            found = _FIELD_IN_MESSAGE.search(str(err))
            message = str(err).split(": ", 1)[-1]
            yield InputWarning(str(path), number, found.group(1) if found else "(line)", message)
            continue
        if not row["answer"].strip():
            yield InputWarning(str(path), number, "answer", "empty gold answer")
            continue
        uid = math_unique_id(rec.get("unique_id"), row["question_id"])
        item = AnnotationQuestion(row["question_id"], row["question"], row["answer"], source, uid)
        yield item, str(path), number


def load_annotation_questions(
    spec: str,
    *,
    data_dir: str | Path | None = None,
    question_field: str | None = None,
    answer_field: str | None = None,
    limit: int | None = None,
) -> tuple[list[AnnotationQuestion], list[InputWarning]]:
    """Questions in input order, unique by id and by normalised text (first kept, others warned).

    ``limit`` keeps the first ``limit`` questions after bad lines and duplicates are dropped.
    Raises :class:`AnnotationDataError` only for an unusable spec (unknown set, missing file),
    and the problem loader's ``DataUnavailableError`` when a named set is nowhere to be found.
    """
    if limit is not None and limit < 0:
        raise AnnotationDataError(f"limit must be >= 0, got {limit}")
    named = re.fullmatch(r"([A-Za-z0-9_]+):([A-Za-z0-9_]+)", spec)
    path = Path(spec)
    if path.is_file() or not named:
        if not path.is_file():
            raise AnnotationDataError(
                f"{spec!r} is neither a file nor a data set split "
                "(expected arith:train, arith_hard:train, gsm8k:train, math:train or FILE.jsonl)"
            )
        items = _load_file(path, spec, question_field, answer_field)
    else:
        if question_field or answer_field:
            raise AnnotationDataError(
                f"--question-field/--answer-field apply to FILE.jsonl only, not to {spec!r}"
            )
        items = _load_named(named.group(1), named.group(2), spec, data_dir, limit)
    return _dedupe(items, limit)


def _dedupe(
    items: Iterator[_Found | InputWarning], limit: int | None
) -> tuple[list[AnnotationQuestion], list[InputWarning]]:
    questions: list[AnnotationQuestion] = []
    found: list[InputWarning] = []
    by_id: set[str] = set()
    by_text: dict[str, str] = {}
    for item in items:
        if isinstance(item, InputWarning):
            found.append(item)
            continue
        if limit is not None and len(questions) >= limit:
            break  # warnings past the limit are not ours to report: those lines are not used
        item, file, line = item
        key = question_hash(item.question)
        kept = f"skipped {item.question_id!r}, kept the first"
        if key in by_text:  # first: a derived id repeats exactly when the text does
            what = f"same question text as {by_text[key]!r}: {kept}"
            found.append(InputWarning(file, line, "question", what))
        elif item.question_id in by_id:
            found.append(InputWarning(file, line, "question_id", f"duplicate id: {kept}"))
        else:
            by_id.add(item.question_id)
            by_text[key] = item.question_id
            questions.append(item)
    return questions, found
