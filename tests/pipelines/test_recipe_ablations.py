"""`svpo run arith-ablations` (issue 26) at a tiny --set size: every ablation row trains from one
annotation of the hard split's training questions, is selected on its dev split, and is evaluated
on `svpo_arith_hard` with the four decodings; the frozen-policy row leaves the policy as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from svpo_harness.pipelines.recipes.recipe import load_recipe, train_objective, train_settings

NAMES = ["svpo", "svpo-no-rank", "svpo-no-mse", "step-dpo", "value-only", "alphamath", "dpo",
         "rft"]  # fmt: skip
DECODINGS = ["greedy", "sbs-3-5", "sbs-3-5-logprob", "maj-at-sbs-budget"]


def test_the_recipe_is_the_issue_s_ablation_grid():
    recipe = load_recipe("arith-ablations")
    assert recipe["train"]["objectives"] == NAMES
    objectives = {name: train_objective(recipe, name) for name in NAMES}
    assert objectives["step-dpo"] == objectives["svpo-no-rank"] == "svpo"
    assert objectives["value-only"] == "value"
    settings = {name: train_settings(recipe, name) for name in NAMES}
    assert settings["svpo-no-rank"]["lambda_rank"] == 0.0 and "lambda_mse" not in settings[
        "svpo-no-rank"
    ]  # fmt: skip
    assert settings["svpo-no-mse"]["lambda_mse"] == 0.0
    assert settings["step-dpo"]["lambda_rank"] == settings["step-dpo"]["lambda_mse"] == 0.0
    assert {s["select_on"] for s in settings.values()} == {"arith_hard:dev"}
    assert recipe["annotate"]["data"] == "arith_hard:train"
    assert recipe["evaluate"]["task"] == "svpo_arith_hard"
    assert [d["name"] for d in recipe["evaluate"]["decodings"]] == DECODINGS
    logprob = recipe["evaluate"]["decodings"][2]
    assert logprob["decoding"] == "sbs" and logprob["value_head"] == "none"
    assert recipe["seeds"] == [0, 1, 2] and len(recipe["train"]["lr_grid"]) == 2


TINY = [
    "seeds=[0]", "annotate.limit=8", "annotate.simulations=8", "annotate.children=3",
    "annotate.temperature=1.0",
    "train.lr_grid=null", "train.common.max_steps=2", "train.common.eval_every=2",
    "train.common.eval_limit=2", "evaluate.limit=2", "evaluate.batch_size=2",
    "evaluate.decodings=[{name: greedy, decoding: greedy}, "
    "{name: sbs-3-5, decoding: sbs, beam_width: 2, samples_per_step: 2, temperature: 0.6}, "
    "{name: sbs-3-5-logprob, decoding: sbs, beam_width: 2, samples_per_step: 2, "
    "temperature: 0.6, value_head: none}, "
    "{name: maj-at-sbs-budget, decoding: maj, num_samples: 'match:sbs-3-5', temperature: 0.6}]",
]  # fmt: skip


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.mark.slow
def test_a_tiny_ablation_run_trains_every_row_on_the_hard_split(tmp_path):
    from svpo_harness.pipelines.recipes.recipe_run import run_recipe

    out = tmp_path / "run"
    rows = run_recipe(load_recipe("arith-ablations", TINY), out)["evaluations"]
    assert list(dict.fromkeys(r["checkpoint"] for r in rows)) == ["base", *NAMES]
    for name in ["base", *NAMES]:
        assert [r["decoding"] for r in rows if r["checkpoint"] == name] == DECODINGS
        results = next(Path(next(r["folder"] for r in rows if r["checkpoint"] == name)).rglob(
            "results_*.json"
        ))  # fmt: skip
        assert list(json.loads(results.read_text())["results"]) == ["svpo_arith_hard"]
    paths = {r["checkpoint"]: Path(r["path"]) for r in rows}
    training = {n: json.loads((paths[n] / "svpo.json").read_text())["training"] for n in NAMES}
    for name in NAMES:
        assert training[name]["selection"]["on"] == "arith_hard:dev", name
    heads = {name: training[name]["value_head_trained"] for name in NAMES}
    assert heads["step-dpo"] is False and heads["dpo"] is False and heads["rft"] is False
    # the frozen-policy row: its policy weights are the base's, bit for bit
    base, value_only = _weights(paths["base"]), _weights(paths["value-only"])
    assert base.keys() == value_only.keys()
    assert all(base[k].equal(value_only[k]) for k in base)
    # log-prob ranking is not value guidance: never labelled as an untrained head
    report = (out / "report.md").read_text()
    assert "sbs-3-5-logprob (untrained head)" not in report
    assert "base sbs-3-5 (untrained head)" in report
    annotate = next((out / "seed0" / "round1").glob("annotate-*"))
    manifest = json.loads((annotate / "manifest.json").read_text())
    assert manifest["settings"]["data"] == "arith_hard:train"
