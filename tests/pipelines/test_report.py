"""`svpo report`: leaderboard, exact McNemar and plots from lm-eval output folders.

The quick tests write lm-eval's exact layout themselves
(``<output_path>/<model>/results_<date>.json`` plus ``samples_<task>_<date>.jsonl``, records as
lm-eval 0.4.13's evaluator and tracker write them); the slow test runs real lm-eval on the shipped
demo model.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from svpo_harness.pipelines.report.report import ReportConfig, ReportError, build_report
from svpo_harness.pipelines.report.report_stats import mcnemar_exact

DATE = "2026-12-01T10-00-00.000000"
GEN = {"until": ["\n\n", "Question:"], "max_gen_toks": 256, "do_sample": False, "temperature": 0.0}
# strict correctness per problem of the two main rows (doc_ids 0..7)
HF_OK = [1, 1, 0, 0, 1, 0, 1, 0]
SBS_OK = [1, 0, 1, 1, 1, 1, 1, 0]
SBS_TOKENS = [120, 80, 200, 150, 90, 60, 300, 100]  # tokens_generated in the search log


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _context(i: int) -> str:
    return f"Question: Tom has {i} cards and buys {i + 2} more. How many now?\nAnswer:\n"


def _response(i: int, ok: int) -> str:
    total = 2 * i + 2 if ok else 2 * i + 3
    return f"He buys {i + 2}, so {i} + {i + 2} = {total}.\nThe answer is {total}."


def _stderr(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def write_run(
    root: Path,
    model: str,
    args: dict,
    correct: list[int],
    seconds: float,
    task: str = "svpo_arith",
    samples: bool = True,
) -> Path:
    """One lm-eval run on one task, in lm-eval's layout; returns the results file."""
    name = re.sub(r"[\"<>:/|\\?*\[\]]+", "__", str(args["pretrained"]))  # sanitize_model_name
    folder = root / name
    folder.mkdir(parents=True)
    flexible = [max(c, int(i == 7)) for i, c in enumerate(correct)]  # doc 7: flexible only
    n = len(correct)
    metrics = {"acc": correct, "acc_flexible": flexible, "math_verify": correct}
    result = {"name": task, "alias": task, "sample_len": n}
    for key, values in metrics.items():
        result[f"{key},none"] = sum(values) / n
        result[f"{key}_stderr,none"] = _stderr([float(v) for v in values])
    data = {
        "results": {task: result},
        "group_subtasks": {},
        "configs": {task: {"task": task, "generation_kwargs": GEN, "num_fewshot": 0}},
        "versions": {task: 1.0},
        "n-shot": {task: 0},
        "higher_is_better": {task: {k: True for k in metrics}},
        "n-samples": {task: {"original": 1000, "effective": n}},
        "config": {"model": model, "model_args": args, "batch_size": "8", "limit": float(n)},
        "model_name": str(args["pretrained"]),
        "model_name_sanitized": name,
        "total_evaluation_time_seconds": str(seconds),
    }
    path = folder / f"results_{DATE}.json"
    path.write_text(json.dumps(data, indent=2))
    if samples:
        with (folder / f"samples_{task}_{DATE}.jsonl").open("w") as handle:
            for i, ok in enumerate(correct):
                doc = {"question": _context(i), "answer": str(2 * i + 2)}
                resp = _response(i, ok)
                record = {
                    "doc_id": i,
                    "doc": doc,
                    "target": doc["answer"],
                    "arguments": {"gen_args_0": {"arg_0": _context(i), "arg_1": GEN}},
                    "resps": [[resp]],
                    "filtered_resps": [resp],
                    "filter": "none",
                    "metrics": list(metrics),
                    "doc_hash": _hash(json.dumps(doc, indent=2)),
                    "prompt_hash": _hash(_context(i)),
                    "target_hash": _hash(doc["answer"]),
                    **{k: float(v[i]) for k, v in metrics.items()},
                }
                handle.write(json.dumps(record) + "\n")
    return path


@pytest.fixture(scope="module")
def demo_tokenizer_dir() -> Path:
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    return shipped_demo_model()


