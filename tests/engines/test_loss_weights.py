"""Effective loss weights on mixed records (method.md section 5): each term, summed over an
epoch of the loop's windows, is lambda times the mean over all of its own examples.

The records go through a real record file and the trainer's loader, and the windows are the
loop's own (``epoch_windows``), so this is the weighting ``svpo train`` optimises. Per-item
losses are set by hand (1 for one term, 0 for the others), so the epoch's mean window loss is
exactly the weight that term really gets.
"""

from __future__ import annotations

import json

import pytest
import torch
from record_builders import pair, path, step_q

from svpo_harness.engines.collate import (
    KindRates,
    prepare_examples,
    window_counts,
    window_denominators,
)
from svpo_harness.engines.losses import LossSums, LossWeights, combine_losses
from svpo_harness.pipelines.train.pref_data import load_preference_data
from svpo_harness.pipelines.train.train_loop import epoch_windows

WINDOW = 8


def _mixed_file(tmp_path, n_pairs: int, n_steps: int, n_paths: int):
    records = [pair((1, 2), (3,), (4,), qid=f"p{i}") for i in range(n_pairs)]
    records += [step_q((1, 2), (5, 6), q=0.5, qid=f"s{i}") for i in range(n_steps)]
    records += [path((1,), ((7, 8), (9,)), qid=f"t{i}") for i in range(n_paths)]
    file = tmp_path / "pairs.jsonl"
    file.write_text("".join(json.dumps(r.to_dict()) + "\n" for r in records))
    return file


def _epoch_mean_loss(examples, term: str, denominators_of) -> float:
    """The mean over one epoch's windows of the window loss when every example of ``term``
    has per-item loss 1 (per token for sft) and every other item 0; lambdas all 1."""
    weights = LossWeights(lambda_dpo=1.0, lambda_rank=1.0, lambda_mse=1.0, lambda_sft=1.0)
    windows = epoch_windows(len(examples), WINDOW, seed=3, epoch=0)
    total = 0.0
    for window in windows:
        chosen = [examples[i] for i in window]
        held = window_counts(chosen)
        sums = LossSums.zeros()
        value = {"dpo": held.pairs, "mse": held.values, "sft": held.sft_tokens}[term]
        sums = LossSums(**{**vars(sums), term: torch.tensor(float(value))})
        total += float(combine_losses(sums, denominators_of(chosen), weights))
    return total / len(windows)


@pytest.mark.parametrize("term", ["dpo", "mse", "sft"])
def test_each_term_gets_its_lambda_on_a_mixed_record_file(tmp_path, term) -> None:
    # 6 pairs, 74 step_q, 16 paths: 96 examples = 12 windows of 8; pairs are a minority, as in
    # svpo's data (109 pairs among 1,469 step_q in arith-full)
    file = _mixed_file(tmp_path, 6, 74, 16)
    svpo = load_preference_data(file, "svpo", tokenizer_fingerprint="fp", step_format="arith")
    alphamath = load_preference_data(
        file, "alphamath", tokenizer_fingerprint="fp", step_format="arith"
    )
    records = svpo.records + [r for r in alphamath.records if r.KIND == "path"]
    assert {k: sum(r.KIND == k for r in records) for k in ("pair", "step_q", "path")} == {
        "pair": 6,
        "step_q": 74,
        "path": 16,
    }
    examples, _ = prepare_examples(records, max_length=32)
    rates = KindRates.of(examples)
    effective = _epoch_mean_loss(examples, term, lambda ex: window_denominators(ex, rates))
    assert effective == pytest.approx(1.0, abs=1e-6)  # lambda = 1: the weight it really gets


def test_dividing_by_the_windows_own_count_underweights_a_minority_term(tmp_path) -> None:
    """What the loop did before: a window's pairs divided by that window's pair count. With 6
    pairs in 12 windows, the DPO term's effective weight is the share of windows holding a pair,
    not 1 (the measured 0.46 of issue 25 on arith-full)."""
    file = _mixed_file(tmp_path, 6, 90, 0)
    data = load_preference_data(file, "svpo", tokenizer_fingerprint="fp", step_format="arith")
    examples, _ = prepare_examples(data.records, max_length=32)
    windows = epoch_windows(len(examples), WINDOW, seed=3, epoch=0)
    with_pairs = sum(any(examples[i].kind == "pair" for i in w) for w in windows)
    old = _epoch_mean_loss(examples, "dpo", window_counts)
    assert old == pytest.approx(with_pairs / len(windows))
    assert old < 0.6  # 6 pairs can fill at most 6 of the 12 windows
    rates = KindRates.of(examples)
    assert _epoch_mean_loss(
        examples, "dpo", lambda ex: window_denominators(ex, rates)
    ) == pytest.approx(1.0)


def test_single_kind_data_keeps_the_windows_own_counts() -> None:
    """Pairs only (dpo) or paths only (sft): the expected count is the count, so nothing
    changes for unmixed data (the token mean of SFT stays the window's token mean)."""
    from svpo_harness.engines.collate import prepare_examples as prep

    only_pairs, _ = prep([pair((1,), (2,), (3,), qid=f"p{i}") for i in range(5)], 16)
    rates = KindRates.of(only_pairs)
    assert window_denominators(only_pairs[:3], rates) == window_counts(only_pairs[:3])
    only_paths, _ = prep([path((1,), ((2,) * (i + 1),), qid=f"t{i}") for i in range(5)], 16)
    rates = KindRates.of(only_paths)
    assert window_denominators(only_paths[1:4], rates) == window_counts(only_paths[1:4])
    assert window_counts(only_paths[1:4]).sft_tokens == 2 + 3 + 4
