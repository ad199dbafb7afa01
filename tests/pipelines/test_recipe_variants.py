"""Recipe variants (`train.variants`): the ablation rows, each an objective with its own
settings, trained from the same trees, named by the variant (issue 26)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from svpo_harness.pipelines.recipes.recipe import (
    RecipeError,
    load_recipe,
    train_objective,
    train_settings,
)

ABLATIONS = {
    "objectives": ["svpo", "svpo-no-rank", "svpo-no-mse", "step-dpo", "value-only", "rft"],
    "common": {"lr": 1.0e-4, "beta": 0.1, "select_on": "arith:dev"},
    "variants": {
        "svpo-no-rank": {"objective": "svpo", "lambda_rank": 0.0},
        "svpo-no-mse": {"objective": "svpo", "lambda_mse": 0.0, "lr": 2.0e-4},
        "step-dpo": {"objective": "svpo", "lambda_rank": 0.0, "lambda_mse": 0.0, "beta": 0.2},
        "value-only": {"objective": "value"},
        "never-used": {"objective": "dpo"},  # defined, not listed: fine
    },
    "svpo-no-mse": {"lr": 3.0e-4},  # train.<name> wins over the variant
    "step-dpo": {"max_steps": 7},
}


def _load(tmp_path: Path, train: dict, **top) -> dict:
    file = tmp_path / "recipe.yaml"
    file.write_text(yaml.safe_dump({"train": train, **top}))
    return load_recipe(str(file))


def test_variants_resolve_and_merge_common_then_variant_then_name(tmp_path):
    recipe = _load(tmp_path, ABLATIONS)
    objectives = {n: train_objective(recipe, n) for n in recipe["train"]["objectives"]}
    assert objectives == {
        "svpo": "svpo", "svpo-no-rank": "svpo", "svpo-no-mse": "svpo", "step-dpo": "svpo",
        "value-only": "value", "rft": "rft",
    }  # fmt: skip
    assert train_settings(recipe, "svpo") == ABLATIONS["common"]
    assert train_settings(recipe, "svpo-no-rank") == {**ABLATIONS["common"], "lambda_rank": 0.0}
    no_mse = train_settings(recipe, "svpo-no-mse")
    assert no_mse["lr"] == 3.0e-4 and no_mse["lambda_mse"] == 0.0 and "objective" not in no_mse
    step = train_settings(recipe, "step-dpo")
    assert step["beta"] == 0.2 and step["max_steps"] == 7 and step["lambda_rank"] == 0.0
    assert train_settings(recipe, "value-only") == ABLATIONS["common"]
    # --set reaches a variant's settings by its dotted name
    over = load_recipe(str(tmp_path / "recipe.yaml"), ["train.variants.step-dpo.beta=0.3"])
    assert train_settings(over, "step-dpo")["beta"] == 0.3
    # a recipe without variants resolves as before
    assert _load(tmp_path, {"objectives": ["svpo"]})["train"]["variants"] == {}


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"variants": {"x": {"lambda_rank": 0.0}}, "objectives": ["x"]},
         r"train\.variants\.x needs the key objective"),
        ({"variants": {"x": {"objective": "ppo"}}, "objectives": ["x"]},
         r"train\.variants\.x\.objective: unknown objective 'ppo'"),
        ({"variants": {"x": {"objective": "svpo", "lamda_rank": 0}}, "objectives": ["x"]},
         r"unknown key\(s\) in train\.variants\.x: lamda_rank"),
        ({"variants": {"svpo": {"objective": "svpo", "lambda_rank": 0.0}}},
         r"train\.variants\.svpo: the name 'svpo' is taken"),
        ({"variants": {"base": {"objective": "svpo"}}}, r"train\.variants\.base: the name"),
        ({"variants": {"common": {"objective": "svpo"}}}, r"train\.variants\.common: the name"),
        ({"variants": {"a b": {"objective": "svpo"}}}, r"train\.variants\.a b: a name is"),
        ({"variants": ["x"]}, r"train\.variants must be a mapping"),
        ({"objectives": ["nope"], "variants": {"x": {"objective": "svpo"}}},
         r"unknown objective 'nope' \(objectives: .*; variants: x\)"),
        ({"objectives": ["svpo", "svpo"]}, r"lists a name twice"),
        ({"objectives": ["svpo"], "x": {"lr": 1.0}}, r"unknown key in train: x"),
        ({"objectives": ["x"], "variants": {"x": {"objective": "svpo"}}, "x": {"lamda": 1}},
         r"unknown key\(s\) in train\.x: lamda"),
        ({"objectives": ["v"], "variants": {"v": {"objective": "value", "lambda_rank": 0.0,
                                                  "lambda_mse": 0.0}}},
         r"train\.objectives: v: .*has nothing to train"),
        ({"objectives": ["v"], "common": {"full": True}, "variants": {"v": {"objective": "value"}}},
         r"train\.objectives: v: .*leave out full"),
    ],
)  # fmt: skip
def test_bad_variants_are_refused_naming_the_key(tmp_path, train, message):
    with pytest.raises(RecipeError, match=message):
        _load(tmp_path, train)


def test_a_variant_label_cannot_take_a_compare_label(tmp_path):
    with pytest.raises(RecipeError, match=r"train\.variants\.base-tool: the name"):
        _load(
            tmp_path,
            {"variants": {"base-tool": {"objective": "svpo"}}},
            compare=[{"label": "base-tool", "base": "demo-tool"}],
        )


def test_auto_selection_is_greedy_only_where_no_value_term_is_weighted(tmp_path):
    from svpo_harness.pipelines.train.train_config import TrainConfig
    from svpo_harness.pipelines.train.train_pref import trains_value_head
    from svpo_harness.pipelines.train.train_select import resolve_metric

    recipe = _load(tmp_path, ABLATIONS)
    metrics = {}
    for name in recipe["train"]["objectives"]:
        cfg = TrainConfig(
            objective=train_objective(recipe, name), model="m", out="o", data="d",
            **train_settings(recipe, name),
        )  # fmt: skip
        metrics[name] = resolve_metric(cfg.select_metric, trains_value_head(cfg))
    assert metrics == {
        "svpo": "sbs", "svpo-no-rank": "sbs", "svpo-no-mse": "sbs", "step-dpo": "greedy",
        "value-only": "sbs", "rft": "greedy",
    }  # fmt: skip


def test_each_variant_gets_its_own_learning_rate_choice(tmp_path, monkeypatch):
    """lr_grid per name: every variant trains at each rate; its choice is kept under its name,
    in its own folder, with its own objective."""
    from svpo_harness.pipelines.recipes import recipe_run

    recipe = _load(tmp_path, {**ABLATIONS, "lr_grid": [1.0e-4, 1.0e-3]})
    calls = []

    def fake_stage(name, objective, policy, inputs, settings, seed, where):
        calls.append((name, objective, settings["lr"]))
        folder = where / f"{name}-{settings['lr']}"
        folder.mkdir(parents=True, exist_ok=True)
        selection = {"chosen_acc": 0.5 if name == "step-dpo" and settings["lr"] > 5e-4 else 0.2}
        meta = {"training": {"selection": {**selection, "metric": "greedy"}}}
        (folder / "svpo.json").write_text(json.dumps(meta))
        return folder, f"key-{name}-{settings['lr']}"

    monkeypatch.setattr(recipe_run, "run_train_stage", fake_stage)
    for name in ("step-dpo", "svpo-no-rank"):
        settings = train_settings(recipe, name)
        recipe_run.train_with_grid(recipe, name, 0, tmp_path, [], settings, 0, tmp_path, tmp_path)
    assert calls == [
        ("step-dpo", "svpo", 1.0e-4), ("step-dpo", "svpo", 1.0e-3),
        ("svpo-no-rank", "svpo", 1.0e-4), ("svpo-no-rank", "svpo", 1.0e-3),
    ]  # fmt: skip
    choices = json.loads((tmp_path / "lr_choices.json").read_text())
    assert choices["round1/step-dpo"]["lr"] == 1.0e-3
    assert choices["round1/svpo-no-rank"]["lr"] == 1.0e-4  # a tie: the earlier rate
    calls.clear()  # another seed reuses each name's own choice
    recipe_run.train_with_grid(
        recipe, "step-dpo", 0, tmp_path, [], train_settings(recipe, "step-dpo"), 1, tmp_path,
        tmp_path,
    )  # fmt: skip
    assert calls == [("step-dpo", "svpo", 1.0e-3)]


def test_a_frozen_policy_trains_once_whatever_the_grid(tmp_path, monkeypatch):
    """value-only trains no policy weight: the grid's policy rates would give the same run
    twice, so it trains once, at its own settings, and records no rate choice."""
    from svpo_harness.pipelines.recipes import recipe_run

    recipe = _load(tmp_path, {**ABLATIONS, "lr_grid": [1.0e-4, 1.0e-3]})
    calls = []

    def fake_stage(name, objective, policy, inputs, settings, seed, where):
        calls.append((name, objective, settings.get("lr")))
        return where, "key"

    monkeypatch.setattr(recipe_run, "run_train_stage", fake_stage)
    settings = train_settings(recipe, "value-only")
    recipe_run.train_with_grid(recipe, "value-only", 0, tmp_path, [], settings, 0, tmp_path,
                               tmp_path)  # fmt: skip
    assert calls == [("value-only", "value", settings.get("lr"))]
    assert not (tmp_path / "lr_choices.json").exists()


TINY = [
    # recipe mechanics on svpo_arith (tiny annotations of it always hold pairs)
    "annotate.data=arith:train", "train.common.select_on=arith:dev", "evaluate.task=svpo_arith",
    "annotate.limit=6", "annotate.simulations=6", "annotate.children=3",
    "train.objectives=[step-dpo, svpo-no-rank, value-only]",
    "train.variants={step-dpo: {objective: svpo, lambda_rank: 0.0, lambda_mse: 0.0}, "
    "svpo-no-rank: {objective: svpo, lambda_rank: 0.0}, value-only: {objective: value}}",
    "train.common.max_steps=3", "train.common.eval_every=2", "train.common.eval_limit=4",
    # selection on dev for step-dpo only (greedy, cheap): a head kept at step 0 is untrained
    "train.svpo-no-rank.select_on=null", "train.value-only.select_on=null",
    "evaluate.limit=4", "evaluate.batch_size=4",
    "evaluate.decodings=[{name: greedy, decoding: greedy}, "
    "{name: sbs, decoding: sbs, beam_width: 2, samples_per_step: 2, temperature: 0.6}]",
]  # fmt: skip


@pytest.mark.slow
def test_a_tiny_recipe_with_variants_trains_and_labels_them(tmp_path, monkeypatch):
    import svpo_harness.pipelines.annotate.annotate_run as annotate_run
    import svpo_harness.pipelines.train.train as train
    from svpo_harness.pipelines.evaluate import lm_eval_run
    from svpo_harness.pipelines.recipes.recipe_run import run_recipe

    out = tmp_path / "run"
    summary = run_recipe(load_recipe("arith-quick", TINY), out)
    rows = summary["evaluations"]
    assert list(dict.fromkeys(r["checkpoint"] for r in rows)) == [
        "base", "step-dpo", "svpo-no-rank", "value-only",
    ]  # fmt: skip
    paths = {r["checkpoint"]: Path(r["path"]) for r in rows}
    assert all(paths[name].name.startswith(f"{name}-") for name in paths if name != "base")
    training = {
        name: json.loads((paths[name] / "svpo.json").read_text())["training"]
        for name in ("step-dpo", "svpo-no-rank", "value-only")
    }
    step_dpo, no_rank, value = (training[n] for n in ("step-dpo", "svpo-no-rank", "value-only"))
    assert step_dpo["objective"] == "svpo" and step_dpo["config"]["lambda_rank"] == 0.0
    assert step_dpo["config"]["lambda_mse"] == 0.0
    assert step_dpo["value_head_trained"] is False  # no value term: greedy selection
    assert step_dpo["selection"]["metric"] == "greedy"
    assert no_rank["config"]["lambda_rank"] == 0.0 and no_rank["config"]["lambda_mse"] == 0.1
    assert no_rank["value_head_trained"] is True  # the Q regression trained it
    assert value["objective"] == "value" and value["value_head_trained"] is True
    # the report labels step-dpo's SBS row (its head was never trained), not the others'
    report = (out / "report.md").read_text()
    assert "step-dpo sbs (untrained head)" in report
    for name in ("svpo-no-rank", "value-only"):
        assert f"[{name} sbs](" in report and f"{name} sbs (untrained head)" not in report
    assert "| step-dpo | sbs |" in (out / "summary.md").read_text()

    # a changed variant setting reruns that variant's stages only
    counts = {"annotate": 0, "train": 0, "eval": 0}

    def counting(name, real):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        annotate_run, "run_annotate", counting("annotate", annotate_run.run_annotate)
    )
    monkeypatch.setattr(train, "run_training", counting("train", train.run_training))
    real_eval = lm_eval_run.evaluate_checkpoint
    monkeypatch.setattr(lm_eval_run, "evaluate_checkpoint", counting("eval", real_eval))
    run_recipe(load_recipe("arith-quick", TINY), out)
    assert counts == {"annotate": 0, "train": 0, "eval": 0}
    changed = load_recipe("arith-quick", [*TINY, "train.variants.step-dpo.beta=0.2"])
    again = run_recipe(changed, out)
    assert counts == {"annotate": 0, "train": 1, "eval": 2}  # step-dpo x (greedy, sbs)
    new_path = next(Path(r["path"]) for r in again["evaluations"] if r["checkpoint"] == "step-dpo")
    assert new_path != paths["step-dpo"] and new_path.name.startswith("step-dpo-")
    assert json.loads((new_path / "svpo.json").read_text())["training"]["config"]["beta"] == 0.2