@pytest.fixture
def runs(tmp_path: Path, demo_tokenizer_dir: Path) -> dict[str, Path]:
    """hf greedy (re-tokenized) and svpo SBS (search log) on 8 problems, plus an hf run whose
    tokenizer does not exist and that has no samples file."""
    root = tmp_path / "evals"
    log = tmp_path / "evals" / "sbs.trees.jsonl"
    hf = write_run(root / "hf", "hf", {"pretrained": str(demo_tokenizer_dir)}, HF_OK, 4.0)
    sbs_args = {
        "pretrained": str(demo_tokenizer_dir),
        "decoding": "sbs",
        "beam_width": 3,
        "samples_per_step": 5,
        "search_log": str(log),
    }
    sbs = write_run(root / "sbs", "svpo", sbs_args, SBS_OK, 20.0)
    with log.open("w") as handle:  # a record of another decoding first: skipped
        handle.write(
            json.dumps(
                {
                    "context": _context(0),
                    "decoding": "greedy",
                    "tokens_generated": 9999,
                    "output": "",
                }
            )
            + "\n"
        )
        for i, tokens in enumerate(SBS_TOKENS):
            record = {
                "context": _context(i),
                "until": ["\n\n"],
                "output": "",
                "schema_version": 1,
                "key": _context(i),
                "decoding": "sbs",
                "tokens_generated": tokens,
            }
            handle.write(json.dumps(record) + "\n")
    lost = write_run(
        root / "lost", "hf", {"pretrained": str(tmp_path / "gone")}, [1, 0], 1.0, samples=False
    )
    return {"root": root, "hf": hf, "sbs": sbs, "lost": lost, "log": log}


def test_mcnemar_exact_against_hand_computation():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(1, 3) == pytest.approx(2 * (1 + 4) / 16)  # 0.625
    assert mcnemar_exact(3, 1) == mcnemar_exact(1, 3)
    assert mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_exact(10, 10) == 1.0  # capped at 1
    assert mcnemar_exact(0, 1000) == 2.0**-999  # exact arithmetic, no overflow on big n
    assert 0.0 < mcnemar_exact(2000, 2150) < 0.05
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_leaderboard_numbers_tokens_and_seconds(runs, demo_tokenizer_dir):
    from transformers import AutoTokenizer

    report = build_report(ReportConfig(results=[str(runs["root"])]))
    rows = {r["name"]: r for r in report["rows"]}
    assert len(rows) == 3 and report["tasks"] == ["svpo_arith"]
    hf = next(r for r in rows.values() if r["results_file"] == str(runs["hf"]))
    sbs = next(r for r in rows.values() if r["results_file"] == str(runs["sbs"]))
    assert hf["name"] == f"hf greedy ({demo_tokenizer_dir.name})"
    assert sbs["name"].startswith("svpo sbs(3,5)")
    assert sbs["decoding"] == "svpo SBS(B1=3, B2=5), T=0.6, max 256 new tokens"
    assert hf["decoding"] == "hf greedy, max 256 new tokens"
    assert (hf["n"], hf["acc"], sbs["acc"]) == (8, 0.5, 0.75)
    assert hf["acc_flexible"] == 5 / 8 and sbs["acc_stderr"] == pytest.approx(_stderr(SBS_OK))
    assert (hf["seconds_per_question"], sbs["seconds_per_question"]) == (0.5, 2.5)
    # svpo: every token of the search, from its log (the other decoding's record skipped)
    assert sbs["tokens_per_question"] == sum(SBS_TOKENS) / 8
    assert sbs["tokens_source"].startswith("search log")
    # hf: the responses re-tokenized with the model's tokenizer
    tok = AutoTokenizer.from_pretrained(demo_tokenizer_dir)
    lengths = [
        len(tok.encode(_response(i, ok), add_special_tokens=False)) for i, ok in enumerate(HF_OK)
    ]
    assert hf["tokens_per_question"] == pytest.approx(sum(lengths) / 8)
    assert hf["tokens_source"].startswith("re-tokenized")
    # a tokenizer that cannot load and a run without samples: notes, no crash
    lost = next(r for r in rows.values() if r["results_file"] == str(runs["lost"]))
    assert lost["tokens_per_question"] is None and lost["samples_file"] is None
    assert any("no samples file" in n for n in lost["notes"])


