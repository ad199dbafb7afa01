"""Seeds added to a finished run (`--set seeds=[0]`, then `[0,1,2]`) reuse seed 0's evaluations:
the label gains " s0" but the stage key (checkpoint and settings) is the same."""

from __future__ import annotations

import json

import pytest

from svpo_harness.pipelines.recipes.recipe import load_recipe
from svpo_harness.pipelines.recipes.recipe_run import evaluate_all, mark_done, stage_key


def test_evaluations_of_a_one_seed_run_are_reused_under_the_seeded_label(tmp_path):
    recipe = load_recipe(
        "arith-ablations", ["evaluate.decodings=[{name: greedy, decoding: greedy}]"]
    )
    spec = recipe["evaluate"]
    settings = {"task": spec["task"], "limit": spec["limit"], "model_args": {"decoding": "greedy"}}
    key = stage_key("evaluate", settings, ["svpo-ckpt-key"])
    # what the one-seed run left: its label had no " s0"
    folder = tmp_path / "eval" / f"svpo-greedy-{key}"
    folder.mkdir(parents=True)
    stored = {"checkpoint": "svpo", "decoding": "greedy", "acc": 0.75, "n": 4,
              "tokens_per_question": 10.0, "seconds_per_question": 0.1}  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(stored))
    mark_done(folder, {"stage": "evaluate"})
    # the checkpoint folder is gone: evaluating again would fail, reusing must not
    ckpt = {"label": "svpo s0", "path": tmp_path / "no-such-checkpoint", "key": "svpo-ckpt-key"}

    (row,) = evaluate_all(recipe, [ckpt], tmp_path)

    assert row["acc"] == 0.75 and row["folder"] == str(folder)
    assert row["checkpoint"] == "svpo s0"  # the report names it as this run does
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == [folder.name]


def test_another_checkpoint_key_is_not_taken_for_a_finished_one(tmp_path):
    recipe = load_recipe(
        "arith-ablations", ["evaluate.decodings=[{name: greedy, decoding: greedy}]"]
    )
    spec = recipe["evaluate"]
    settings = {"task": spec["task"], "limit": spec["limit"], "model_args": {"decoding": "greedy"}}
    other = tmp_path / "eval" / f"svpo-greedy-{stage_key('evaluate', settings, ['seed-1-key'])}"
    other.mkdir(parents=True)
    (other / "summary.json").write_text(json.dumps({"acc": 1.0}))
    mark_done(other, {"stage": "evaluate"})
    ckpt = {"label": "svpo s0", "path": tmp_path / "no-such-checkpoint", "key": "seed-0-key"}
    # it tries to evaluate the missing checkpoint: seed 1's result is not taken for seed 0's
    with pytest.raises(Exception, match="no-such-checkpoint"):
        evaluate_all(recipe, [ckpt], tmp_path)
