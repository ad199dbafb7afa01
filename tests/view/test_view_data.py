"""`svpo view` without a browser: what the page is given (known numbers on known nodes), how
hostile text is embedded, the command's inputs and errors, and that the wheel ships the assets."""

from __future__ import annotations

import configparser
import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from view_inputs import HOSTILE

from svpo_harness.cli import main
from svpo_harness.pipelines.view import ViewError, embed_json, load, render

ROOT = Path(__file__).resolve().parents[2]


def _node(data: dict, tree: int, node: int) -> dict:
    body = data["trees"][tree]
    return dict(zip(body["fields"], body["nodes"][node], strict=True))


def test_annotation_folder_numbers_pairs_and_final_answer(annotation):
    data = load([annotation])
    assert data["kind"] == "trees"
    solved, unsolved, evil = data["index"]
    assert solved == {
        "id": "q-solved", "question": "Tom has 3 cards and buys 4 more. How many now?",
        "gold": "7", "answer": "7", "correct": True, "solved": True, "pairs": 2, "nodes": 5,
    }  # fmt: skip
    assert (unsolved["solved"], unsolved["correct"], unsolved["answer"]) == (False, False, "5")
    assert (evil["pairs"], evil["question"]) == (1, "Say " + HOSTILE)
    one = _node(data, 0, 1)
    assert (one["N"], one["Q"], one["V"], one["prior"], one["parent"]) == (
        3,
        0.333333,
        0.25,
        0.9,
        0,
    )
    four = _node(data, 0, 4)
    assert (four["terminal"], four["answer"], four["reward"], four["Q"]) == (
        "answer",
        "8",
        -1.0,
        -1.0,
    )
    assert data["trees"][0]["path"] == [0, 1, 3]  # most visits: #1 (3) over #2 (1), then #3
    assert data["trees"][0]["pairs"] == [[1, 2, 0.333333, -1.0], [3, 4, 1.0, -1.0]]
    assert load([annotation / "trees.jsonl"]) == data  # the trees file reads its pairs beside it


def test_search_log_levels_and_samples_beside_it(search_log):
    data = load([search_log])
    assert data["kind"] == "search"
    first, second = data["index"]
    assert first["id"] == "arith-test-00003"  # the question id from lm-eval's sample
    assert (first["gold"], first["answer"], first["correct"], first["solved"]) == (
        "7",
        "7",
        True,
        True,
    )
    assert (second["id"], second["answer"], second["gold"], second["correct"]) == (
        "arith-test-00005", "9", "9", False,
    )  # fmt: skip
    body = data["trees"][0]
    assert body["path"] == [0, 1, 5] and body["chosen"] == 5 and body["tokens"] == 43
    status = {
        i: dict(zip(body["fields"], row, strict=True))["status"]
        for i, row in zip(body["ids"], body["nodes"], strict=True)
    }
    assert status == {
        0: "root",
        1: "kept",
        2: "kept",
        3: "pruned",
        4: "duplicate",
        5: "finished",
        6: "pruned",
        7: "finished",
        8: "pruned",
    }
    # without its samples file a question is named by its line and has no answers
    (next(search_log.parent.glob("*/samples_*.jsonl"))).unlink()
    bare = load([search_log])
    assert [e["id"] for e in bare["index"]] == ["1", "2"]
    assert bare["index"][0]["gold"] is None and bare["index"][0]["correct"] is None


def test_per_rank_logs_are_read_together(search_log):
    lines = search_log.read_text().splitlines()
    search_log.with_name("search_log.rank0.jsonl").write_text(lines[0] + "\n")
    search_log.with_name("search_log.rank1.jsonl").write_text(lines[1] + "\n")
    search_log.unlink()
    data = load([search_log])
    assert [e["id"] for e in data["index"]] == ["arith-test-00003", "arith-test-00005"]
    assert len(data["sources"]) == 3  # two ranks and the samples file


def test_embedded_json_cannot_close_its_script_and_parses_back():
    value = {"s": HOSTILE, "t": "</SCRIPT ><!-- \u2029"}
    text = embed_json(value)
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == value


def test_page_has_one_script_end_per_block_and_loads_nothing(annotation):
    page = render(load([annotation]), "trees <b>")
    blocks = page.count('<script type="application/json"')
    assert blocks == 4  # the index and three trees
    assert page.lower().count("</script") == blocks + 1  # + the viewer's own script
    assert "trees &lt;b&gt;" in page and "<b>" not in page
    markup = re.sub(r'(<script type="application/json"[^>]*>)[^<]*', r"\1", page)
    assert not re.search(r"\b(src|href)\s*=", markup)  # nothing to fetch, nothing to follow
    assert "https://" not in markup and "http://" not in markup
    assert "default-src 'none'" in page  # the CSP: no request of any kind


def test_cli_writes_the_page_and_names_bad_input(annotation, search_log, tmp_path):
    runner = CliRunner()
    out = tmp_path / "t.html"
    done = runner.invoke(main, ["view", str(annotation), "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("3 trees, 10 nodes, 3 pairs -> ") and out.is_file()
    done = runner.invoke(main, ["view", str(search_log), "--out", str(tmp_path / "s.html")])
    assert done.exit_code == 0 and done.output.startswith("2 searches, 11 nodes, 0 pairs")
    bad = runner.invoke(main, ["view", str(annotation / "pairs.jsonl")])
    assert bad.exit_code == 1 and "pairs.jsonl line 1: expected a tree record" in bad.output
    assert "Traceback" not in bad.output
    missing = runner.invoke(main, ["view", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 1 and "nope.jsonl: no such file" in missing.output
    (tmp_path / "torn.jsonl").write_text('{"tree": [], "schema_version": 2}\n')
    torn = runner.invoke(main, ["view", str(tmp_path / "torn.jsonl")])
    assert torn.exit_code == 1 and "torn.jsonl line 1: not a search log record" in torn.output


def test_broken_tree_record_names_file_line_and_field(annotation):
    trees = annotation / "trees.jsonl"
    lines = trees.read_text().splitlines()
    record = json.loads(lines[1])
    record["nodes"][1]["N"] = "many"
    trees.write_text(lines[0] + "\n" + json.dumps(record) + "\n")
    try:
        load([annotation])
    except ViewError as err:
        assert str(err).startswith(f"{trees}:2: field 'nodes[1].N'")
    else:
        raise AssertionError("no ViewError")


def test_wheel_ships_the_viewer_assets():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = cfg["options.package_data"]["svpo_harness.pipelines.view"].split(",")
    folder = ROOT / "svpo_harness" / "pipelines" / "view"
    shipped = {p.name for pat in patterns for p in folder.glob(pat.strip())}
    assert shipped == {"viewer.js", "viewer.css"}


def test_view_needs_no_torch(annotation, tmp_path):
    """`svpo view` reads JSON and writes HTML: it runs where torch cannot be imported."""
    code = (
        "import sys\n"
        "for heavy in ('torch', 'transformers', 'lm_eval', 'vllm'):\n"
        "    sys.modules[heavy] = None\n"
        "from svpo_harness.cli import main\n"
        f"main(['view', {str(annotation)!r}, '--out', {str(tmp_path / 't.html')!r}])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("3 trees, 10 nodes, 3 pairs")
