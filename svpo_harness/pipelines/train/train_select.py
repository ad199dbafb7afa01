"""Model selection on held-out data for every objective (`svpo train --select-on`).

method.md section 7.2: each run is evaluated on a dev split at step 0 and every K steps, in
this process, with the policy being trained (no lm-eval process: it must be cheap); the
checkpoint written is the best one, ties to the earlier step. The metric is greedy accuracy
for objectives that train no value head, and SBS(3,5) accuracy for those that do: a head is
judged by the search it guides.

The dev problems must be disjoint from the training questions and from every evaluation set
(the contamination guard of pipelines/annotate/contamination.py, with the dev set's own name
left out of the sets it is checked against); a selection set that overlaps either is refused.

Resumable: the curve and the best step live in the run folder's progress file, the best
weights (trainable tensors only: the adapter, or all weights with --full, and the head) in
``<out>.run/best/``, written before the progress file names them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

METRICS = ("auto", "greedy", "sbs")
SBS_B1, SBS_B2, SBS_TEMPERATURE = 3, 5, 0.6  # SBS(3,5) at T=0.6 (method.md section 6)
BEST_DIR = "best"  # <out>.run/best/step_N.pt


class SelectionError(ValueError):
    """The selection set cannot be used: one line naming it."""


@dataclass
class Selection:
    """The dev problems, the metric and what was measured so far."""

    on: str
    metric: str  # "greedy" or "sbs"
    every: int
    limit: int
    questions: list[Any]  # AnnotationQuestion
    curve: list[list[float]] = field(default_factory=list)  # [[step, acc], ...]
    best_step: int | None = None
    best_acc: float = -1.0
    checked_against: list[str] = field(default_factory=list)

    @property
    def metric_name(self) -> str:
        return f"sbs-{SBS_B1}-{SBS_B2}" if self.metric == "sbs" else "greedy"

    def due(self, step: int, total_steps: int) -> bool:
        """Evaluate at step 0, every ``every`` steps, and after the last step."""
        done = {int(s) for s, _ in self.curve}
        return step not in done and (step % self.every == 0 or step == total_steps)

    def add(self, step: int, acc: float) -> bool:
        """Record ``acc`` at ``step``; True when it is a new best (ties keep the earlier)."""
        self.curve.append([step, acc])
        if acc > self.best_acc:
            self.best_acc, self.best_step = acc, step
            return True
        return False

    def state(self) -> dict[str, Any]:
        return {"curve": self.curve, "best_step": self.best_step, "best_acc": self.best_acc}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state:
            self.curve = [list(point) for point in state["curve"]]
            self.best_step, self.best_acc = state["best_step"], state["best_acc"]

    def record(self, lr: float) -> dict[str, Any]:
        """``svpo.json``'s ``training.selection``."""
        return {
            "on": self.on,
            "metric": self.metric_name,
            "every": self.every,
            "limit": self.limit,
            "problems": len(self.questions),
            "curve": self.curve,
            "chosen_step": self.best_step,
            "chosen_acc": self.best_acc,
            "lr": lr,
            "checked_against": self.checked_against,
        }


def resolve_metric(choice: str, trains_head: bool) -> str:
    if choice not in METRICS:
        raise SelectionError(f"--select-metric must be one of {', '.join(METRICS)}: {choice!r}")
    if choice == "auto":
        return "sbs" if trains_head else "greedy"
    return choice


