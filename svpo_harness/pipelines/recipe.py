"""Recipes for `svpo run`: one YAML file runs the method end to end, read top to bottom.

A recipe names the base policy, how to annotate it, which objectives to train from the same
trees, how to evaluate every checkpoint with every decoding, and how many rounds and seeds.
Keys of ``annotate`` are ``svpo annotate``'s settings (``AnnotateConfig``), keys of
``train.common`` / ``train.<objective>`` are ``svpo train``'s (``TrainConfig``), keys of a
decoding are ``--model svpo`` model_args. Unknown keys are refused naming them, before any
work starts. ``--set a.b=c`` on the command line overrides the key of the same dotted name.

Built-in recipes live in ``svpo_harness/recipes/`` (``svpo run arith-quick``).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
TOP_KEYS = ("name", "description", "base", "compare", "seeds", "rounds", "annotate", "train",
            "evaluate", "report")  # fmt: skip
EVALUATE_KEYS = ("task", "limit", "batch_size", "device", "decodings", "budget_from")


class RecipeError(ValueError):
    """A recipe that cannot run; the message names the file and the key."""


def builtin_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = RECIPES_DIR / f"{name_or_path}.yaml"
    if builtin.is_file():
        return builtin
    raise RecipeError(
        f"no recipe file {name_or_path!r} and no built-in recipe of that name "
        f"(built-in: {', '.join(builtin_recipes())})"
    )


def _parse_value(text: str) -> Any:
    return yaml.safe_load(text) if text.strip() else ""


def apply_overrides(recipe: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["train.common.max_steps=20", "seeds=[0,1]"]`` -> a new recipe with those keys set."""
    out = copy.deepcopy(recipe)
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"--set {item!r}: expected KEY=VALUE (dotted key)")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part, {}), dict):
                raise RecipeError(f"--set {key}: {part!r} is not a section")
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_value(value)
    return out


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def check_recipe(recipe: dict[str, Any], source: str) -> dict[str, Any]:
    """Fill defaults and refuse unknown keys; returns the resolved recipe (plain data)."""
    from svpo_harness.pipelines.annotate_run import AnnotateConfig
    from svpo_harness.pipelines.train_config import OBJECTIVES, TrainConfig

    def refuse(where: str, keys: set[str], allowed: set[str]) -> None:
        unknown = sorted(keys - allowed)
        if unknown:
            raise RecipeError(f"{source}: unknown key(s) in {where}: {', '.join(unknown)}")

    refuse("the recipe", set(recipe), set(TOP_KEYS))
    r = copy.deepcopy(recipe)
    r.setdefault("name", Path(source).stem)
    r.setdefault("description", "")
    r.setdefault("base", "demo")
    r.setdefault("seeds", [0])
    r.setdefault("rounds", 1)
    r["compare"] = _check_compare(r.get("compare") or [], source)
    if not isinstance(r["seeds"], list) or not r["seeds"]:
        raise RecipeError(f"{source}: seeds must be a non-empty list of integers")
    if int(r["rounds"]) < 1:
        raise RecipeError(f"{source}: rounds must be >= 1")
    annotate = r.setdefault("annotate", {})
    refuse("annotate", set(annotate), _fields(AnnotateConfig) - {"model", "out", "seed"})
    annotate.setdefault("data", "arith:train")
    train = r.setdefault("train", {})
    train.setdefault("objectives", ["svpo"])
    train.setdefault("common", {})
    train["lr_grid"] = _check_lr_grid(train.get("lr_grid"), source)
    for objective in train["objectives"]:
        if objective not in OBJECTIVES:
            raise RecipeError(f"{source}: train.objectives: unknown objective {objective!r}")
    allowed = _fields(TrainConfig) - {"objective", "model", "out", "seed"}
    refuse("train.common", set(train["common"]), allowed)
    for key in set(train) - {"objectives", "common", "lr_grid"}:
        if key not in OBJECTIVES:
            raise RecipeError(f"{source}: unknown key in train: {key}")
        refuse(f"train.{key}", set(train[key]), allowed)
    if train["lr_grid"] and not all(
        train_settings(r, objective).get("select_on") for objective in train["objectives"]
    ):
        raise RecipeError(
            f"{source}: train.lr_grid chooses rates on dev: set train.common.select_on"
        )
    evaluate = r.setdefault("evaluate", {})
    refuse("evaluate", set(evaluate), set(EVALUATE_KEYS))
    evaluate.setdefault("task", "svpo_arith")
    evaluate.setdefault("limit", None)
    evaluate.setdefault("batch_size", 8)
    evaluate.setdefault("device", "cpu")
    evaluate.setdefault("decodings", [{"name": "greedy", "decoding": "greedy"}])
    names = [d.get("name") for d in evaluate["decodings"]]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise RecipeError(f"{source}: every evaluate.decodings entry needs a unique name")
    r.setdefault("report", {})
    refuse("report", set(r["report"]), {"reference"})
    return r


def _check_lr_grid(grid: Any, source: str) -> list[float] | None:
    """``train.lr_grid``: every objective trains at each rate on the first seed; the rate
    whose selected checkpoint is best on dev is reused for the other seeds (method.md 7.2)."""
    if grid is None:
        return None
    if not isinstance(grid, list) or not grid:
        raise RecipeError(f"{source}: train.lr_grid must be a non-empty list of learning rates")
    try:
        rates = [float(x) for x in grid]
    except (TypeError, ValueError):
        raise RecipeError(f"{source}: train.lr_grid must hold numbers, got {grid}") from None
    if any(x <= 0 for x in rates) or len(set(rates)) != len(rates):
        raise RecipeError(f"{source}: train.lr_grid needs distinct rates > 0, got {grid}")
    return rates


def _check_compare(entries: Any, source: str) -> list[dict[str, str]]:
    """``compare``: more checkpoints evaluated with every decoding, not trained (e.g. the tool
    variant of the demo model); each ``{label, base}``, base as in ``base``."""
    if not isinstance(entries, list):
        raise RecipeError(f"{source}: compare must be a list of {{label, base}} entries")
    labels = {"base"}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"label", "base"}:
            raise RecipeError(f"{source}: compare[{i}] needs exactly the keys label and base")
        if entry["label"] in labels:
            raise RecipeError(f"{source}: compare[{i}]: label {entry['label']!r} is taken")
        labels.add(entry["label"])
    return [dict(entry) for entry in entries]


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> dict[str, Any]:
    path = recipe_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe is a mapping of sections")
    return check_recipe(apply_overrides(data, overrides or []), str(path))


def train_settings(recipe: dict[str, Any], objective: str) -> dict[str, Any]:
    """``train.common`` with ``train.<objective>`` on top."""
    return {**recipe["train"]["common"], **recipe["train"].get(objective, {})}
