"""`svpo grade` through click's CliRunner on the command object itself."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from svpo_harness.cli.grade import grade


def _write(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_lm_eval_samples_file(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "samples_gsm8k.jsonl",
        [
            {"doc": {"answer": "So 3.\n#### 1,000"}, "resps": [["The answer is 1000."]]},
            {"doc": {"answer": "#### 5"}, "resps": [["I get 5 apples"]]},  # fallback only
            {"doc": {"answer": "#### 7"}, "resps": [["\\boxed{8}"]]},
        ],
    )
    out = tmp_path / "verdicts.jsonl"
    res = CliRunner().invoke(
        grade,
        [str(f), "--pred-field", "resps.0.0", "--gold-field", "doc.answer", "--out", str(out),
         "--processes", "0"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "accuracy_strict: 0.3333 (1/3)" in res.output
    assert "accuracy_flexible: 0.6667 (2/3)" in res.output
    assert "n_missing_answer: 1" in res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["flexible"] for r in rows] == [True, True, False]
    assert rows[0]["gold"] == "1,000" and rows[1]["pred_kind"] == "last_number"


def test_given_answers_and_numeric_gold(tmp_path: Path) -> None:
    f = _write(tmp_path / "a.jsonl", [{"p": "0.5", "g": 0.5}, {"p": "1/3", "g": 0.3333333}])
    res = CliRunner().invoke(
        grade, [str(f), "--pred-field", "p", "--gold-field", "g", "--no-pred-extract"]
    )
    assert res.exit_code == 0, res.output
    assert "accuracy_flexible: 1.0000 (2/2)" in res.output


def test_bad_json_names_file_and_line(tmp_path: Path) -> None:
    f = _write(tmp_path / "bad.jsonl", [{"p": "1", "g": "1"}, "{not json"])
    res = CliRunner().invoke(grade, [str(f), "--pred-field", "p", "--gold-field", "g"])
    assert res.exit_code == 2
    assert f"{f}:2: invalid JSON" in res.output
    assert "Traceback" not in res.output


def test_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    f = _write(tmp_path / "m.jsonl", [{"doc": {"answer": "1"}, "resps": [["1"]]}, {"doc": {}}])
    res = CliRunner().invoke(
        grade, [str(f), "--pred-field", "resps.0.0", "--gold-field", "doc.answer"]
    )
    assert res.exit_code == 2
    assert f"{f}:2: field 'resps.0.0' not found" in res.output


def test_wrong_type_and_bad_index(tmp_path: Path) -> None:
    f = _write(tmp_path / "t.jsonl", [{"resps": [["1"]], "g": "1"}])
    res = CliRunner().invoke(grade, [str(f), "--pred-field", "resps.0", "--gold-field", "g"])
    assert res.exit_code == 2 and "field 'resps.0' is a list" in res.output
    res = CliRunner().invoke(grade, [str(f), "--pred-field", "resps.3.0", "--gold-field", "g"])
    assert res.exit_code == 2 and "no index '3'" in res.output


def test_model_solutions_file(shared_data: Path) -> None:
    res = CliRunner().invoke(
        grade,
        [str(shared_data / "gsm8k/model_solutions.jsonl"), "--pred-field",
         "6b_finetuning.solution", "--gold-field", "ground_truth", "--processes", "2"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in (shared_data / "gsm8k/model_solutions.jsonl").open()]
    n_ok = sum(r["6b_finetuning"]["is_correct"] for r in rows)
    assert f"accuracy_flexible: {n_ok / len(rows):.4f} ({n_ok}/{len(rows)})" in res.output


def test_serialised_extracted_answers(tmp_path: Path) -> None:
    from dataclasses import asdict

    from svpo_harness.grading import extract_answer

    found = extract_answer(r"so $\boxed{\frac12}$")
    f = _write(tmp_path / "e.jsonl", [{"p": asdict(found), "g": "0.5"}, {"p": "2", "g": "3"}])
    res = CliRunner().invoke(
        grade, [str(f), "--pred-field", "p", "--gold-field", "g", "--no-pred-extract",
                "--processes", "0"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "accuracy_flexible: 0.5000 (1/2)" in res.output
