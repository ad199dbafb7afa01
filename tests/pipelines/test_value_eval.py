"""`svpo value-eval`: the numbers on known inputs, then end to end on an annotation of the
shipped demo model (24 arith:train questions)."""

from __future__ import annotations

import itertools
import json
import math
import random
import shutil
from pathlib import Path

import pytest

from svpo_harness.core.schemas import PairRecord, StepQRecord, TreeRecord, record_from_dict
from svpo_harness.pipelines.evaluate.value_metrics import auc, calibration, pair_accuracy, pearson


# -- numbers on known inputs ----------------------------------------------------------------------
def _auc_brute(scores: list[float], labels: list[bool]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_on_known_inputs_with_ties_counted_half():
    assert auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75  # the textbook example
    # one tie across classes (0.5 vs 0.5) counts half: (0.5 + 1 + 1 + 1) / 4
    assert auc([0.5, 0.5, 0.2, 0.9], [True, False, False, True]) == 0.875
    assert auc([0.3] * 5, [True, False, True, False, False]) == 0.5  # all tied
    # ties inside one class change nothing
    assert auc([0.7, 0.7, 0.1, 0.1], [True, True, False, False]) == 1.0
    assert auc([0.1, 0.2], [True, True]) is None  # one class: undefined, not 0.5
    assert auc([], []) is None
    with pytest.raises(ValueError, match="2 scores but 1 labels"):
        auc([0.1, 0.2], [True])


def test_auc_matches_the_pairwise_definition_on_random_tied_inputs():
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(2, 30)
        scores = [rng.choice([-1.0, -0.5, 0.0, 0.25, 1.0]) for _ in range(n)]
        labels = [rng.random() < 0.4 for _ in range(n)]
        if len(set(labels)) < 2:
            continue
        assert auc(scores, labels) == pytest.approx(_auc_brute(scores, labels), abs=1e-12)


def test_pair_accuracy_calibration_and_pearson():
    acc = pair_accuracy([0.5, 0.1, 0.2, 0.0], [0.1, 0.3, 0.2, -1.0])
    assert (acc.n, acc.accuracy, acc.ties) == (4, 0.5, 0.25)  # a tie counts as wrong
    assert acc.mean_margin == pytest.approx((0.4 - 0.2 + 0.0 + 1.0) / 4)
    assert pair_accuracy([], []).accuracy is None
    bins = calibration([-1.0, -0.95, 0.05, 1.0, 0.99], [-1.0, 0.0, 1.0, 1.0, 0.0], bins=4)
    assert [b.count for b in bins] == [2, 0, 1, 2]  # V == 1.0 lands in the last bin
    assert (bins[0].lo, bins[0].hi, bins[0].mean_target) == (-1.0, -0.5, -0.5)
    assert bins[1].mean_value is None and bins[3].mean_value == pytest.approx(0.995)
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 1, 1], [1, 2, 3]) is None


def _step(prefix: tuple[int, ...], step: tuple[int, ...], q: float, terminal: bool) -> StepQRecord:
    return StepQRecord(
        question_id="q", prefix_ids=prefix, step_ids=step, step_text="", q=q, n=1,
        tokenizer_fingerprint="x", step_format="arith", terminal=terminal,
    )  # fmt: skip


def test_final_steps_from_step_q_records_skip_exhausted_nodes():
    from svpo_harness.pipelines.evaluate.value_eval import leaf_terminals

    exhausted = _step((1,), (2, 3), 1.0, True)  # terminal, but its children are in the file
    child = _step((1, 2, 3), (4,), 1.0, True)
    wrong = _step((1,), (5,), -1.0, True)
    inner = _step((1,), (6,), 0.5, False)
    assert leaf_terminals([exhausted, child, wrong, inner]) == [child, wrong]