def test_mcnemar_pairs_and_quoted_rows_never_tested(runs, tmp_path):
    refs = tmp_path / "refs.yaml"
    refs.write_text(
        "- {name: Paper SBS, task: ARITH, acc: 0.9, seconds_per_question: 2.3, source: a paper}\n"
    )
    report = build_report(
        ReportConfig(
            results=[str(runs["hf"]), str(runs["sbs"]), str(runs["lost"])], reference=str(refs)
        )
    )
    quoted = [r for r in report["rows"] if r["kind"] == "quoted"]
    hf_name, sbs_name = (r["name"] for r in report["rows"][:2])
    assert len(quoted) == 1 and quoted[0]["task"] == "svpo_arith"  # ARITH -> our task
    pairs = report["significance"]["pairs"]
    assert len(pairs) == 1  # hf vs sbs only: the quoted row and the sample-less run are out
    pair = pairs[0]
    assert "McNemar" in report["significance"]["test"]
    # hand count over doc_ids 0..7: hf right & sbs wrong: doc 1; sbs right & hf wrong: 2, 3, 5
    assert (pair["row_a"], pair["row_b"]) == (hf_name, sbs_name)
    assert (pair["n_common"], pair["b"], pair["c"]) == (8, 1, 3)
    assert pair["p"] == pytest.approx(0.625)
    assert (pair["acc_a"], pair["acc_b"]) == (0.5, 0.75)


def test_pairs_use_only_the_problems_both_rows_have(tmp_path, demo_tokenizer_dir):
    args = {"pretrained": str(demo_tokenizer_dir)}
    a = write_run(tmp_path / "a", "hf", args, [1, 1, 1, 0, 0, 0], 1.0)
    b = write_run(tmp_path / "b", "hf", args, [0, 0, 0, 1], 1.0)  # a --limit 4 run
    report = build_report(ReportConfig(results=[f"A={a}", f"B={b}"]))
    assert [r["name"] for r in report["rows"]] == ["A", "B"]
    (pair,) = report["significance"]["pairs"]
    assert (pair["n_common"], pair["b"], pair["c"]) == (4, 3, 1)
    assert pair["p"] == pytest.approx(mcnemar_exact(3, 1))


def test_files_pngs_html_and_cli(runs, tmp_path):
    from svpo_harness.cli import main

    out = tmp_path / "rep" / "report.md"
    result = CliRunner().invoke(
        main, ["report", str(runs["root"]), "--out", str(out), "--reference", "alphamath"]
    )
    assert result.exit_code == 0, result.output
    md = out.read_text()
    assert "quoted, not measured" in md and "AlphaMath-7B SBS(3,5)" in md
    assert "exact McNemar" in md and "![Accuracy per row](report_accuracy.png)" in md
    # the shipped demo model's head was never trained: its SBS row says so wherever it is named
    sbs = "svpo sbs(3,5) (demo-model) (untrained head)"
    pair = f"| hf greedy (demo-model) | {sbs} | 8 | 1 | 3 | 50.00 | 75.00 |"
    assert f"{pair} 0.6250 |" in md
    data = json.loads(out.with_suffix(".json").read_text())
    math_rows = [r for r in data["rows"] if r["task"] == "svpo_math"]
    assert {r["kind"] for r in math_rows} == {"quoted"}
    assert any(r["acc"] == 0.6574 and r["seconds_per_question"] == 2.3 for r in math_rows)
    assert all(p["task"] == "svpo_arith" for p in data["significance"]["pairs"])
    for name in ("report_accuracy.png", "report_acc_vs_tokens.png"):
        png = out.with_name(name)
        raw = png.read_bytes()
        assert raw[:8] == b"\x89PNG\r\n\x1a\n" and len(raw) > 20_000, name
        import matplotlib.image

        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 600 and pixels.std() > 0.05
    page = out.with_suffix(".html").read_text()
    assert page.count('src="data:image/png;base64,') == 2
    assert re.findall(r'(?:src|href)="(?!data:)', page) == []  # nothing outside the file
    assert "<style>" in page and 'class="quoted"' in page


