"""Recipes for `svpo run`: one YAML file runs the method end to end, read top to bottom.

A recipe names the base policy, how to annotate it, which objectives to train from the same
trees, how to evaluate every checkpoint with every decoding, and how many rounds and seeds.
Keys of ``annotate`` are ``svpo annotate``'s settings (``AnnotateConfig``), keys of
``train.common`` / ``train.<name>`` are ``svpo train``'s (``TrainConfig``), keys of a
decoding are ``--model svpo`` model_args. ``train.variants`` names settings of an objective
(``svpo-no-rank: {objective: svpo, lambda_rank: 0.0}``, the ablations); a name in
``train.objectives`` is an objective or a variant, and is its run's folder and row label.
Unknown keys are refused naming them, before any work starts. ``--set a.b=c`` on the command
line overrides the key of the same dotted name.

Built-in recipes live in ``svpo_harness/recipes/`` (``svpo run arith-quick``).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"  # svpo_harness/recipes/
TOP_KEYS = ("name", "description", "base", "compare", "seeds", "rounds", "annotate", "train",
            "evaluate", "report")  # fmt: skip
TRAIN_KEYS = ("objectives", "common", "lr_grid", "variants")
# The teacher-data SFT row is named for what it is (method.md 7.2): more of the base's own
# demonstrations, not the trees; RFT is the SFT baseline that uses the trees.
LABELS = {"sft": "sft-teacher"}
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a folder name and a row label
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
    from svpo_harness.pipelines.annotate import AnnotateConfig

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
    _check_train(r, source)
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


def _check_train(r: dict[str, Any], source: str) -> None:
    """``train``: objectives (objective or variant names), common, variants, per-name
    overrides, lr_grid; each name's merged settings are checked as ``svpo train`` would."""
    from svpo_harness.pipelines.train import OBJECTIVES, TrainConfig

    train = r.setdefault("train", {})
    if not isinstance(train, dict):
        raise RecipeError(f"{source}: train must be a mapping")
    train.setdefault("objectives", ["svpo"])
    train.setdefault("common", {})
    train["lr_grid"] = _check_lr_grid(train.get("lr_grid"), source)
    allowed = _fields(TrainConfig) - {"objective", "model", "out", "seed"}
    train["variants"] = _check_variants(train.get("variants"), source, allowed, r["compare"])
    names = train["objectives"]
    if not isinstance(names, list) or not names:
        raise RecipeError(f"{source}: train.objectives must be a non-empty list")
    for name in names:
        if name not in OBJECTIVES and name not in train["variants"]:
            raise RecipeError(
                f"{source}: train.objectives: unknown objective {name!r} (objectives: "
                f"{', '.join(OBJECTIVES)}; variants: {', '.join(train['variants']) or 'none'})"
            )
    if len(set(names)) != len(names):
        raise RecipeError(f"{source}: train.objectives lists a name twice: {names}")
    _refuse_keys(source, "train.common", train["common"], allowed)
    for key in set(train) - set(TRAIN_KEYS):
        if key not in OBJECTIVES and key not in train["variants"]:
            raise RecipeError(f"{source}: unknown key in train: {key}")
        _refuse_keys(source, f"train.{key}", train[key], allowed)
    for name in names:  # svpo train's own checks, before any work starts
        objective = train_objective(r, name)
        settings = train_settings(r, name)
        if objective != "sft":
            settings["data"] = "<annotation>"
        try:
            TrainConfig(objective=objective, model="<base>", out="<out>", **settings)
        except (TypeError, ValueError) as err:
            raise RecipeError(f"{source}: train.objectives: {name}: {err}") from None
    if train["lr_grid"] and not all(train_settings(r, name).get("select_on") for name in names):
        raise RecipeError(
            f"{source}: train.lr_grid chooses rates on dev: set train.common.select_on"
        )


def _refuse_keys(source: str, where: str, section: Any, allowed: set[str]) -> None:
    if not isinstance(section, dict):
        raise RecipeError(f"{source}: {where} must be a mapping of training settings")
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise RecipeError(f"{source}: unknown key(s) in {where}: {', '.join(unknown)}")


def _check_variants(
    variants: Any, source: str, allowed: set[str], compare: list[dict[str, str]]
) -> dict[str, dict[str, Any]]:
    """``train.variants``: ``{name: {objective: OBJ, setting: value, ...}}``; a name is a folder
    and a row label, so it cannot be an objective's, a train key, or a label already taken."""
    from svpo_harness.pipelines.train import OBJECTIVES

    if variants is None:
        return {}
    if not isinstance(variants, dict):
        raise RecipeError(f"{source}: train.variants must be a mapping of name: settings")
    taken = {"base", *LABELS.values(), *(entry["label"] for entry in compare)}
    out = {}
    for name, spec in variants.items():
        where = f"train.variants.{name}"
        if not isinstance(name, str) or not VARIANT_NAME.fullmatch(name):
            raise RecipeError(f"{source}: {where}: a name is letters, digits, '.', '_', '-'")
        if name in OBJECTIVES or name in TRAIN_KEYS or name in taken:
            raise RecipeError(
                f"{source}: {where}: the name {name!r} is taken (an objective, a train key or "
                "a row label): name the variant otherwise"
            )
        if not isinstance(spec, dict) or "objective" not in spec:
            raise RecipeError(f"{source}: {where} needs the key objective (one of the objectives)")
        if spec["objective"] not in OBJECTIVES:
            raise RecipeError(
                f"{source}: {where}.objective: unknown objective {spec['objective']!r} "
                f"(one of {', '.join(OBJECTIVES)})"
            )
        _refuse_keys(source, where, {k: v for k, v in spec.items() if k != "objective"}, allowed)
        out[name] = dict(spec)
    return out


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


def train_objective(recipe: dict[str, Any], name: str) -> str:
    """The objective a name of ``train.objectives`` trains: a variant's, else the name."""
    variant = recipe["train"].get("variants", {}).get(name)
    return variant["objective"] if variant else name


def train_settings(recipe: dict[str, Any], name: str) -> dict[str, Any]:
    """``train.common``, then the variant's settings (for a variant name), then
    ``train.<name>``: later ones win."""
    train = recipe["train"]
    variant = {k: v for k, v in train.get("variants", {}).get(name, {}).items() if k != "objective"}
    return {**train["common"], **variant, **train.get(name, {})}
