"""`svpo run RECIPE`: base -> annotate -> train (each objective) -> evaluate -> report, R rounds.

Every stage's folder is named by a hash of what it depends on (its settings, the stages it
reads, the library version), and a stage is done when its marker file is there. Re-running
the same command skips done stages and continues an interrupted one (annotate and train resume
their own run folders), so a killed run continues where it stopped; another recipe or other
settings give other hashes, hence other folders, and never reuse a stale result.

Rounds (method.md section 3): round k+1 annotates with round k's svpo policy (at round k+1's
temperature when ``annotate.temperature`` is a list), and trains from it, so its reference is
round k's policy. Seeds repeat the whole pipeline from the same base.

A variant (``train.variants``) trains its objective with its own settings into a folder named
``<variant>-<key>``, the key a hash of its merged settings, and is reported under its name.
"""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from svpo_harness import __version__
from svpo_harness.pipelines.recipes.recipe import (
    LABELS,
    RecipeError,
    train_objective,
    train_settings,
)

MARKER = ".svpo-stage.json"


def stage_key(kind: str, settings: dict[str, Any], inputs: list[str]) -> str:
    blob = json.dumps(
        {"kind": kind, "settings": settings, "inputs": inputs, "version": __version__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def is_done(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def mark_done(folder: Path, record: dict[str, Any]) -> None:
    tmp = folder / (MARKER + ".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(folder / MARKER)


def _say(message: str) -> None:
    print(f"[svpo run {time.strftime('%H:%M:%S')}] {message}", flush=True)


SHIPPED_BASES = {"demo": "arith", "demo-tool": "tool"}  # base name -> the demo's step format


def resolve_base(base: str, out: Path) -> tuple[Path, str]:
    """``demo`` / ``demo-tool``: the demo model shipped in the package (its arith / tool
    variant), copied once into ``out/base-<name>``; else a checkpoint folder."""
    if base in SHIPPED_BASES:
        from svpo_harness.pipelines.demo import copy_shipped_demo_model

        folder = out / f"base-{base}"
        if not (folder / "svpo.json").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            copy_shipped_demo_model(folder, step_format=SHIPPED_BASES[base])
        return folder, f"{base}-shipped"
    path = Path(base).expanduser()
    if not path.exists():
        raise RecipeError(f"base {base!r}: no such checkpoint folder")
    return path.resolve(), str(path.resolve())


def _temperature(annotate: dict[str, Any], round_index: int) -> dict[str, Any]:
    settings = dict(annotate)
    temperature = settings.get("temperature")
    if isinstance(temperature, list):
        settings["temperature"] = temperature[min(round_index, len(temperature) - 1)]
    return settings


def run_annotate_stage(policy: Path, policy_key: str, settings: dict, seed: int, where: Path):
    from svpo_harness.pipelines.annotate import AnnotateConfig, run_annotate

    key = stage_key("annotate", {**settings, "seed": seed}, [policy_key])
    folder = where / f"annotate-{key}"
    if not is_done(folder):
        _say(f"annotate {settings.get('data')} with {policy.name} -> {folder}")
        cfg = AnnotateConfig(model=str(policy), out=str(folder), seed=seed, **settings)
        run_annotate(cfg)
        mark_done(folder, {"stage": "annotate", "settings": settings, "seed": seed})
    return folder, key


def run_train_stage(
    name: str,
    objective: str,
    policy: Path,
    inputs: list[str],
    settings: dict,
    seed: int,
    where: Path,
) -> tuple[Path, str]:
    """``name``'s checkpoint (an objective, or a variant of ``objective``) in ``where``."""
    from svpo_harness.pipelines.train import TrainConfig, run_training

    # the key hashes the merged settings (a variant's lambdas included), not the name: a
    # plain objective keeps the key it always had, and a changed variant gets a new one
    key = stage_key(f"train-{objective}", {**settings, "seed": seed}, inputs)
    folder = where / f"{name}-{key}"
    what = name if name == objective else f"{name} ({objective})"
    if not is_done(folder):
        _say(f"train {what} on {settings['data']} from {policy.name} -> {folder}")
        cfg = TrainConfig(objective=objective, model=str(policy), out=str(folder), seed=seed,
                          **settings)  # fmt: skip
        result = run_training(cfg)
        record = {"stage": f"train {what}", "steps": result.steps, "seconds": result.seconds}
        mark_done(folder, {**record, "last": result.summary.get("last")})
    return folder, key


LR_CHOICES = "lr_choices.json"


def _dev_score(checkpoint: Path) -> float:
    """The dev accuracy of a checkpoint's selected step (svpo.json training.selection)."""
    meta = json.loads((checkpoint / "svpo.json").read_text(encoding="utf-8"))
    return float(meta["training"]["selection"]["chosen_acc"])


def train_with_grid(
    recipe: dict[str, Any],
    name: str,
    round_index: int,
    policy: Path,
    inputs: list[str],
    settings: dict[str, Any],
    seed: int,
    where: Path,
    out: Path,
) -> tuple[Path, str]:
    """The checkpoint of one name of ``train.objectives`` (an objective or a variant); with
    ``train.lr_grid``, the first seed trains at every rate and keeps the one best on dev (ties:
    the earlier rate in the grid), and the other seeds reuse that rate (method.md 7.2). The
    choices are kept in ``out/lr_choices.json``, one per round and name."""
    objective = train_objective(recipe, name)

    def train(stage_settings: dict[str, Any]) -> tuple[Path, str]:
        return run_train_stage(name, objective, policy, inputs, stage_settings, seed, where)

    grid = recipe["train"].get("lr_grid")
    if not grid or objective == "value":  # a frozen policy: no policy rate to choose
        return train(settings)
    file = out / LR_CHOICES
    choices = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    choice = f"round{round_index + 1}/{name}"
    # a choice made for other settings (another recipe in the same folder) is not reused
    made_for = stage_key("lr-choice", {k: recipe[k] for k in ("base", "annotate", "train")}, [])
    if choices.get(choice, {}).get("made_for") == made_for:
        return train({**settings, "lr": choices[choice]["lr"]})
    runs = []
    for lr in grid:
        path, key = train({**settings, "lr": lr})
        runs.append((_dev_score(path), lr, path, key))
    best = max(runs, key=lambda run: run[0])  # max keeps the first of equal scores
    choices[choice] = {
        "lr": best[1],
        "chosen_on_seed": seed,
        "made_for": made_for,
        "dev": {str(lr): score for score, lr, _, _ in runs},
        "metric": json.loads((best[2] / "svpo.json").read_text())["training"]["selection"][
            "metric"
        ],
    }
    tmp = file.with_suffix(".tmp")
    # not sorted: "dev" lists the rates in grid order, the order ties are broken in
    tmp.write_text(json.dumps(choices, indent=2) + "\n", encoding="utf-8")
    tmp.replace(file)
    _say(f"{choice}: lr {best[1]} chosen on seed {seed}'s dev ({choices[choice]['dev']})")
    return best[2], best[3]


def run_recipe(recipe: dict[str, Any], out: str | Path) -> dict[str, Any]:
    """Run ``recipe`` (from ``load_recipe``) into ``out``; returns what was evaluated."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.resolved.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    base, base_key = resolve_base(recipe["base"], out)
    checkpoints: list[dict[str, Any]] = [{"label": "base", "path": base, "key": base_key}]
    for entry in recipe.get("compare", []):
        path, key = resolve_base(entry["base"], out)
        checkpoints.append({"label": entry["label"], "path": path, "key": key})
    names = recipe["train"]["objectives"]  # objectives and variants
    for seed in recipe["seeds"]:
        policy, policy_key = base, base_key
        for round_index in range(int(recipe["rounds"])):
            where = out / f"seed{seed}" / f"round{round_index + 1}"
            where.mkdir(parents=True, exist_ok=True)
            annotate = _temperature(recipe["annotate"], round_index)
            ann, ann_key = run_annotate_stage(policy, policy_key, annotate, seed, where)
            trained: dict[str, tuple[Path, str]] = {}
            for name in names:
                settings = train_settings(recipe, name)
                inputs = [policy_key]
                if train_objective(recipe, name) == "sft":
                    settings.setdefault("data", "arith")  # more of the base's own SFT data
                else:
                    settings["data"], inputs = str(ann), [policy_key, ann_key]
                trained[name] = train_with_grid(
                    recipe, name, round_index, policy, inputs, settings, seed, where, out
                )
            for name, (path, key) in trained.items():
                label = LABELS.get(name, name)
                if int(recipe["rounds"]) > 1:
                    label += f" r{round_index + 1}"
                if len(recipe["seeds"]) > 1:
                    label += f" s{seed}"
                checkpoints.append({"label": label, "path": path, "key": key})
            if "svpo" in trained:  # round k+1 starts from round k's svpo policy
                policy, policy_key = trained["svpo"]
    evaluations = evaluate_all(recipe, checkpoints, out)
    choices = out / LR_CHOICES
    summary = {
        "out": str(out),
        "evaluations": evaluations,
        "lr_choices": json.loads(choices.read_text()) if choices.is_file() else None,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    write_report(recipe, evaluations, out)
    return summary


def _resolve_budget(decoding: dict[str, Any], done: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``num_samples: match:NAME``: as many samples as give NAME's generated tokens per question
    (this checkpoint's own runs: NAME's tokens over greedy's), so maj@k runs at NAME's budget."""
    args = {k: v for k, v in decoding.items() if k != "name"}
    wanted = args.get("num_samples")
    if isinstance(wanted, str) and wanted.startswith("match:"):
        target = wanted.split(":", 1)[1]
        if target not in done or "greedy" not in done:
            raise RecipeError(
                f"decoding {decoding['name']}: num_samples {wanted} needs 'greedy' and "
                f"{target!r} evaluated first (list them before it)"
            )
        ratio = done[target]["tokens_per_question"] / max(
            1e-9, done["greedy"]["tokens_per_question"]
        )
        args["num_samples"] = max(1, round(ratio))
    return args


def _eval_folder(out: Path, label: str, decoding: str, key: str) -> Path:
    """``out/eval/LABEL-DECODING-KEY``, or the finished folder of the same key under another
    label: the key already names the checkpoint and the settings, and a label gains " sN" when
    seeds are added to a run (``--set seeds=[0]``, then ``[0,1,2]``), which must not redo the
    evaluations that seed 0 has."""
    folder = out / "eval" / f"{label.replace(' ', '-')}-{decoding}-{key}"
    if not is_done(folder):
        done = sorted(
            f for f in (out / "eval").glob(f"*-{glob.escape(decoding)}-{key}") if is_done(f)
        )
        if done:
            return done[0]
    return folder


def evaluate_all(
    recipe: dict[str, Any], checkpoints: list[dict[str, Any]], out: Path
) -> list[dict[str, Any]]:
    from svpo_harness.pipelines.evaluate import evaluate_checkpoint

    spec = recipe["evaluate"]
    rows = []
    for ckpt in checkpoints:
        done: dict[str, dict[str, Any]] = {}
        for decoding in spec["decodings"]:
            args = _resolve_budget(decoding, done)
            settings = {"task": spec["task"], "limit": spec["limit"], "model_args": args}
            key = stage_key("evaluate", settings, [ckpt["key"]])
            folder = _eval_folder(out, ckpt["label"], decoding["name"], key)
            summary_file = folder / "summary.json"
            if not is_done(folder):
                _say(f"evaluate {ckpt['label']} x {decoding['name']} on {spec['task']}")
                numbers = evaluate_checkpoint(
                    ckpt["path"], spec["task"], args, folder, limit=spec["limit"],
                    batch_size=spec["batch_size"], device=spec["device"],
                )  # fmt: skip
                record = {"checkpoint": ckpt["label"], "path": str(ckpt["path"]),
                          "decoding": decoding["name"], "model_args": args, **numbers}  # fmt: skip
                summary_file.write_text(json.dumps(record, indent=2, default=str) + "\n")
                mark_done(folder, {"stage": "evaluate"})
            record = json.loads(summary_file.read_text(encoding="utf-8"))
            record["checkpoint"] = ckpt["label"]  # a run made with fewer seeds named it shorter
            record["folder"] = str(folder)
            done[decoding["name"]] = record
            rows.append(record)
    return rows


def write_report(recipe: dict[str, Any], evaluations: list[dict[str, Any]], out: Path) -> None:
    """``summary.md`` (one line per evaluation) and `svpo report`'s report.md / report.html /
    PNGs over every evaluation's lm-eval output, rows named checkpoint + decoding."""
    lines = [
        f"# {recipe['name']}: {recipe.get('description', '')}".rstrip(": "),
        "",
        f"Task `{recipe['evaluate']['task']}`, limit {recipe['evaluate']['limit']}.",
        "",
        "| checkpoint | decoding | acc | ± | tokens / question | s / question |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in evaluations:
        lines.append(
            f"| {row['checkpoint']} | {row['decoding']} | {row['acc']:.3f} | "
            f"{row.get('acc_stderr') or 0:.3f} | {row['tokens_per_question']:.1f} | "
            f"{row['seconds_per_question']:.3f} |"
        )
    choices = out / LR_CHOICES
    if choices.is_file():
        lines += [
            "",
            "Learning rates chosen on the first seed's dev split, reused for the others:",
            "",
        ]
        for name, choice in sorted(json.loads(choices.read_text(encoding="utf-8")).items()):
            dev = ", ".join(f"{lr}: {acc:.3f}" for lr, acc in choice["dev"].items())
            lines.append(f"- {name}: lr {choice['lr']} ({choice['metric']} on dev: {dev})")
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    from svpo_harness.pipelines.report import ReportConfig, run_report

    results = [f"{row['checkpoint']} {row['decoding']}={row['folder']}" for row in evaluations]
    reference = recipe["report"].get("reference")
    run_report(ReportConfig(results=results, out=str(out / "report.md"), reference=reference))
    _say(f"report: {out / 'report.md'}, {out / 'report.html'}")