def test_metrics_of_hand_scored_records():
    from svpo_harness.pipelines.evaluate.value_eval import EvalData, Scored, compute_metrics

    pair = PairRecord(
        question_id="q", prefix_ids=(1,), chosen_ids=(2,), rejected_ids=(3,), chosen_text="",
        rejected_text="", q_chosen=1.0, q_rejected=-1.0, tokenizer_fingerprint="x",
        step_format="arith",
    )  # fmt: skip
    steps = [_step((1,), (i,), q, False) for i, q in enumerate([1.0, -1.0, 0.5, 0.0])]
    finals = [_step((1,), (i,), q, True) for i, q in enumerate([1.0, -1.0, 1.0, -1.0])]
    data = EvalData(pairs=[pair] * 4, steps=steps, finals=finals, finals_from="trees")
    # (V chosen, V rejected): a win, a loss, one that did not fit (dropped), a tie (wrong)
    pairs = Scored([(0.5, 0.1), (0.2, 0.6), None, (0.3, 0.3)], [None] * 4, dropped=1)
    step_v = Scored([(0.8,), (-0.6,), (0.4,), (0.2,)], [None] * 4)
    final_v = Scored([(0.9,), (0.5,), (0.4,), (-0.2,)], [None] * 4)
    m = compute_metrics(data, pairs, step_v, final_v, bins=2)
    rank = m["value_ranking"]
    assert (rank["n"], rank["dropped"]) == (3, 1)
    assert rank["accuracy"] == pytest.approx(1 / 3) and rank["ties"] == pytest.approx(1 / 3)
    assert rank["mean_margin"] == pytest.approx((0.4 - 0.4 + 0.0) / 3, abs=1e-12)
    final = m["final_correctness"]
    # correct {0.9, 0.4} vs incorrect {0.5, -0.2}: 0.4 < 0.5 loses, 3 of 4 couples won
    assert (final["n"], final["correct"], final["auc"]) == (4, 2, 0.75)
    assert [b["count"] for b in final["calibration"]] == [1, 3]
    assert final["calibration"][1]["mean_target"] == pytest.approx(2 / 3)  # fraction correct
    vq = m["value_vs_q"]
    # V - Q = (-0.2, 0.4, -0.1, 0.2); centred V (0.6, -0.8, 0.2, 0), Q (0.875, -1.125, 0.375,
    # -0.125): Sxy 1.5, Sxx 1.04, Syy 2.1875
    assert vq["n"] == 4 and vq["mse"] == pytest.approx(0.0625)
    assert vq["pearson"] == pytest.approx(1.5 / math.sqrt(1.04 * 2.1875))
    assert [(b["lo"], b["hi"], b["count"]) for b in vq["calibration"]] == [
        (-1.0, 0.0, 1), (0.0, 1.0, 3),
    ]  # fmt: skip
    assert vq["calibration"][1]["mean_value"] == pytest.approx((0.8 + 0.4 + 0.2) / 3)
    assert vq["calibration"][1]["mean_target"] == pytest.approx(0.5)


# -- end to end on the demo model ------------------------------------------------------------------
@pytest.fixture
def annotated(demo_annotation) -> tuple[Path, Path]:
    return demo_annotation  # tests/pipelines/conftest.py


def _fresh_values(model_dir: Path, rows: list[tuple[tuple[int, ...], ...]]) -> list[float]:
    """V after each row of ids, one unpadded forward each: independent of the collator."""
    import torch

    from svpo_harness.engines.checkpoint import load_checkpoint

    loaded = load_checkpoint(str(model_dir), device=torch.device("cpu"), peft="merge")
    head = loaded.value_head.eval()
    out = []
    with torch.inference_mode():
        for parts in rows:
            ids = torch.tensor([[t for part in parts for t in part]])
            hidden = loaded.model(ids, output_hidden_states=True).hidden_states[-1]
            out.append(float(head(hidden[0, -1].float())))
    return out


def _records(file: Path, kind: str) -> list:
    rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    return [record_from_dict(r) for r in rows if r["type"] == kind]


def _wins_within_ties(first: list[float], second: list[float], acc: float) -> None:
    """``acc`` is the fraction with first > second, up to couples closer than float noise."""
    wins = sum(a > b for a, b in zip(first, second, strict=True))
    close = sum(abs(a - b) < 1e-4 for a, b in zip(first, second, strict=True))
    assert abs(acc * len(first) - wins) <= close + 1e-9, (acc, wins, close)


def _check_auc(values: list[float], labels: list[bool], got: float) -> None:
    pos = [v for v, y in zip(values, labels, strict=True) if y]
    neg = [v for v, y in zip(values, labels, strict=True) if not y]
    close = sum(abs(p - n) < 1e-4 for p, n in itertools.product(pos, neg))
    slack = (close + 1e-9) / (len(pos) * len(neg))
    assert got == pytest.approx(_auc_brute(values, labels), abs=slack)


