"""`svpo report` and the checkpoints behind its rows: training facts from svpo.json (model
selection on dev, exposure), "untrained head" labels on value-guided rows, no test for rows
without shared problems, the dev-curves plot. Inputs are hand-built in lm-eval's layout
(test_report.write_run) beside fabricated checkpoint folders holding only an svpo.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from test_report import DATE, HF_OK, SBS_OK, write_run

from svpo_harness.pipelines.report.report import ReportConfig, build_report, run_report
from svpo_harness.pipelines.report.report_stats import paired_test
from svpo_harness.pipelines.report.report_training import training_facts

SBS = {"decoding": "sbs", "beam_width": 3, "samples_per_step": 5}
DPO_CURVE = [[0, 0.6], [10, 0.7], [20, 0.9], [30, 0.95], [40, 0.4]]
SVPO_CURVE = [[0, 0.6], [50, 0.8], [100, 0.8], [150, 0.7]]


def checkpoint(folder: Path, training: dict | None) -> Path:
    """A checkpoint folder holding only svpo.json (its `training` object when given)."""
    folder.mkdir(parents=True)
    meta = {"schema_version": 1, "kind": "svpo-checkpoint", "value_head": {"dropout": 0.1}}
    if training is not None:
        meta["training"] = training
    (folder / "svpo.json").write_text(json.dumps(meta))
    return folder


def dpo_training() -> dict:
    return {
        "objective": "dpo",
        "config": {"lr": 2e-4, "steps": 200},
        "selection": {
            "on": "arith:dev",
            "metric": "greedy",
            "every": 10,
            "limit": 200,
            "curve": DPO_CURVE,
            "chosen_step": 30,
            "lr": 2e-4,
        },
        "exposure": {
            "optimizer_steps": 40,
            "chosen_step": 30,
            "window": 8,
            "examples": 84,
            "records": {"pair": 84, "step_q": 0, "path": 0},
            "passes": 30 * 8 / 84,
        },
    }


def svpo_training() -> dict:
    return {
        "objective": "svpo",
        "config": {"lr": 5e-5},
        "value_head_trained": True,
        "selection": {
            "on": "dev.jsonl",
            "metric": "sbs-3-5",
            "every": 50,
            "limit": 1000,
            "problems": 500,  # the dev file held fewer than the limit
            "curve": SVPO_CURVE,
            "chosen_step": 50,
        },  # no lr here: config's
        "exposure": {  # no passes: computed, 50 * 8 / 1578
            "optimizer_steps": 150,
            "chosen_step": 50,
            "window": 8,
            "examples": 1578,
            "records": {"pair": 109, "step_q": 1469},
        },
    }


def test_training_table_from_svpo_json(tmp_path):
    dpo = checkpoint(tmp_path / "ckpt" / "dpo", dpo_training())
    svpo = checkpoint(tmp_path / "ckpt" / "svpo", svpo_training())
    odd = {"objective": "rft", "config": "?", "selection": [], "exposure": {"records": [1]}}
    rft = checkpoint(tmp_path / "ckpt" / "rft", odd)  # keys of another shape: blanks
    base = checkpoint(tmp_path / "ckpt" / "base", {"demo_build": {"seed": 0}})  # not trained
    broken = tmp_path / "ckpt" / "broken"
    broken.mkdir()
    (broken / "svpo.json").write_text("{not json")
    ev = tmp_path / "ev"
    results = [
        f"dpo r1 greedy={write_run(ev / 'a', 'hf', {'pretrained': str(dpo)}, HF_OK, 1.0)}",
        f"svpo r1 greedy={write_run(ev / 'b', 'hf', {'pretrained': str(svpo)}, SBS_OK, 1.0)}",
        f"rft r1 greedy={write_run(ev / 'c', 'hf', {'pretrained': str(rft)}, HF_OK, 1.0)}",
        f"base greedy={write_run(ev / 'd', 'hf', {'pretrained': str(base)}, HF_OK, 1.0)}",
        f"broken greedy={write_run(ev / 'e', 'hf', {'pretrained': str(broken)}, HF_OK, 1.0)}",
        f"gone greedy={write_run(ev / 'f', 'hf', {'pretrained': 'nowhere/model'}, HF_OK, 1.0)}",
    ]
    out = tmp_path / "rep" / "report.md"
    report = run_report(ReportConfig(results=results, out=str(out), plots=False))
    rows = {r["name"]: r for r in report["rows"]}
    assert [rows[f"{n} greedy"]["training"] for n in ("base", "broken", "gone")] == [None] * 3
    assert rows["dpo r1 greedy"]["training"]["exposure"]["passes"] == 30 * 8 / 84
    assert rows["svpo r1 greedy"]["training"]["lr"] == 5e-5  # config.lr when selection has none
    assert [e["checkpoint"] for e in report["training"]] == [
        "dpo r1 greedy",
        "svpo r1 greedy",
        "rft r1 greedy",
    ]
    md = out.read_text()
    assert "## Training (model selection on dev)" in md
    lines = [
        "| checkpoint | objective | lr | selected on | chosen step | passes | records | "
        "value head |",
        "| dpo r1 greedy | dpo | 0.0002 | greedy on arith:dev, every 10 steps, 200 problems | "
        "30 of 40 | 2.86 | 84 pairs | untrained |",
        "| svpo r1 greedy | svpo | 5e-05 | sbs-3-5 on dev.jsonl, every 50 steps, 500 problems | "
        "50 of 150 | 0.25 | 109 pairs + 1,469 step_q | trained |",
        "| rft r1 greedy | rft | — | — | — | — | — | untrained |",
    ]
    for line in lines:
        assert line in md, line
    page = out.with_suffix(".html").read_text()
    assert "<td>109 pairs + 1,469 step_q</td>" in page and "<td>30 of 40</td>" in page
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["training"][1]["exposure"]["passes"] == 50 * 8 / 1578
    assert data["training"][0]["selection"]["curve"] == DPO_CURVE
    assert "png_dev_curves" not in data["files"]  # plots off


def test_value_guided_rows_with_an_untrained_head_are_labelled(tmp_path):
    fresh = checkpoint(tmp_path / "ckpt" / "dpo-s0", {"objective": "dpo"})  # head never trained
    trained = checkpoint(tmp_path / "ckpt" / "svpo-s0", svpo_training())
    bare = tmp_path / "ckpt" / "bare"  # no svpo.json
    bare.mkdir()
    ev = tmp_path / "ev"
    runs = {
        "dpo s0 greedy": ("svpo", fresh, {"decoding": "greedy"}),
        "dpo s0 sbs": ("svpo", fresh, SBS),
        "dpo s0 bon": ("svpo", fresh, {"decoding": "bon", "num_samples": 5}),
        "dpo s0 maj": ("svpo", fresh, {"decoding": "maj", "num_samples": 5}),
        "dpo s0 logprob": ("svpo", fresh, {**SBS, "value_head": "none"}),
        "dpo s0 own": ("svpo", fresh, {**SBS, "value_head": str(trained)}),
        "svpo s0 sbs": ("svpo", trained, SBS),
        "bare mcts": ("svpo", bare, {"decoding": "mcts"}),
    }
    results = []
    for i, (name, (model, ckpt, extra)) in enumerate(runs.items()):
        args = {"pretrained": str(ckpt), **extra}
        results.append(f"{name}={write_run(ev / str(i), model, args, HF_OK, 1.0)}")
    out = tmp_path / "report.md"
    report = run_report(ReportConfig(results=results, out=str(out), pairs="all"))
    assert [r["name"] for r in report["rows"]] == [
        "dpo s0 greedy",
        "dpo s0 sbs (untrained head)",
        "dpo s0 bon (untrained head)",
        "dpo s0 maj",
        "dpo s0 logprob",  # ranked by log-prob: not value-guided
        "dpo s0 own",  # value_head=PATH: that folder's svpo.json says trained
        "svpo s0 sbs",
        "bare mcts (head of unknown training)",
    ]
    sbs = report["rows"][1]
    assert (sbs["value_guided"], sbs["head_trained"], sbs["checkpoint"]) == (True, False, "dpo s0")
    assert sbs["decoding_label"] == "sbs (untrained head)" and sbs["setting"] == "dpo"
    assert sbs["decoding"] == "svpo SBS(B1=3, B2=5), T=0.6, max 256 new tokens"  # pairing key
    pair = next(p for p in report["significance"]["pairs"] if p["row_a"] == "dpo s0 greedy")
    assert pair["row_b"] == "dpo s0 sbs (untrained head)"
    md = out.read_text()
    cell = "| dpo s0 sbs (untrained head) | measured | svpo SBS(B1=3, B2=5), T=0.6, max 256 new "
    assert cell + "tokens (untrained head) |" in md
    assert "| svpo s0 sbs | measured | svpo SBS(B1=3, B2=5), T=0.6, max 256 new tokens |" in md
    assert "| dpo s0 greedy | dpo s0 sbs (untrained head) | 8 | 0 | 0 |" in md
    assert "<td>dpo s0 bon (untrained head)</td>" in out.with_suffix(".html").read_text()


def test_rows_without_shared_problems_get_no_test(tmp_path):
    # unit: the old code answered p = 1.0 with 0 common problems
    result = paired_test({0: (True, "h0"), 1: (False, "h1")}, {0: (False, "x0"), 2: (True, None)})
    assert (result["comparable"], result["n_common"], result["n_other_problem"]) == (False, 0, 1)
    assert result["p"] is None and result["acc_a"] is None
    # the same questions in another step format: the loader changes the doc, so every doc_hash
    # differs (base greedy vs base-tool greedy)
    a = write_run(tmp_path / "a", "hf", {"pretrained": "base"}, HF_OK, 1.0)
    b = write_run(tmp_path / "b", "hf", {"pretrained": "base-tool"}, SBS_OK, 1.0)
    c = write_run(tmp_path / "c", "hf", {"pretrained": "other"}, SBS_OK, 1.0)
    samples = b.with_name(f"samples_svpo_arith_{DATE}.jsonl")
    records = [json.loads(line) for line in samples.read_text().splitlines()]
    for record in records:
        record["doc_hash"] = "tool-" + record["doc_hash"]
    samples.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = build_report(ReportConfig(results=[f"base greedy={a}", f"tool greedy={b}", f"C={c}"]))
    by_pair = {(p["row_a"], p["row_b"]): p for p in report["significance"]["pairs"]}
    apart = by_pair[("base greedy", "tool greedy")]
    assert (apart["comparable"], apart["p"], apart["n_other_problem"]) == (False, None, 8)
    tested = by_pair[("base greedy", "C")]
    assert (tested["comparable"], tested["n_common"], tested["p"]) == (True, 8, 0.625)
    assert by_pair[("tool greedy", "C")]["comparable"] is False
    from svpo_harness.cli import main

    out = tmp_path / "rep" / "report.md"
    args = ["report", f"base greedy={a}", f"tool greedy={b}", f"C={c}", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "1 tested pairs (2 not comparable: no shared problems) ->" in result.output
    md = out.read_text()
    line = "| base greedy | tool greedy | 0 | — | — | — | — | not comparable (no shared problems) |"
    assert line in md
    assert not re.search(r"\| base greedy \| tool greedy \|.*\d\.\d{4} \|", md)


def test_dev_curves_plot_one_line_per_trained_checkpoint(tmp_path):
    dpo = checkpoint(tmp_path / "ckpt" / "dpo", dpo_training())
    svpo = checkpoint(tmp_path / "ckpt" / "svpo", svpo_training())
    flat = checkpoint(tmp_path / "ckpt" / "sft", {"objective": "sft"})  # trained, no curve
    ev = tmp_path / "ev"
    results = [
        f"dpo r1={write_run(ev / 'a', 'hf', {'pretrained': str(dpo)}, HF_OK, 1.0)}",
        f"svpo r1={write_run(ev / 'b', 'hf', {'pretrained': str(svpo)}, SBS_OK, 1.0)}",
        f"sft r1={write_run(ev / 'c', 'hf', {'pretrained': str(flat)}, SBS_OK, 1.0)}",
    ]
    out = tmp_path / "rep" / "report.md"
    report = run_report(ReportConfig(results=results, out=str(out)))
    png = out.with_name("report_dev_curves.png")
    assert report["files"]["png_dev_curves"] == str(png)
    raw = png.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 20_000
    md = out.read_text()
    assert "![Dev accuracy vs optimizer step](report_dev_curves.png)" in md
    assert md.index("## Training (model selection on dev)") < md.index("report_dev_curves.png")
    assert out.with_suffix(".html").read_text().count('src="data:image/png;base64,') == 3
    from svpo_harness.pipelines.report.report_training import dev_curves

    curves = dev_curves(report["training"])
    assert [(c["label"], c["metric"], c["chosen_step"]) for c in curves] == [
        ("dpo r1 (dpo, lr 0.0002)", "greedy", 30),
        ("svpo r1 (svpo, lr 5e-05)", "sbs-3-5", 50),
    ]
    assert curves[0]["curve"] == [tuple(p) for p in DPO_CURVE]
    # no row with a curve: no plot
    plain = tmp_path / "plain" / "report.md"
    made = run_report(ReportConfig(results=[results[2]], out=str(plain)))
    assert "png_dev_curves" not in made["files"]
    assert not plain.with_name("report_dev_curves.png").exists()
    assert "Dev accuracy vs optimizer step" not in plain.read_text()


def test_training_facts_tolerate_missing_and_odd_keys():
    assert training_facts(None) is None and training_facts({"training": "x"}) is None
    facts = training_facts({"training": {"objective": "sft", "value_head_trained": "yes"}})
    assert facts == {
        "objective": "sft",
        "lr": None,
        "value_head_trained": False,  # only a JSON true counts
        "selection": None,
        "exposure": None,
    }
    odd = {"objective": "dpo", "selection": {"curve": [[0, 0.5], ["x", 1], [5], [10, 0.75]]}}
    facts = training_facts({"training": odd})
    assert facts["selection"]["curve"] == [(0, 0.5), (10, 0.75)]
    assert facts["selection"]["chosen_step"] is None
