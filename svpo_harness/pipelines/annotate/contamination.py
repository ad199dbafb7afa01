"""Contamination guard: training questions that are also evaluation problems (method.md section 4).

Every evaluation set the problem loaders know (GSM8K test, MATH test, MATH-500, the out-of-domain
sets) plus the synthetic world's test and dev splits is indexed by the hash of its normalised
question text and by its MATH ``unique_id`` (prm800k's train split holds 4,500 MATH test
problems under their test ids); a training question matches on either. Eval sets come from the
same sources as the training data (``data_dir`` / ``$SVPO_DATA_DIR`` / hub); one that cannot be
loaded is reported as unchecked, never silently skipped.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svpo_harness.data.problems import (
    DATASETS,
    DataUnavailableError,
    ProblemFormatError,
    load_problems,
    local_path,
)
from svpo_harness.pipelines.annotate.annotate_data import (
    AnnotationQuestion,
    InputWarning,
    math_unique_id,
    question_hash,
)

ARITH_EVAL_SPLITS = ("test", "dev")  # the synthetic world's held-out splits
BUILT_IN_SETS = ("arith", "arith_hard")  # generated on the fly: never from a folder or the hub
# Error names in the loader's "hub is unreachable (Name)" line that mean "no network at all".
_OFFLINE_ERRORS = ("ConnectionError", "OfflineModeIsEnabled", "Timeout", "LocalEntryNotFound")


def default_eval_sets() -> tuple[str, ...]:
    """``name/split`` of every evaluation set: each loader data set's test split, and the test and
    dev splits of the arithmetic world (``arith``) and of its hard split (``arith_hard``)."""
    named = tuple(f"{name}/test" for name, spec in DATASETS.items() if "test" in spec.splits)
    world = tuple(f"{w}/{split}" for w in BUILT_IN_SETS for split in ARITH_EVAL_SPLITS)
    return named + world


@dataclass(frozen=True)
class ContaminationMatch:
    question_id: str  # the training question
    eval_set: str  # "gsm8k/test"
    eval_id: str  # the evaluation problem's question_id
    by: str  # "text" (normalised-text hash) or "unique_id"


@dataclass
class EvalIndex:
    """Hash sets of the evaluation problems: text hash / unique_id -> [(eval set, eval id)]."""

    checked: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # eval set -> why not checked
    texts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    unique_ids: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, eval_set: str, eval_id: str, question: str) -> None:
        self.texts.setdefault(question_hash(question), []).append((eval_set, eval_id))
        uid = math_unique_id(eval_id)
        if uid is not None:
            self.unique_ids.setdefault(uid, []).append((eval_set, eval_id))


@dataclass(frozen=True)
class ContaminationReport:
    matches: tuple[ContaminationMatch, ...]
    checked: tuple[str, ...]  # eval sets that were loaded and compared
    unavailable: dict[str, str]  # eval sets that could not be loaded -> the loader's reason

    @property
    def question_ids(self) -> list[str]:
        """Contaminated training questions, each once, in match order."""
        return list(dict.fromkeys(m.question_id for m in self.matches))

    def summary(self) -> str:
        line = (
            f"contamination: {len(self.question_ids)} training question(s) match an evaluation "
            f"problem; checked {', '.join(self.checked) or 'nothing'}"
        )
        if self.unavailable:
            line += f"; not available: {', '.join(sorted(self.unavailable))}"
        return line

    def to_dict(self) -> dict[str, Any]:
        """For ``stats.json``: counts and which sets were (not) checked."""
        return {
            "contaminated_questions": len(self.question_ids),
            "contamination_matches": len(self.matches),
            "eval_sets_checked": list(self.checked),
            "eval_sets_unavailable": sorted(self.unavailable),
        }

    def as_warnings(self, source: str) -> list[InputWarning]:
        """One ``warnings.jsonl`` line per match (kind ``contamination``)."""
        return [
            InputWarning(
                source,
                None,
                "question" if m.by == "text" else "unique_id",
                f"{m.question_id!r} matches {m.eval_set} problem {m.eval_id!r} (same {m.by})",
                kind="contamination",
            )
            for m in self.matches
        ]


def _eval_problems(eval_set: str, data_dir: str | Path | None) -> list[tuple[str, str]]:
    """(eval id, question) of one eval set; raises DataUnavailableError/ProblemFormatError."""
    name, _, split = eval_set.partition("/")
    if name in BUILT_IN_SETS:
        from svpo_harness.core.arith import arith_split
        from svpo_harness.core.arith_hard import arith_hard_split

        problems = (arith_split if name == "arith" else arith_hard_split)(split)  # type: ignore[arg-type]
        return [(p.question_id, p.question) for p in problems]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "skipped problems without a gold answer": not ours
        rows = load_problems(name, split, data_dir)
    return [(row["question_id"], row["question"]) for row in rows]


def build_eval_index(
    eval_sets: Sequence[str] | None = None, *, data_dir: str | Path | None = None
) -> EvalIndex:
    """Load and hash every eval set (default: :func:`default_eval_sets`). Unknown names raise."""
    wanted = tuple(eval_sets) if eval_sets is not None else default_eval_sets()
    known = set(default_eval_sets())
    for eval_set in wanted:
        if eval_set not in known:
            raise ValueError(f"unknown eval set {eval_set!r}; known: {', '.join(sorted(known))}")
    index = EvalIndex()
    hub_down: str | None = None  # the first set the hub could not be reached for
    for eval_set in wanted:
        name, _, split = eval_set.partition("/")
        from_hub = name not in BUILT_IN_SETS and local_path(name, split, data_dir) is None
        if from_hub and hub_down is not None:
            # Each unreachable hub set costs ~30 s of client retries: try the hub once.
            index.unavailable[eval_set] = f"not tried: the hub was unreachable for {hub_down}"
            continue
        try:
            problems = _eval_problems(eval_set, data_dir)
        except (DataUnavailableError, ProblemFormatError) as err:
            index.unavailable[eval_set] = str(err)
            if from_hub and any(word in str(err) for word in _OFFLINE_ERRORS):
                hub_down = eval_set
            continue
        for eval_id, question in problems:
            index.add(eval_set, eval_id, question)
        index.checked.append(eval_set)
    return index


def check_contamination(
    questions: Iterable[AnnotationQuestion],
    *,
    data_dir: str | Path | None = None,
    eval_sets: Sequence[str] | None = None,
    index: EvalIndex | None = None,
) -> ContaminationReport:
    """Every (training question, eval problem) match by normalised text or MATH ``unique_id``.

    Pass a prebuilt ``index`` to check several batches (shards) against one load of the sets.
    """
    if index is None:
        index = build_eval_index(eval_sets, data_dir=data_dir)
    matches: list[ContaminationMatch] = []
    for q in questions:
        seen: set[tuple[str, str]] = set()
        for hits, by in (
            (index.texts.get(question_hash(q.question), ()), "text"),
            (
                index.unique_ids.get(q.unique_id or math_unique_id(q.question_id) or "", ()),
                "unique_id",
            ),
        ):
            for eval_set, eval_id in hits:
                if (eval_set, eval_id) not in seen:  # text and id both match: report once
                    seen.add((eval_set, eval_id))
                    matches.append(ContaminationMatch(q.question_id, eval_set, eval_id, by))
    return ContaminationReport(tuple(matches), tuple(index.checked), dict(index.unavailable))