def load_selection(
    on: str,
    *,
    metric: str,
    every: int,
    limit: int | None,
    train_questions: Iterable[tuple[str, str | None]],
    data_dir: str | None = None,
) -> Selection:
    """The dev problems of ``on`` (``arith:dev``, ``gsm8k:train``, ``FILE.jsonl``), checked.

    ``train_questions``: (question id, question text or None) of the training data.
    """
    from svpo_harness.data.problems import DataUnavailableError, ProblemFormatError
    from svpo_harness.pipelines.annotate import (
        AnnotationDataError,
        check_contamination,
        default_eval_sets,
        load_annotation_questions,
        question_hash,
    )

    if every < 1:
        raise SelectionError(f"--eval-every must be >= 1, got {every}")
    if limit is not None and limit < 1:
        raise SelectionError(f"--eval-limit must be >= 1, got {limit}")
    try:
        questions, _ = load_annotation_questions(on, data_dir=data_dir, limit=limit)
    except (AnnotationDataError, DataUnavailableError, ProblemFormatError) as err:
        raise SelectionError(f"--select-on {on}: {err}") from None
    if not questions:
        raise SelectionError(f"--select-on {on}: no usable problem")
    ids, texts = set(), set()
    for question_id, text in train_questions:
        ids.add(question_id)
        if text:
            texts.add(question_hash(text))
    overlap = [q.question_id for q in questions if q.question_id in ids]
    overlap += [q.question_id for q in questions if question_hash(q.question) in texts]
    if overlap:
        raise SelectionError(
            f"--select-on {on}: {len(set(overlap))} problem(s) are training questions too "
            f"(e.g. {sorted(set(overlap))[0]!r}); the selection set must be held out"
        )
    # The guard lists dev splits too (training on them would bias selection); a dev split is
    # not checked against itself. A test split is: selecting on it is refused.
    own = on.replace(":", "/")
    sets = tuple(s for s in default_eval_sets() if not (s == own and s.endswith("/dev")))
    report = check_contamination(questions, index=_eval_index(sets, data_dir))
    if report.matches:
        first = report.matches[0]
        raise SelectionError(
            f"--select-on {on}: {len(report.matches)} problem(s) are evaluation problems "
            f"(e.g. {first.question_id!r} is {first.eval_set} {first.eval_id!r}); select on "
            "a split that no reported number is measured on"
        )
    return Selection(
        on=on,
        metric=metric,
        every=every,
        limit=len(questions),
        questions=questions,
        checked_against=list(report.checked),
    )


@functools.lru_cache(maxsize=4)
def _eval_index(sets: tuple[str, ...], data_dir: str | None) -> Any:
    """The eval sets' hashes, loaded once per process: a recipe trains many runs in one."""
    from svpo_harness.pipelines.annotate import build_eval_index

    return build_eval_index(sets, data_dir=data_dir)


@torch.no_grad()
def dev_accuracy(
    model: Any, head: Any, tokenizer: Any, step_format: Any, selection: Selection, seed: int
) -> float:
    """Strict accuracy of greedy or SBS(3,5) on the dev problems, as the tasks score it."""
    from svpo_harness.core.search import RootState, SearchOptions, run_search
    from svpo_harness.core.tool_policy import with_tools
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.grading import extract_answer, grade_many
    from svpo_harness.sandbox import sandbox_runner

    was_training = model.training
    head_training = head.training if head is not None else False
    use_head = head if selection.metric == "sbs" else None
    try:
        # a new policy (and prefix KV cache) per evaluation: the weights change between them
        policy = with_tools(HFStepPolicy(model, tokenizer, step_format, use_head), sandbox_runner)
        roots = [
            RootState(key=q.question_id, prompt_ids=policy.encode_prompt(q.question))
            for q in selection.questions
        ]
        opts = SearchOptions(
            b1=SBS_B1,
            b2=SBS_B2,
            temperature=SBS_TEMPERATURE,
            max_new_tokens=1024,
            rank_by="value" if use_head is not None else "logprob",
        )
        results = run_search(selection.metric, roots, policy, opts, seed=seed)
    finally:
        model.train(was_training)
        if head is not None:
            head.train(head_training)
    answers = [extract_answer(r.text, style="strict") for r in results]
    pairs = zip(answers, selection.questions, strict=True)
    graded = grade_many([(a.answer, q.gold_answer) for a, q in pairs if a is not None])
    return sum(graded) / len(selection.questions)


# -- the best weights, on disk --------------------------------------------------------------
def trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: p.detach().to("cpu", copy=True)
        for name, p in module.named_parameters()
        if p.requires_grad
    }


def _best_file(run_dir: Path, step: int) -> Path:
    return run_dir / BEST_DIR / f"step_{step}.pt"


def save_best(run_dir: Path, module: torch.nn.Module, step: int) -> None:
    """The trainable tensors of ``step`` (others removed: only the best one is kept)."""
    target = _best_file(run_dir, step)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    torch.save(trainable_state(module), tmp)
    os.replace(tmp, target)
    for old in target.parent.glob("step_*.pt"):
        if old != target:
            old.unlink(missing_ok=True)


def load_best(run_dir: Path, module: torch.nn.Module, step: int) -> None:
    """Put the trainable tensors saved at ``step`` back into ``module``."""
    file = _best_file(run_dir, step)
    if not file.is_file():
        raise SelectionError(f"{file}: the best step's weights are missing (--overwrite)")
    state = torch.load(file, map_location="cpu", weights_only=True)
    params = dict(module.named_parameters())
    unknown = sorted(set(state) - set(params))
    if unknown:
        raise SelectionError(f"{file}: names tensors this model does not have: {unknown[:3]}")
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
