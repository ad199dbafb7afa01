"""`svpo report`: a leaderboard, paired significance and plots from lm-eval outputs.

Reads lm-eval result files (``<output_path>/<model>/results_<date>.json``) and, beside them, the
``--log_samples`` files (``samples_<task>_<date>.jsonl``). One measured row per (results file,
task); quoted rows come from a reference YAML and are never tested. Writes ``report.md``,
``report.html`` (self-contained), ``report.json`` and two PNGs next to the markdown file (three
when a trained checkpoint's svpo.json holds a dev curve: report_training).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from svpo_harness.core.jsonl_io import json_objects
from svpo_harness.pipelines.report import report_ceiling as ceiling
from svpo_harness.pipelines.report import report_groups as groups
from svpo_harness.pipelines.report import report_stats as stats
from svpo_harness.pipelines.report import report_training as training
from svpo_harness.pipelines.report.report_reference import load_reference, match_task

QUOTED = "quoted, not measured"
NO_SAMPLES = "no samples file (lm-eval --log_samples): no significance test, no re-tokenized count"


class ReportError(ValueError):
    """An input the report cannot use; the message names the file."""


@dataclass
class ReportConfig:
    results: list[str]  # files or folders, each optionally LABEL=PATH
    out: str = "report.md"
    html: str | None = None  # default: <out>.html
    reference: str | None = None  # a YAML file or a name in report_reference.REFERENCE_SETS
    tokenizer: str | None = None  # overrides model_args' pretrained for re-tokenizing
    plots: bool = True
    pairs: str = "auto"  # report_groups.PAIR_MODES: which rows the significance test pairs
    trees: bool = True  # an `svpo view` page per row with a search log (report_view)
    _tokenizers: dict[str, Any] = field(default_factory=dict, repr=False)


# ---- reading lm-eval outputs -------------------------------------------------------------


def find_results(spec: str) -> tuple[str | None, list[Path]]:
    """``[LABEL=]PATH`` -> (label, results files); a folder is searched recursively."""
    label, path = None, Path(spec)
    if not path.exists() and "=" in spec:
        label, rest = spec.split("=", 1)
        path = Path(rest)
    if not path.exists():
        raise ReportError(f"{path}: no such file or folder")
    if path.is_dir():
        found = sorted(path.rglob("results_*.json"))
        if not found:
            raise ReportError(f"{path}: no lm-eval results_*.json file inside")
        return label, found
    return label, [path]


def read_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ReportError(f"{path}: not an lm-eval results file (no 'results' object)")
    return data


def read_samples(path: Path) -> list[dict[str, Any]]:
    """The records of one samples file, of one filter ("none" when present)."""
    records = []
    for number, record in json_objects(path, error=ReportError):
        if not {"doc_id", "acc"} <= record.keys():
            raise ReportError(
                f"{path} line {number}: not an lm-eval sample record (needs doc_id, acc)"
            )
        records.append(record)
    if not records:
        raise ReportError(f"{path}: no sample records")
    filters = {r.get("filter") for r in records}
    keep = "none" if "none" in filters else records[0].get("filter")
    return [r for r in records if r.get("filter") == keep]


def samples_file(results: Path, task: str) -> Path | None:
    """``samples_<task>_<date>.jsonl`` of the same run (lm-eval names both by one date id)."""
    prefix = f"samples_{task}_"
    for cand in sorted(results.parent.glob(f"{prefix}*.jsonl")):
        date = cand.stem[len(prefix) :]
        if results.stem == f"results_{date}" or results.stem.endswith(f"_{date}"):
            return cand
    return None


def _locate(spec: str, results: Path) -> Path | None:
    """A path written in model_args: absolute, or relative to here or to a folder above results."""
    path = Path(spec).expanduser()
    bases = [Path()] if path.is_absolute() else [Path.cwd(), *results.resolve().parents]
    for base in bases:
        if (base / path).exists():
            return base / path
    return None


def _search_log_files(spec: str, results: Path) -> list[Path]:
    """The search log, or its per-rank files ``<stem>.rank<N><suffix>`` of a multi-process run."""
    path = Path(spec).expanduser()
    bases = [Path()] if path.is_absolute() else [Path.cwd(), *results.resolve().parents]
    for base in bases:
        cand = base / path
        if cand.is_file():
            return [cand]
        ranks = sorted(cand.parent.glob(f"{cand.stem}.rank*{cand.suffix}"))
        if ranks:
            return ranks
    return []


def model_args(config: dict[str, Any]) -> dict[str, Any]:
    """model_args as lm-eval stored it: a dict (0.4.13) or the raw ``k=v,...`` string."""
    raw = config.get("model_args") or {}
    if isinstance(raw, dict):
        return dict(raw)
    pairs = (part.split("=", 1) for part in str(raw).split(",") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs}


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None  # absent, or lm-eval's "N/A"


def _svpo_defaults() -> dict[str, Any]:
    """The svpo model's own defaults (core: no lm-eval import), under what model_args gave."""
    from svpo_harness.core.search.model_args import SEARCH_ARGS

    return dict(SEARCH_ARGS)


