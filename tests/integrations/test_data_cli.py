"""`svpo data import|list`: writes the SVPO_DATA_DIR layout; bad input names file:line:field."""

from __future__ import annotations

import json

from click.testing import CliRunner

from svpo_harness.cli import main
from svpo_harness.data.problems import load_problems


def test_import_writes_the_layout_loaders_read(tmp_path, shared_data):
    out = tmp_path / "data"
    result = CliRunner().invoke(
        main,
        [
            "data",
            "import",
            "svamp",
            "--from",
            str(shared_data / "svamp" / "sample.jsonl"),
            "--to",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = load_problems("svamp", "test", data_dir=out)
    original = load_problems("svamp", "test", data_dir=shared_data)[:20]
    assert [r["answer"] for r in rows] == [r["answer"] for r in original]
    assert [r["question"] for r in rows] == [r["question"] for r in original]


def test_import_reports_the_bad_line(tmp_path):
    bad = tmp_path / "in.jsonl"
    bad.write_text(
        json.dumps({"input": "q", "target": 3}) + "\n" + json.dumps({"input": "q"}) + "\n"
    )
    result = CliRunner().invoke(
        main, ["data", "import", "mawps", "--from", str(bad), "--to", str(tmp_path / "o")]
    )
    assert result.exit_code != 0
    assert "in.jsonl:2" in result.output and "'target'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o" / "mawps" / "test.jsonl").exists()


def test_list_names_every_set():
    result = CliRunner().invoke(main, ["data", "list"])
    assert (
        result.exit_code == 0
        and "gaokao2023en" in result.output
        and "openai/gsm8k" in result.output
    )
