"""Annotation: problems -> MCTS trees -> pair/step_q/path records (`svpo annotate`).

One run is one resumable folder (``runs``); ``--ray`` grows the trees on Ray actors
(docs/ray.md). Public API: ``AnnotateConfig`` + ``run_annotate`` (and ``merge_shards``); what a
process growing trees builds (``load_policy``, ``grader``, ``annotate_trees``, ``PairRule``);
the question loader and the contamination guard that training's dev split reuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svpo_harness.pipelines import lazy_exports

if TYPE_CHECKING:
    from svpo_harness.pipelines.annotate.annotate import PairRule, annotate_trees
    from svpo_harness.pipelines.annotate.annotate_config import (
        AnnotateConfig,
        AnnotateError,
        grader,
        load_policy,
    )
    from svpo_harness.pipelines.annotate.annotate_data import (
        AnnotationDataError,
        AnnotationQuestion,
        load_annotation_questions,
        question_hash,
    )
    from svpo_harness.pipelines.annotate.annotate_run import merge_shards, run_annotate
    from svpo_harness.pipelines.annotate.contamination import (
        build_eval_index,
        check_contamination,
        default_eval_sets,
    )

__getattr__ = lazy_exports(
    __name__,
    {
        "annotate": ("PairRule", "annotate_trees"),
        "annotate_config": ("AnnotateConfig", "AnnotateError", "grader", "load_policy"),
        "annotate_data": (
            "AnnotationDataError",
            "AnnotationQuestion",
            "load_annotation_questions",
            "question_hash",
        ),
        "annotate_run": ("merge_shards", "run_annotate"),
        "contamination": ("build_eval_index", "check_contamination", "default_eval_sets"),
    },
)
__all__ = [
    "AnnotateConfig",
    "AnnotateError",
    "AnnotationDataError",
    "AnnotationQuestion",
    "PairRule",
    "annotate_trees",
    "build_eval_index",
    "check_contamination",
    "default_eval_sets",
    "grader",
    "load_annotation_questions",
    "load_policy",
    "merge_shards",
    "question_hash",
    "run_annotate",
]
