"""The public search API: options validation, dispatch, logs, determinism, import weight."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_policy import ScriptedPolicy, Step

from svpo_harness.core.search import (
    DECODINGS,
    Candidate,
    RootState,
    SearchOptions,
    SearchResult,
    rank_key,
    run_search,
)

REPO = Path(__file__).resolve().parents[3]


def roots(policy: ScriptedPolicy, *questions: str) -> list[RootState]:
    return [RootState(q, policy.encode_prompt(q)) for q in questions]


# maj@k's checker, injected so these tests do not depend on the grading module.
CHECKER = {
    "answer_fn": lambda text: text[-2:-1] if text.endswith("}") else None,
    "equiv_fn": lambda pred, gold: pred == gold,
}


def random_world(question: str, prefix: str, seed: int, j: int) -> Step:
    """Seed-driven steps: a few texts (so duplicates happen), finals, dead ends, values."""
    rng = random.Random(f"{seed}/{j}")
    kind = rng.random()
    value = round(rng.uniform(-1, 1), 3)
    if kind < 0.2:
        return Step(f"so \\boxed{{{rng.randrange(3)}}}", value, "eos")
    if kind < 0.25:
        return Step("oops", value, "eos")
    return Step(f"x{rng.randrange(3)}\n", value)


@pytest.mark.parametrize(
    "bad",
    [
        {"b1": 0},
        {"b2": 0},
        {"n_samples": 0},
        {"temperature": -0.1},
        {"max_depth": 0},
        {"max_step_tokens": 0},
        {"max_new_tokens": 0},
        {"rank_by": "prior"},
    ],
)
def test_options_reject_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        SearchOptions(**bad)


def test_options_are_frozen_with_method_defaults():
    opts = SearchOptions()
    assert (opts.b1, opts.b2, opts.temperature, opts.drop_duplicates) == (3, 5, 0.6, True)
    assert opts.max_depth is None and opts.rank_by == "value"
    with pytest.raises(AttributeError):
        opts.b1 = 4  # type: ignore[misc]


def test_roots_need_prompt_ids_and_unique_keys():
    with pytest.raises(ValueError, match="prompt_ids"):
        RootState("q", ())
    policy = ScriptedPolicy(default=random_world)
    [root] = roots(policy, "q")
    with pytest.raises(ValueError, match="unique"):
        run_search("sbs", [root, root], policy)


def test_rank_key_orders_by_score_then_creation_with_missing_scores_last():
    def cand(cid: int, score: float | None) -> Candidate:
        return Candidate(cid, 0, 1, "", (), score, 0.0, 0.0, "delimiter", False, 0, 0.0, score)

    ordered = sorted([cand(1, None), cand(2, 0.1), cand(3, 0.5), cand(4, 0.5)], key=rank_key)
    assert [c.id for c in ordered] == [3, 4, 2, 1]


@pytest.mark.parametrize("decoding", DECODINGS)
def test_every_decoding_returns_one_typed_result_per_root(decoding):
    policy = ScriptedPolicy(default=random_world, mode="seeded")
    results = run_search(
        decoding, roots(policy, "a", "b"), policy, SearchOptions(), seed=1, **CHECKER
    )
    assert [type(r) for r in results] == [SearchResult, SearchResult]
    assert [r.key for r in results] == ["a", "b"] and {r.decoding for r in results} == {decoding}
    for res in results:
        assert res.text == "".join(chr(t) for t in res.token_ids)
        assert res.tokens_generated == sum(len(c.token_ids) for c in res.tree)
        # pruned: SBS's unranked candidates; MCTS's nodes that were never expanded
        assert res.tree and all(
            c.status != "pruned" or decoding in ("sbs", "mcts") for c in res.tree
        )


def test_unknown_decoding_lists_the_valid_ones():
    policy = ScriptedPolicy(default=random_world)
    with pytest.raises(ValueError, match="greedy, sbs, bon, maj, mcts"):
        run_search("beam", roots(policy, "q"), policy)  # type: ignore[arg-type]


def comparable(res: SearchResult) -> dict:
    data = res.to_dict()
    data.pop("seconds")
    return data


@pytest.mark.parametrize("decoding", DECODINGS)
def test_results_are_deterministic_and_independent_of_batch_mates(decoding):
    opts = SearchOptions(b1=3, b2=4, n_samples=4)

    def run(questions: tuple[str, ...], seed: int) -> dict[str, dict]:
        policy = ScriptedPolicy(default=random_world, mode="seeded")
        results = run_search(decoding, roots(policy, *questions), policy, opts, seed, **CHECKER)
        return {r.key: comparable(r) for r in results}

    alone = run(("q1",), seed=3)["q1"]
    batched = run(("q0", "q1", "q2"), seed=3)
    assert batched["q1"] == alone
    assert run(("q1",), seed=3)["q1"] == alone
    assert run(("q1",), seed=4)["q1"]["tree"] != alone["tree"]


def test_search_log_round_trips_through_json():
    policy = ScriptedPolicy(default=random_world, mode="seeded")
    [res] = run_search("sbs", roots(policy, "q"), policy, SearchOptions(b1=2, b2=3), seed=2)
    line = json.dumps(res.to_dict())
    back = SearchResult.from_dict(json.loads(line))
    assert back == res and back.to_dict() == res.to_dict()
    assert {c["status"] for c in json.loads(line)["tree"]} >= {"pruned", "kept", "duplicate"}

    data = json.loads(line)
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="schema_version"):
        SearchResult.from_dict(data)


def test_importing_search_pulls_in_no_heavy_libraries():
    """A fresh interpreter, with torch & co. blocked, imports the search package."""
    code = f"""
import sys
HEAVY = ("torch", "transformers", "lm_eval", "vllm", "numpy")

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY:
            raise ImportError("blocked: " + name)
        return None

sys.meta_path.insert(0, Block())
import svpo_harness.core.search as search
assert search.__file__.startswith({str(REPO)!r}), search.__file__
loaded = sorted(m for m in sys.modules if m.split(".")[0] in HEAVY)
assert not loaded, loaded
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
