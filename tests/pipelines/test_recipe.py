"""`svpo run RECIPE`: recipes are checked before work starts; stages are cached and resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from svpo_harness.pipelines.recipes.recipe import (
    RecipeError,
    apply_overrides,
    builtin_recipes,
    load_recipe,
    train_settings,
)


def test_builtin_recipes_load_and_resolve_defaults():
    assert {
        "arith-quick",
        "arith-full",
        "arith-ablations",
        "arith-tool-quick",
        "gsm8k-math-7b",
    } <= set(builtin_recipes())
    for name in builtin_recipes():
        recipe = load_recipe(name)
        assert recipe["name"] == name and recipe["seeds"] and recipe["train"]["objectives"]
    quick = load_recipe("arith-quick")
    assert quick["train"]["objectives"] == ["rft", "dpo", "alphamath", "svpo"]
    # method.md 7.2: every objective selected on dev; section 3: 0.6 in round 1, 1.0 later
    full = load_recipe("arith-full")
    for recipe in (quick, full):
        assert all(
            train_settings(recipe, o)["select_on"] == "arith_hard:dev"
            for o in recipe["train"]["objectives"]
        )
    assert full["annotate"]["temperature"] == [0.6, 1.0] and full["train"]["lr_grid"]
    assert quick["annotate"]["temperature"] == 0.6
    for recipe in (quick, full):  # issue 26: on the hard split, annotation to test
        assert recipe["annotate"]["data"] == "arith_hard:train"
        assert recipe["evaluate"]["task"] == "svpo_arith_hard"


def test_overrides_use_the_recipe_key_names():
    recipe = {"train": {"common": {"max_steps": 80}}, "seeds": [0]}
    out = apply_overrides(recipe, ["train.common.max_steps=5", "seeds=[1, 2]", "evaluate.limit=7"])
    assert out["train"]["common"]["max_steps"] == 5 and out["seeds"] == [1, 2]
    assert out["evaluate"]["limit"] == 7 and recipe["train"]["common"]["max_steps"] == 80
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        apply_overrides(recipe, ["train.common.max_steps"])


def test_unknown_keys_are_refused_naming_them(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"train": {"common": {"max_stpes": 3}}}))
    with pytest.raises(
        RecipeError, match=r"bad\.yaml: unknown key\(s\) in train.common: max_stpes"
    ):
        load_recipe(str(bad))
    bad.write_text(yaml.safe_dump({"annotate": {"simulation": 3}}))
    with pytest.raises(RecipeError, match="annotate: simulation"):
        load_recipe(str(bad))
    bad.write_text(yaml.safe_dump({"train": {"objectives": ["ppo"]}}))
    with pytest.raises(RecipeError, match="unknown objective 'ppo'"):
        load_recipe(str(bad))
    with pytest.raises(RecipeError, match="no built-in recipe"):
        load_recipe("no-such-recipe")


def test_compare_entries_are_checked(tmp_path):
    full = load_recipe("arith-full")
    assert full["compare"] == [{"label": "base-tool", "base": "demo-tool"}]
    assert load_recipe("arith-quick")["compare"] == []
    bad = tmp_path / "bad.yaml"
    for compare, message in (
        ([{"label": "x"}], r"compare\[0\] needs exactly the keys label and base"),
        ([{"label": "base", "base": "demo-tool"}], "label 'base' is taken"),
        ({"label": "x", "base": "y"}, "compare must be a list"),
    ):
        bad.write_text(yaml.safe_dump({"compare": compare}))
        with pytest.raises(RecipeError, match=message):
            load_recipe(str(bad))


def test_shipped_bases_resolve_to_their_step_formats(tmp_path):
    from svpo_harness.pipelines.recipes.recipe_run import resolve_base

    for base, fmt in (("demo", "arith"), ("demo-tool", "tool")):
        folder, key = resolve_base(base, tmp_path)
        assert folder == tmp_path / f"base-{base}" and key == f"{base}-shipped"
        assert json.loads((folder / "svpo.json").read_text())["step_format"]["name"] == fmt
    with pytest.raises(RecipeError, match="no such checkpoint folder"):
        resolve_base(str(tmp_path / "missing"), tmp_path)


TINY = [
    # recipe mechanics on svpo_arith (tiny annotations of it always hold pairs)
    "annotate.data=arith:train", "train.common.select_on=arith:dev", "evaluate.task=svpo_arith",
    "annotate.limit=6", "annotate.simulations=6", "annotate.children=3",
    "train.objectives=[sft, svpo]", "train.common.max_steps=3", "train.sft.arith_n=64",
    "train.common.eval_every=2", "train.common.eval_limit=4",
    "compare=[{label: base-tool, base: demo-tool}]",
    "evaluate.limit=4", "evaluate.batch_size=4",
    "evaluate.decodings=[{name: greedy, decoding: greedy}, "
    "{name: sbs, decoding: sbs, beam_width: 2, samples_per_step: 2, temperature: 0.6}, "
    "{name: maj, decoding: maj, num_samples: 'match:sbs', temperature: 0.6}]",
]  # fmt: skip


class Killed(Exception):
    pass


@pytest.mark.slow
def test_a_tiny_recipe_runs_end_to_end_and_resumes_after_a_kill(tmp_path, monkeypatch):
    from svpo_harness.pipelines.evaluate import lm_eval_run
    from svpo_harness.pipelines.recipes import recipe_run
    from svpo_harness.pipelines.recipes.recipe_run import run_recipe

    recipe = load_recipe("arith-quick", [*TINY, "train.lr_grid=[1.0e-4, 1.0e-3]"])
    calls: list[str] = []
    real_eval = lm_eval_run.evaluate_checkpoint

    killed: list[bool] = []

    def eval_then_die(*args, **kwargs):
        calls.append("eval")
        if len(calls) == 4 and not killed:
            killed.append(True)
            raise Killed
        return real_eval(*args, **kwargs)

    monkeypatch.setattr(lm_eval_run, "evaluate_checkpoint", eval_then_die)
    with pytest.raises(Killed):
        run_recipe(recipe, tmp_path / "run")
    # the same command continues: annotate and train are not run again, 3 evaluations kept
    import svpo_harness.pipelines.annotate.annotate_run as annotate_run
    import svpo_harness.pipelines.train.train as train

    monkeypatch.setattr(annotate_run, "run_annotate", lambda *a, **k: pytest.fail("re-annotated"))
    monkeypatch.setattr(train, "run_training", lambda *a, **k: pytest.fail("re-trained"))
    calls.clear()
    summary = run_recipe(recipe, tmp_path / "run")
    assert len(calls) == 12 - 3  # 4 checkpoints x 3 decodings, 3 done before the kill
    rows = summary["evaluations"]
    assert [(r["checkpoint"], r["decoding"]) for r in rows][:3] == [
        ("base", "greedy"), ("base", "sbs"), ("base", "maj"),
    ]  # fmt: skip
    assert len(rows) == 12
    for r in rows:  # each row's acc: the mean of its questions' scores in its own samples file
        (file,) = Path(r["folder"]).rglob("samples_svpo_arith_*.jsonl")
        scores = [json.loads(line)["acc"] for line in file.read_text().splitlines()]
        assert len(scores) == 4 and r["acc"] == pytest.approx(sum(scores) / 4), r["folder"]
    labels = list(dict.fromkeys(r["checkpoint"] for r in rows))
    assert labels == ["base", "base-tool", "sft-teacher", "svpo"]  # compare: not trained
    tool_logs = list((tmp_path / "run" / "eval").glob("base-tool-greedy-*/**/samples_*.jsonl"))
    assert "<output>" in tool_logs[0].read_text()  # the tool variant's programs ran
    # maj@k at SBS's budget: k from this checkpoint's own SBS and greedy token counts
    base = {r["decoding"]: r for r in rows if r["checkpoint"] == "base"}
    k = base["maj"]["model_args"]["num_samples"]
    assert k == max(
        1, round(base["sbs"]["tokens_per_question"] / base["greedy"]["tokens_per_question"])
    )
    out = tmp_path / "run"
    assert (out / "recipe.resolved.yaml").is_file() and (out / "summary.md").is_file()
    results = list((out / "eval").rglob("results_*.json"))
    samples = list((out / "eval").rglob("samples_svpo_arith_*.jsonl"))
    assert len(results) == 12 and len(samples) == 12  # lm-eval's own layout, for svpo report
    assert json.loads((out / "results.json").read_text())["evaluations"]
    assert recipe_run.is_done(Path(rows[-1]["folder"]))
    # the grid: each objective trained at both rates, the rate best on dev kept (ties: first)
    choices = json.loads((out / "lr_choices.json").read_text())
    assert set(choices) == {"round1/sft", "round1/svpo"}
    for objective, label in (("sft", "sft-teacher"), ("svpo", "svpo")):
        dev = choices[f"round1/{objective}"]["dev"]
        assert set(dev) == {"0.0001", "0.001"}
        best = max(dev.values())
        first_best = next(lr for lr in ("0.0001", "0.001") if dev[lr] == best)  # grid order
        assert choices[f"round1/{objective}"]["lr"] == float(first_best)
        path = next(Path(r["path"]) for r in rows if r["checkpoint"] == label)
        training = json.loads((path / "svpo.json").read_text())["training"]
        assert training["config"]["lr"] == choices[f"round1/{objective}"]["lr"]
        assert training["selection"]["chosen_acc"] == best
    assert "round1/svpo: lr" in (out / "summary.md").read_text()


@pytest.mark.slow
def test_a_changed_setting_reruns_only_the_stages_it_feeds(tmp_path, monkeypatch):
    import svpo_harness.pipelines.annotate.annotate_run as annotate_run
    import svpo_harness.pipelines.train.train as train
    from svpo_harness.pipelines.evaluate import lm_eval_run
    from svpo_harness.pipelines.recipes.recipe_run import run_recipe

    small = [*TINY[:-1], "evaluate.decodings=[{name: greedy, decoding: greedy}]"]
    small = ["train.objectives=[svpo]" if x.startswith("train.objectives=") else x for x in small]
    run_recipe(load_recipe("arith-quick", small), tmp_path / "run")
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
    run_recipe(load_recipe("arith-quick", small), tmp_path / "run")  # nothing changed
    assert counts == {"annotate": 0, "train": 0, "eval": 0}
    run_recipe(load_recipe("arith-quick", [*small, "evaluate.limit=3"]), tmp_path / "run")
    # base, base-tool (compare) and svpo: evaluation only
    assert counts == {"annotate": 0, "train": 0, "eval": 3}
    run_recipe(load_recipe("arith-quick", [*small, "train.common.max_steps=2"]), tmp_path / "run")
    assert counts == {"annotate": 0, "train": 1, "eval": 4}  # the svpo stage and what reads it
