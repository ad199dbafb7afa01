"""One checkpoint x one decoding through lm-eval's Python API, saved in lm-eval's own layout.

`svpo run` evaluates many checkpoint x decoding pairs in one process: lm-eval's CLI would pay
its task indexing (about 6 s) per call, so the task manager scans only our task folder
(``include_defaults=False``). Results and per-sample logs are written exactly as ``lm_eval
--output_path DIR --log_samples`` writes them, so ``svpo report`` (and any lm-eval tooling)
reads them, plus the search log (one line per question with the tokens the search generated:
its real cost, which the response's length is not for SBS, maj@k or MCTS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svpo_harness.core.jsonl_io import json_objects


def search_cost(log: Path) -> dict[str, float]:
    """Mean generated tokens per question in a search log (``search_log=`` model arg)."""
    tokens, questions = 0, 0
    if log.is_file():
        for _, record in json_objects(log):
            tokens += int(record.get("tokens_generated", 0))
            questions += 1
    return {"questions": questions, "tokens_per_question": tokens / max(1, questions)}


def evaluate_checkpoint(
    checkpoint: str | Path,
    task: str,
    model_args: dict[str, Any],
    out_dir: str | Path,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    device: str = "cpu",
) -> dict[str, Any]:
    """Run ``--model svpo`` with ``model_args`` on ``task``; returns the headline numbers."""
    import lm_eval
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    from svpo_harness.pipelines.evaluate.lm_eval_registry import register_all, tasks_dir

    register_all()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "search_log.jsonl"
    log.unlink(missing_ok=True)  # a re-run after a kill must not count questions twice
    args = {"pretrained": str(checkpoint), **model_args, "search_log": str(log)}
    tracker = EvaluationTracker(output_path=str(out))
    # The model args as task metadata, as lm-eval's CLI passes them (its simple_evaluate does
    # only when it makes the TaskManager): the loaders pick the prompt's step format from them.
    manager = TaskManager(include_path=str(tasks_dir()), include_defaults=False, metadata=args)
    results = lm_eval.simple_evaluate(
        model="svpo",
        model_args=args,
        tasks=[task],
        limit=limit,
        batch_size=batch_size,
        device=device,
        log_samples=True,
        task_manager=manager,
        evaluation_tracker=tracker,
    )
    samples = results.pop("samples")
    tracker.save_results_aggregated(results=results, samples=samples)
    for name in results["configs"]:
        tracker.save_results_samples(task_name=name, samples=samples[name])
    metrics = results["results"][task]
    n = int(results["n-samples"][task]["effective"])
    seconds = float(results.get("total_evaluation_time_seconds", 0.0) or 0.0)
    return {
        "acc": metrics.get("acc,none"),
        "acc_stderr": metrics.get("acc_stderr,none"),
        "acc_flexible": metrics.get("acc_flexible,none"),
        "n": n,
        "seconds_per_question": seconds / max(1, n),
        **search_cost(log),
    }