def describe_decoding(model: str, args: dict[str, Any], gen: dict[str, Any]) -> tuple[str, str]:
    """(short label, full description) of a run's decoding settings."""
    budget = f", max {gen['max_gen_toks']} new tokens" if gen.get("max_gen_toks") else ""
    if model == "svpo":
        a = {**_svpo_defaults(), **args}
        kind, t, n = str(a.get("decoding", "sbs")), a.get("temperature"), a.get("num_samples")
        b1, b2, sims = a.get("beam_width"), a.get("samples_per_step"), a.get("simulations")
        short, full = {
            "greedy": ("greedy", "greedy"),
            "sbs": (f"sbs({b1},{b2})", f"SBS(B1={b1}, B2={b2}), T={t}"),
            "bon": (f"bon@{n}", f"best-of-{n}, T={t}"),
            "maj": (f"maj@{n}", f"maj@{n}, T={t}"),
            "mcts": (f"mcts({sims})", f"MCTS({sims} simulations, c_puct {a.get('c_puct')}), T={t}"),
        }.get(kind, (kind, kind))
        if kind != "greedy" and "value_head" in args and args["value_head"] in (None, "none"):
            full += ", ranked by log-prob (no value head)"
        return short, f"svpo {full}{budget}"
    sampling = (
        str(gen.get("do_sample")).lower() == "true" or (_number(gen.get("temperature")) or 0) > 0
    )
    short = f"sample T={gen.get('temperature')}" if sampling else "greedy"
    return short, f"{model} {short}{budget}"


def _gen_kwargs(data: dict[str, Any], task: str) -> dict[str, Any]:
    gen = dict(((data.get("configs") or {}).get(task) or {}).get("generation_kwargs") or {})
    override = (data.get("config") or {}).get("gen_kwargs") or {}
    if isinstance(override, str):  # --gen_kwargs as given on the command line
        override = model_args({"model_args": override})
    return {**gen, **override}


def _tokenizer(spec: str, cfg: ReportConfig) -> Any:
    """A cached tokenizer, or the error text when it cannot be loaded offline."""
    if spec not in cfg._tokenizers:
        try:
            cfg._tokenizers[spec] = stats.load_tokenizer(spec)
        except Exception as err:  # noqa: BLE001 - any loader failure becomes a note
            cfg._tokenizers[spec] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return cfg._tokenizers[spec]


