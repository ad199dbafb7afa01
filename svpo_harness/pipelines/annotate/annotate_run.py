"""`svpo annotate` end to end: data -> contamination guard -> shard -> run folder -> MCTS -> files.

See ``pipelines.annotate`` for what is written and why a killed run resumes exactly. Settings
that change results go into the run folder's manifest (a different value is refused, naming
it); ``--batch-size``, ``--trees-in-flight``, ``--device`` and ``--data-dir`` do not change
results (seeded per expansion, graded the same way) and may differ between sessions; nor does
``--limit``, so a larger one extends a finished run.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from svpo_harness.core.fault import fault_point
from svpo_harness.core.mcts import MCTSOptions
from svpo_harness.core.schemas import TreeRecord, to_dict
from svpo_harness.pipelines.annotate.annotate import PairRule, annotate_trees
from svpo_harness.pipelines.annotate.annotate_config import (
    AnnotateConfig,
    AnnotateError,
    grader,
    load_policy,
    resolve_leaf_value,
)
from svpo_harness.pipelines.runs import (
    RunDirError,
    append_warnings,
    drop_unfinished_records,
    open_jsonl,
    open_run_dir,
    read_finished_trees,
)


def _ray_workers(cfg: AnnotateConfig) -> Any:
    from svpo_harness.pipelines.annotate.annotate_ray import RayWorkers

    return RayWorkers.start(cfg)


def run_annotate(cfg: AnnotateConfig, *, progress: bool = True) -> str:
    """Run (or continue) the annotation described by ``cfg``; returns the summary line."""
    from svpo_harness.pipelines.annotate.annotate_data import load_annotation_questions
    from svpo_harness.pipelines.annotate.contamination import check_contamination
    from svpo_harness.pipelines.runs import normalise_shard, shard_questions

    started = time.perf_counter()
    for name in ("simulations", "children", "max_depth", "trees_per_question", "batch_size"):
        if getattr(cfg, name) < 1:
            raise AnnotateError(f"--{name.replace('_', '-')} must be >= 1")
    cfg = dataclasses.replace(cfg, shard=normalise_shard(cfg.shard))
    if cfg.ray is not None:
        from svpo_harness.pipelines.annotate.annotate_ray import import_ray

        import_ray()  # without the extra, fail before any work
    questions, warnings = load_annotation_questions(
        cfg.data,
        data_dir=cfg.data_dir,
        question_field=cfg.question_field,
        answer_field=cfg.answer_field,
        limit=cfg.limit,
    )
    questions = shard_questions(questions, cfg.shard)
    report = check_contamination(questions, data_dir=cfg.data_dir)
    if report.matches and cfg.strict:
        raise AnnotateError(f"--strict: {report.summary()} (see the matches without --strict)")
    leaf_value = resolve_leaf_value(cfg.leaf_value, cfg.model)
    # --ray: the workers load the policy; the first one's tokenizer fingerprint goes below
    policy = load_policy(cfg) if cfg.ray is None else _ray_workers(cfg)
    run = open_run_dir(
        cfg.out,
        cfg.settings(leaf_value),
        tokenizer_fingerprint=policy.tokenizer_fingerprint,
        overwrite=cfg.overwrite,
    )
    done = read_finished_trees(run.trees)
    if run.pairs.exists():
        drop_unfinished_records(run.pairs, done)  # records of a tree cut off by a kill
    new_warnings = append_warnings(run.warnings, [*warnings, *report.as_warnings(cfg.data)])
    previous = run.read_stats() if run.stats.exists() else {}
    opts = MCTSOptions(
        simulations=cfg.simulations,
        children=cfg.children,
        c_puct=cfg.c_puct,
        temperature=cfg.temperature,
        max_depth=cfg.max_depth,
        max_step_tokens=cfg.max_step_tokens,
        max_new_tokens=cfg.max_new_tokens,
        leaf_value=leaf_value,  # type: ignore[arg-type]
    )
    todo = len(questions) * cfg.trees_per_question - len(
        {k for k in done if k[1] < cfg.trees_per_question}
    )
    session = dict.fromkeys(("trees", "nodes", "solved", "pair", "step_q", "path"), 0)
    session["tokens_generated"] = 0
    counts = file_counts(run)
    warning_lines = sum(1 for _ in open(run.warnings, encoding="utf-8"))
    bar = _progress(todo, progress)

    def stats_now() -> dict[str, Any]:
        seconds = time.perf_counter() - started
        return _stats(
            counts, previous, session, seconds, questions, report, warning_lines, len(warnings)
        )

    with open_jsonl(run.trees) as trees_out, open_jsonl(run.pairs) as pairs_out:

        def write(record: TreeRecord, records: list[Any], counters: dict[str, Any]) -> None:
            for rec in records:  # the tree's records first: its tree line commits them
                pairs_out.append(rec)
            trees_out.append(record)
            session["trees"] += 1
            fault_point("annotate", session["trees"])  # SVPO_FAULT_EXIT_AT=annotate:N (tests)
            session["nodes"] += counters["nodes"]
            session["tokens_generated"] += counters["tokens_generated"]
            session["solved"] += counters["solved"]
            for rec in records:
                session[rec.KIND] += 1
            stats = stats_now()
            run.write_stats(stats)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(
                    solved=f"{stats['solved_rate']:.0%}", tok_s=f"{stats['tokens_per_s']:.0f}"
                )

        if cfg.ray is not None:
            from svpo_harness.pipelines.annotate.annotate_ray import work_items

            items = work_items(questions, cfg.trees_per_question, done)
            policy.grow(items, opts, on_tree=write)
        else:
            annotate_trees(
                questions,
                policy,
                opts,
                seed=cfg.seed,
                grade=grader(cfg.grade_timeout),
                trees_per_question=cfg.trees_per_question,
                done=done,
                trees_in_flight=cfg.trees_in_flight,
                batch_rows=cfg.batch_size,
                pair_rule=PairRule(cfg.rule, cfg.min_q_gap, cfg.min_visits),
                on_tree=write,
            )
    if bar is not None:
        bar.close()
    stats = stats_now()
    run.write_stats(stats)
    return (
        f"annotate: {stats['trees']} trees ({session['trees']} new) of {stats['questions']} "
        f"questions, {stats['pairs']} pairs, {stats['step_q']} step_q, {stats['paths']} paths, "
        f"solved {stats['solved_rate']:.0%}, {stats['tokens_generated']} tokens "
        f"({stats['tokens_per_s']:.0f}/s), {stats['warnings']} warnings ({new_warnings} new), "
        f"{stats['contaminated_questions']} contaminated (checked "
        f"{len(stats['eval_sets_checked'])} eval sets, "
        f"{len(stats['eval_sets_unavailable'])} unavailable) -> {run.path}"
    )


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total <= 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="annotate", unit="tree")


def file_counts(run: Any) -> dict[str, int]:
    """What the run folder already holds (read once per session; exact after a resume)."""
    from svpo_harness.pipelines.runs import iter_jsonl_lines

    counts = {"trees": 0, "nodes": 0, "solved": 0, "pair": 0, "step_q": 0, "path": 0}
    for path in (run.trees, run.pairs):
        if not path.exists():
            continue
        for _, _, data in iter_jsonl_lines(path):
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == "tree":
                nodes = data.get("nodes", ())
                counts["trees"] += 1
                counts["nodes"] += len(nodes)
                counts["solved"] += any(n.get("reward") == 1.0 for n in nodes)
            elif kind in counts:
                counts[kind] += 1
    return counts


def _stats(
    counts: dict[str, int],
    previous: dict[str, Any],
    session: dict[str, int],
    seconds: float,
    questions: list[Any],
    report: Any,
    warning_lines: int,
    bad_input: int,
) -> dict[str, Any]:
    """Counts of the folder plus cumulative tokens and seconds over every session."""
    wall = float(previous.get("wall_seconds", 0.0))
    tokens = int(previous.get("tokens_generated", 0))
    total_wall, total_tokens = wall + seconds, tokens + session["tokens_generated"]
    trees = counts["trees"] + session["trees"]
    pairs = counts["pair"] + session["pair"]
    return {
        "questions": len(questions),
        "trees": trees,
        "nodes": counts["nodes"] + session["nodes"],
        "pairs": pairs,
        "step_q": counts["step_q"] + session["step_q"],
        "paths": counts["path"] + session["path"],
        "solved_trees": counts["solved"] + session["solved"],
        "solved_rate": (counts["solved"] + session["solved"]) / trees if trees else 0.0,
        "tokens_generated": total_tokens,
        "wall_seconds": round(total_wall, 3),
        "tokens_per_s": total_tokens / total_wall if total_wall > 0 else 0.0,
        "pairs_per_s": pairs / total_wall if total_wall > 0 else 0.0,
        "warnings": warning_lines,
        "bad_input_lines": bad_input,
        **report.to_dict(),
        "sessions": int(previous.get("sessions", 0)) + 1,
    }


def merge_shards(dirs: list[str], out: str, *, overwrite: bool = False) -> str:
    """`svpo annotate merge`: join shard folders (pipelines.runs.run_shards.merge_runs)."""
    from svpo_harness.pipelines.runs import merge_runs

    try:
        result = merge_runs(dirs, out, overwrite=overwrite, finish_stats=_finish_merged_stats)
    except RunDirError as err:
        raise AnnotateError(str(err)) from None
    return result.summary()


def _finish_merged_stats(stats: dict[str, Any]) -> dict[str, Any]:
    wall = stats.get("wall_seconds") or 0.0
    stats["solved_rate"] = stats["solved_trees"] / stats["trees"] if stats.get("trees") else 0.0
    stats["tokens_per_s"] = stats.get("tokens_generated", 0) / wall if wall else 0.0
    stats["pairs_per_s"] = stats.get("pairs", 0) / wall if wall else 0.0
    return stats


__all__ = ["AnnotateConfig", "AnnotateError", "merge_shards", "run_annotate", "to_dict"]
