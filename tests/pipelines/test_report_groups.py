"""`svpo report`'s grouping: checkpoint x decoding labels, seeds pooled, matched McNemar pairs."""

from __future__ import annotations

import statistics
from itertools import combinations

import pytest

from svpo_harness.pipelines.report import report_groups as groups


def _row(name: str, pretrained: str, decoding: str, acc: float, tokens: float = 100.0) -> dict:
    return {
        "name": name,
        "task": "svpo_arith",
        "kind": "measured",
        "pretrained": pretrained,
        "decoding": decoding,
        "acc": acc,
        "acc_stderr": 0.03,
        "tokens_per_question": tokens,
        "tokens_source": "search log (every token the search generated)",
    }


DECODINGS = {"greedy": "svpo greedy, max 256", "sbs": "svpo SBS(B1=3, B2=5), T=0.6"}


def _grid() -> list[dict]:
    """What `svpo run` names its rows: base (no seed) and 2 objectives x 2 seeds, 2 decodings."""
    rows = [_row(f"base {d}", "ckpt/base", full, 0.6) for d, full in DECODINGS.items()]
    for objective in ("dpo", "svpo"):
        for seed in (0, 1):
            for d, full in DECODINGS.items():
                acc = {"dpo": 0.1, "svpo": 0.9}[objective] + 0.02 * seed
                path = f"ckpt/{objective}-{seed}"
                rows.append(_row(f"{objective} r1 s{seed} {d}", path, full, acc, 60 + 10 * seed))
    return rows


@pytest.mark.parametrize(
    "name,expected",
    [
        ("svpo r1 s2 greedy", ("svpo r1 greedy", 2)),
        ("svpo seed12", ("svpo", 12)),
        ("svpo greedy", ("svpo greedy", None)),
        ("s1 vs s2", ("s1 vs s2", None)),  # two seed words: ambiguous, no seed
        ("sbs-3-5 sft", ("sbs-3-5 sft", None)),  # a word that starts with s is not a seed
    ],
)
def test_split_seed(name, expected):
    assert groups.split_seed(name) == expected


def test_rows_get_checkpoint_decoding_setting_and_seed():
    rows = _grid()
    groups.label_rows(rows)
    svpo = next(r for r in rows if r["name"] == "svpo r1 s1 sbs")
    assert (svpo["checkpoint"], svpo["decoding_label"]) == ("svpo r1 s1", "sbs")
    assert (svpo["setting"], svpo["seed"]) == ("svpo r1", 1)
    base = next(r for r in rows if r["name"] == "base greedy")
    assert (base["checkpoint"], base["decoding_label"], base["seed"]) == ("base", "greedy", None)
    # names that put the decoding first (a folder without labels) split the same way
    odd = [_row(f"svpo {d} (run-a)", "ckpt/a", full, 0.5) for d, full in DECODINGS.items()]
    groups.label_rows(odd)
    assert [(r["checkpoint"], r["decoding_label"]) for r in odd] == [
        ("svpo (run-a)", "greedy"),
        ("svpo (run-a)", "sbs"),
    ]


def test_matched_pairs_are_same_checkpoint_or_same_decoding_and_seed():
    rows = _grid()
    groups.label_rows(rows)
    tested = {
        (a["name"], b["name"])
        for a, b in combinations(rows, 2)
        if groups.tested("matched", a, b, rows_on_task=len(rows))
    }
    # by hand: 5 checkpoints x 1 decoding pair = 5; per decoding: base meets all 4 seeded
    # checkpoints (4) and, per seed, dpo meets svpo (2): 6 per decoding, 12 in all
    assert len(tested) == 5 + 12
    assert ("svpo r1 s0 greedy", "svpo r1 s0 sbs") in tested
    assert ("base sbs", "svpo r1 s1 sbs") in tested
    assert ("dpo r1 s0 greedy", "svpo r1 s0 greedy") in tested
    assert ("dpo r1 s0 greedy", "svpo r1 s1 greedy") not in tested  # seed against other seed
    assert ("dpo r1 s0 greedy", "svpo r1 s0 sbs") not in tested  # other model, other decoding
    every = [p for p in combinations(rows, 2) if groups.tested("all", *p, rows_on_task=10)]
    assert len(every) == 45
    # auto: every pair up to 12 rows on the task, matched above
    assert all(groups.tested("auto", *p, rows_on_task=12) for p in combinations(rows, 2))
    auto = [p for p in combinations(rows, 2) if groups.tested("auto", *p, rows_on_task=13)]
    assert len(auto) == 17


def test_pooled_points_mean_spread_and_tokens_over_seeds():
    rows = _grid()
    groups.label_rows(rows)
    points = {(p["setting"], p["decoding"]): p for p in groups.pooled_points(rows)}
    assert len(points) == 2 + 2 * 2  # base and 2 settings, 2 decodings each
    svpo = points[("svpo r1", "greedy")]
    assert svpo["seeds"] == 2
    assert svpo["acc"] == pytest.approx(0.91)
    assert svpo["spread"] == pytest.approx(statistics.stdev([0.9, 0.92]))
    assert svpo["tokens_per_question"] == pytest.approx(65.0)
    base = points[("base", "greedy")]
    assert (base["seeds"], base["spread"]) == (1, 0.03)  # one seed: its standard error