def _add_tokens(
    row: dict[str, Any],
    args: dict[str, Any],
    samples: list | None,
    results: Path,
    cfg: ReportConfig,
) -> None:
    """tokens_per_question and where it comes from: the search log, else re-tokenized text."""
    counts: list[int] = []
    if row["model"] == "svpo" and args.get("search_log"):
        logs = _search_log_files(str(args["search_log"]), results)
        if logs:
            decoding = str({**_svpo_defaults(), **args}.get("decoding", "sbs"))
            try:
                log = stats.read_search_log(logs, decoding)
            except (OSError, ValueError) as err:
                raise ReportError(str(err)) from None
            counts, note = stats.tokens_from_log(samples, log)
            row["search_log"] = [str(p) for p in logs]
            row["tokens_source"] = "search log (every token the search generated)"
            if note:
                row["notes"].append(f"search log: {note}")
        else:
            row["notes"].append(f"search log {args['search_log']} not found")
    if not counts and samples:
        given = cfg.tokenizer or args.get("tokenizer") or args.get("pretrained")
        if not given:
            row["notes"].append("no tokenizer named in model_args: pass --tokenizer")
            return
        spec = str(_locate(str(given), results) or given)
        tok = _tokenizer(spec, cfg)
        if isinstance(tok, str):
            row["notes"].append(f"tokens not counted: tokenizer {given} did not load ({tok})")
            return
        counts = stats.tokens_from_text(samples, tok)
        row["tokens_source"] = f"re-tokenized responses ({Path(spec).name} tokenizer)"
        if row["model"] == "svpo":
            row["notes"].append("no search log: tokens of the answers only, not of the search")
    if counts:
        row["tokens_per_question"] = sum(counts) / len(counts)


def _add_training(row: dict[str, Any], args: dict[str, Any], results: Path) -> None:
    """The checkpoint's training facts, and whether the row's value head was trained."""
    meta = training.read_meta(_locate(row["pretrained"], results) if row["pretrained"] else None)
    row["training"] = training.training_facts(meta)
    row["value_guided"] = training.value_guided(row["model"], args, _svpo_defaults())
    if row["value_guided"] and args.get("value_head") is not None:  # value_head=PATH
        meta = training.read_meta(_locate(str(args["value_head"]), results))
    row["head_trained"] = training.head_trained(meta) if row["value_guided"] else None


def measured_rows(path: Path, label: str | None, cfg: ReportConfig) -> list[dict[str, Any]]:
    """One row per task of one results file (group aggregates are left out)."""
    data = read_results(path)
    config = data.get("config") or {}
    model, args = str(config.get("model") or "unknown"), model_args(config)
    groups = set(data.get("group_subtasks") or {})
    tasks = [t for t in data["results"] if t not in groups]
    counts = data.get("n-samples") or {}
    n_by_task = {t: int((counts.get(t) or {}).get("effective") or 0) for t in tasks}
    seconds = _number(data.get("total_evaluation_time_seconds"))
    total_n = sum(n_by_task.values())
    pretrained = str(args.get("pretrained") or data.get("model_name") or "")
    rows = []
    for task in tasks:
        res = data["results"][task]
        if not isinstance(res, dict) or "acc,none" not in res:
            continue  # a task without our metrics (not an svpo_* task)
        found = samples_file(path, task)
        samples = read_samples(found) if found else None
        short, full = describe_decoding(model, args, _gen_kwargs(data, task))
        row: dict[str, Any] = {
            "name": label or f"{model} {short} ({Path(pretrained).name or '?'})",
            "task": task,
            "kind": "measured",
            "model": model,
            "pretrained": pretrained,
            "decoding": full,
            "n": n_by_task[task] or res.get("sample_len") or (len(samples) if samples else None),
            "seconds_per_question": seconds / total_n if seconds is not None and total_n else None,
            "tokens_per_question": None,
            "tokens_source": None,
            "search_log": None,
            "results_file": str(path),
            "samples_file": str(found) if found else None,
            "notes": [] if found else [NO_SAMPLES],
        }
        for metric in ("acc", "acc_flexible"):
            row[metric] = _number(res.get(f"{metric},none"))
            row[f"{metric}_stderr"] = _number(res.get(f"{metric}_stderr,none"))
            if row[f"{metric}_stderr"] is None and samples and metric in samples[0]:
                row[f"{metric}_stderr"] = stats.mean_stderr([float(s[metric]) for s in samples])
        _add_tokens(row, args, samples, path, cfg)
        _add_training(row, args, path)
        row["_correct"] = stats.correct_by_doc(samples) if samples else None
        rows.append(row)
    return rows