def test_value_eval_on_an_annotation_folder_writes_numbers_and_plots(annotated, tmp_path):
    from svpo_harness.pipelines.evaluate.value_eval import ValueEvalConfig, run_value_eval

    model, ann = annotated
    out = tmp_path / "eval"
    cfg = ValueEvalConfig(model=str(model), data=str(ann), out=str(out), reference=str(model))
    metrics = run_value_eval(cfg, progress=False)
    written = json.loads((out / "metrics.json").read_text())
    assert written["value_ranking"] == pytest.approx(metrics["value_ranking"])
    for name in ("calibration.png", "q_vs_v.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    kinds = [json.loads(line)["type"] for line in (ann / "pairs.jsonl").read_text().splitlines()]
    pairs = kinds.count("pair")
    rank, final = written["value_ranking"], written["final_correctness"]
    assert rank["n"] == pairs > 0 and rank["dropped"] == 0
    assert final["source"] == "trees" and final["n"] > final["correct"] > 0
    # the numbers against values from plain forwards, counted here
    from svpo_harness.pipelines.evaluate.value_eval_data import final_steps

    pair_records: list[PairRecord] = _records(ann / "pairs.jsonl", "pair")
    chosen = _fresh_values(model, [(p.prefix_ids, p.chosen_ids) for p in pair_records])
    rejected = _fresh_values(model, [(p.prefix_ids, p.rejected_ids) for p in pair_records])
    _wins_within_ties(chosen, rejected, rank["accuracy"])
    trees: list[TreeRecord] = _records(ann / "trees.jsonl", "tree")
    finals = [s for t in trees for s in final_steps(t)]
    assert final["n"] == len(finals) and final["correct"] == sum(s.q > 0 for s in finals)
    f_values = _fresh_values(model, [(s.prefix_ids, s.step_ids) for s in finals])
    _check_auc(f_values, [s.q > 0 for s in finals], final["auc"])
    assert written["value_vs_q"]["n"] == written["records"]["step_q"] > 0
    assert (
        sum(b["count"] for b in written["value_vs_q"]["calibration"])
        == written["records"]["step_q"]
    )
    # the reference against itself: every implicit reward is 0, the DPO loss is log 2
    pref = written["preference"]
    assert pref["pairs"] == pairs and pref["ties"] == 1.0 and pref["accuracy"] == 0.0
    assert pref["dpo_loss"] == pytest.approx(0.693147, abs=1e-6)
    assert pref["beta"] == 0.1


def test_value_eval_command_on_a_pairs_file(annotated, tmp_path):
    from click.testing import CliRunner

    from svpo_harness.cli import main

    model, ann = annotated
    out = tmp_path / "eval"
    args = ["value-eval", "--model", str(model), "--data", str(ann / "pairs.jsonl")]
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "value ranking acc" in result.output and "step_q" in result.output
    written = json.loads((out / "metrics.json").read_text())
    final = written["final_correctness"]
    assert final["source"] == "step_q"  # terminal step_q records
    from svpo_harness.pipelines.evaluate.value_eval_data import leaf_terminals

    finals = leaf_terminals(_records(ann / "pairs.jsonl", "step_q"))
    assert final["n"] == len(finals) > final["correct"] == sum(s.q > 0 for s in finals) > 0
    f_values = _fresh_values(model, [(s.prefix_ids, s.step_ids) for s in finals])
    _check_auc(f_values, [s.q > 0 for s in finals], final["auc"])
    assert "preference" not in written and not (out / "q_vs_v.png").exists()


def test_bad_input_is_a_clear_error(annotated, tmp_path):
    from svpo_harness.pipelines.evaluate.value_eval import (
        ValueEvalConfig,
        ValueEvalError,
        run_value_eval,
    )

    model, ann = annotated

    def run(model_path: Path, data: Path) -> None:
        cfg = ValueEvalConfig(model=str(model_path), data=str(data), out=str(tmp_path / "o"))
        run_value_eval(cfg, progress=False)

    headless = tmp_path / "headless"
    shutil.copytree(model, headless)
    (headless / "value_head.safetensors").unlink()
    meta = json.loads((headless / "svpo.json").read_text())
    (headless / "svpo.json").write_text(json.dumps({**meta, "value_head": None}))
    with pytest.raises(ValueEvalError, match="has no value head"):
        run(headless, ann)
    (headless / "svpo.json").unlink()  # a plain HF folder: no svpo.json, no head
    with pytest.raises(ValueEvalError, match="has no svpo.json"):
        run(headless, ann)

    lines = (ann / "pairs.jsonl").read_text().splitlines()
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({**json.loads(lines[0]), "tokenizer_fingerprint": "sha256:x"}))
    with pytest.raises(ValueEvalError, match=rf"{other}:1: made with tokenizer sha256:x"):
        run(model, other)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueEvalError, match="no pair records to evaluate"):
        run(model, empty)
    trees = tmp_path / "other-trees"  # good pairs, trees of another tokenizer
    trees.mkdir()
    tree = json.loads((ann / "trees.jsonl").read_text().splitlines()[0])
    (trees / "pairs.jsonl").write_text("\n".join(lines) + "\n")
    (trees / "trees.jsonl").write_text(json.dumps({**tree, "tokenizer_fingerprint": "y"}) + "\n")
    with pytest.raises(ValueEvalError, match="tree of question .*made with tokenizer y"):
        run(model, trees)
    assert not (tmp_path / "o").exists()  # refused before writing anything