def test_malformed_inputs_name_the_file(runs, tmp_path):
    from svpo_harness.cli import main

    bad = tmp_path / "bad" / "m" / f"results_{DATE}.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"results": {"svpo_arith": ')
    with pytest.raises(ReportError, match=re.escape(str(bad))):
        build_report(ReportConfig(results=[str(tmp_path / "bad")]))
    bad.write_text('{"config": {}}')
    with pytest.raises(ReportError, match="not an lm-eval results file"):
        build_report(ReportConfig(results=[str(bad)]))
    layout = json.loads(runs["lost"].read_text())
    layout["n-samples"] = {"svpo_arith": 2}  # not lm-eval's {"original", "effective"}
    bad.write_text(json.dumps(layout))
    with pytest.raises(ReportError, match=re.escape(f"{bad}: unexpected lm-eval results layout")):
        build_report(ReportConfig(results=[str(bad)]))
    samples = runs["hf"].with_name(f"samples_svpo_arith_{DATE}.jsonl")
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join([lines[0], "{oops", *lines[2:]]) + "\n")
    with pytest.raises(ReportError, match=re.escape(f"{samples} line 2")):
        build_report(ReportConfig(results=[str(runs["hf"])]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no lm-eval results"):
        build_report(ReportConfig(results=[str(tmp_path / "empty")]))
    refs = tmp_path / "refs.yaml"
    refs.write_text("- {name: x, task: svpo_arith, acc: 65.7}\n")
    with pytest.raises(ReportError, match=r"refs.yaml entry 1: acc must be a fraction"):
        build_report(ReportConfig(results=[str(runs["sbs"])], reference=str(refs)))
    result = CliRunner().invoke(main, ["report", str(runs["hf"]), "--out", str(tmp_path / "r.md")])
    assert result.exit_code == 1 and f"{samples} line 2" in result.output


@pytest.mark.slow
def test_real_lm_eval_runs_hf_and_svpo_greedy(tmp_path):
    """lm-eval on the shipped demo model (10 svpo_arith problems), then `svpo report`."""
    from svpo_harness.pipelines.demo.demo_model import copy_shipped_demo_model

    model = copy_shipped_demo_model(tmp_path / "demo-model")
    log = tmp_path / "svpo-greedy.trees.jsonl"
    common = [
        "--tasks",
        "svpo_arith",
        "--limit",
        "10",
        "--log_samples",
        "--device",
        "cpu",
        "--batch_size",
        "8",
    ]
    runs = {
        "hf-greedy": ["--model", "hf", "--model_args", f"pretrained={model}"],
        "svpo-greedy": [
            "--model",
            "svpo",
            "--model_args",
            f"pretrained={model},decoding=greedy,search_log={log}",
        ],
    }
    for name, args in runs.items():
        cmd = [
            sys.executable,
            "-m",
            "svpo_harness.cli",
            "eval",
            *args,
            *common,
            "--output_path",
            str(tmp_path / name),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "report" / "report.md"
    cmd = [
        sys.executable,
        "-m",
        "svpo_harness.cli",
        "report",
        str(tmp_path / "hf-greedy"),
        str(tmp_path / "svpo-greedy"),
        "--out",
        str(out),
        "--reference",
        "alphamath",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    measured = {r["model"]: r for r in data["rows"] if r["kind"] == "measured"}
    assert set(measured) == {"hf", "svpo"}
    assert all(r["n"] == 10 and r["samples_file"] for r in measured.values())
    assert measured["svpo"]["tokens_source"].startswith("search log")
    assert measured["hf"]["tokens_source"].startswith("re-tokenized")
    assert all(r["tokens_per_question"] > 5 for r in measured.values())
    # greedy search generates the answer's tokens only: its log and hf's re-tokenized text agree
    hf_tokens, svpo_tokens = (measured[m]["tokens_per_question"] for m in ("hf", "svpo"))
    assert abs(svpo_tokens - hf_tokens) <= 0.1 * hf_tokens
    assert all(r["seconds_per_question"] > 0 for r in measured.values())
    (pair,) = data["significance"]["pairs"]
    # McNemar by hand from the two runs' per-question records: discordant counts, exact p
    right = {
        name: {
            s["doc_id"]: s["acc"] >= 0.5
            for s in map(json.loads, next((tmp_path / name).rglob("samples_*.jsonl")).open())
        }
        for name in runs
    }
    hf, sv = right["hf-greedy"], right["svpo-greedy"]
    only_hf = sum(hf[d] and not sv[d] for d in hf)
    only_sv = sum(sv[d] and not hf[d] for d in hf)
    n = only_hf + only_sv
    tail = sum(math.comb(n, k) for k in range(min(only_hf, only_sv) + 1))
    assert pair["n_common"] == 10 and sorted((pair["b"], pair["c"])) == sorted((only_hf, only_sv))
    assert pair["p"] == pytest.approx(min(1.0, 2 * tail / 2**n))
    for key in ("png_accuracy", "png_acc_vs_tokens", "html"):
        assert Path(data["files"][key]).stat().st_size > 10_000