# ---- the report --------------------------------------------------------------------------


def build_report(cfg: ReportConfig) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for spec in cfg.results:
        label, files = find_results(spec)
        for path in files:
            try:
                rows += measured_rows(path, label, cfg)
            except (AttributeError, KeyError, TypeError) as err:  # a field of another shape
                raise ReportError(f"{path}: unexpected lm-eval results layout ({err!r})") from None
    if not rows:
        raise ReportError(f"no svpo task (acc metric) in {', '.join(cfg.results)}")
    seen: dict[tuple[str, str], int] = {}
    for row in rows:  # equal labels on one task (one label for a folder, reruns) get a number
        key = (row["name"], row["task"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            row["name"] += f" #{seen[key]}"
    measured_tasks = list(dict.fromkeys(r["task"] for r in rows))
    if cfg.reference:
        for row in load_reference(cfg.reference, ReportError):
            row["task"] = match_task(row["task"], measured_tasks)
            rows.append(row)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    if cfg.pairs not in groups.PAIR_MODES:
        raise ReportError(f"pairs must be one of {', '.join(groups.PAIR_MODES)}, got {cfg.pairs!r}")
    groups.label_rows(rows)
    training.label_heads(rows)
    ceiling.mark_rows(rows)  # after the labels: the flag names rows as the pages do
    pairs = []
    for task in tasks:
        tested = [r for r in rows if r["task"] == task and r.get("_correct") is not None]
        on_task = sum(r["task"] == task and r["kind"] == "measured" for r in rows)
        for i, a in enumerate(tested):
            for b in tested[i + 1 :]:
                if not groups.tested(cfg.pairs, a, b, on_task):
                    continue
                result = stats.paired_test(a["_correct"], b["_correct"])
                pairs.append({"task": task, "row_a": a["name"], "row_b": b["name"], **result})
                pairs[-1]["both_at_ceiling"] = bool(a["at_ceiling"] and b["at_ceiling"])
    for row in rows:
        row.pop("_correct", None)
    return {
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tasks": tasks,
        "rows": rows,
        "ceiling": ceiling.task_ceilings(rows, tasks),  # only the flagged tasks and columns
        "significance": {"test": stats.MCNEMAR, "pair_mode": cfg.pairs, "pairs": pairs},
        "seeds": [p for p in groups.pooled_points(rows) if p["seeds"] > 1],
        "training": training.checkpoints(rows),
    }


def run_report(cfg: ReportConfig) -> dict[str, Any]:
    """Build the report and write md, html, json and PNGs; returns the report with its paths."""
    from svpo_harness.pipelines.report import report_pages, report_plots, report_view

    report = build_report(cfg)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    images: dict[str, Path] = {}
    if cfg.plots:
        images["accuracy"] = report_plots.plot_accuracy(
            report, out.with_name(f"{out.stem}_accuracy.png")
        )
        images["acc_vs_tokens"] = report_plots.plot_acc_vs_tokens(
            report, out.with_name(f"{out.stem}_acc_vs_tokens.png")
        )
        curves = training.dev_curves(report["training"])
        if curves:
            images["dev_curves"] = report_plots.plot_dev_curves(
                curves, out.with_name(f"{out.stem}_dev_curves.png")
            )
    html_path = Path(cfg.html) if cfg.html else out.with_suffix(".html")
    trees = report_view.write_viewer_pages(report, out) if cfg.trees else []
    report["files"] = {
        "markdown": str(out),
        "html": str(html_path),
        "json": str(out.with_suffix(".json")),
        **{f"png_{k}": str(v) for k, v in images.items()},
        **({"trees": str(report_view.viewer_folder(out))} if trees else {}),
    }
    blocks = report_pages.blocks(report, images)
    out.write_text(report_pages.markdown(blocks, out.parent), encoding="utf-8")
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(report_pages.html(blocks, html_path.parent), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report
