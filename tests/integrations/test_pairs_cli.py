"""`svpo pairs`: re-extraction from saved trees: typed valid output, atomic, bad input named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from svpo_harness.cli import main
from svpo_harness.core.jsonl_io import append_jsonl, read_jsonl_records
from svpo_harness.core.pairs import extract_records
from svpo_harness.core.schemas import PairRecord, PathRecord, StepQRecord, TreeNode, TreeRecord
from svpo_harness.core.step_format import ARITH


def make_tree(question_id: str, q_second: float) -> TreeRecord:
    """Root, a good step (Q 1) with a correct answer below it, and a second step with Q q_second."""

    def node(i: int, parent: int | None, depth: int, n: int, w: float, **kw: Any) -> TreeNode:
        fields: dict[str, Any] = dict(
            node_id=i, parent_id=parent, depth=depth, token_ids=(10 * i,) if i else (),
            text=f"s{i}", prior=1.0, logprob_mean=None, N=n, W=w, value=None, terminal=False,
            terminal_reason=None, answer=None, reward=None,
        )  # fmt: skip
        return TreeNode(**{**fields, **kw})

    done = dict(terminal=True, terminal_reason="answer", answer="7", reward=1.0)
    nodes = (
        node(0, None, 0, 5, 2.0),
        node(1, 0, 1, 2, 2.0),
        node(2, 0, 1, 2, 2 * q_second),
        node(3, 1, 2, 1, 1.0, **done),
    )
    return TreeRecord(
        question_id=question_id, question="3 + 4?", gold_answer="7",
        step_format=ARITH.to_dict(), tokenizer_fingerprint="sha256:t", chat_template=None,
        prompt_ids=(1, 2), nodes=nodes,
    )  # fmt: skip


def write_trees(path: Path, *trees: TreeRecord) -> Path:
    for t in trees:
        append_jsonl(path, t)
    return path


def run(*args: str | Path) -> Any:
    return CliRunner().invoke(main, ["pairs", *map(str, args)])


def test_writes_typed_records_that_validate(tmp_path):
    trees = [make_tree("a", -1.0), make_tree("b", 0.0), make_tree("c", 0.9)]
    first = write_trees(tmp_path / "t1.jsonl", *trees[:2])
    second = write_trees(tmp_path / "t2.jsonl", trees[2])
    out = tmp_path / "out" / "pairs.jsonl"
    result = run(first, second, "-o", out, "--rule", "all_pairs", "--min-q-gap", "1.0")
    assert result.exit_code == 0, result.output
    records = list(read_jsonl_records(out, None))  # validates every line
    expected = [r for t in trees for r in extract_records(t, rule="all_pairs", min_q_gap=1.0)]
    assert records == expected
    pairs = [r for r in records if isinstance(r, PairRecord)]
    assert [p.question_id for p in pairs] == ["a", "b"]  # c's gap is 0.1
    assert all(p.q_chosen - p.q_rejected >= 1.0 for p in pairs)
    assert sum(isinstance(r, StepQRecord) for r in records) == 9
    assert sum(isinstance(r, PathRecord) for r in records) == 3
    summary = result.output.strip().splitlines()[-1]
    assert "trees=3 pairs=2 step_q=9 paths=3 trees_without_pairs=1" in summary
    assert sorted(p.name for p in out.parent.iterdir()) == ["pairs.jsonl"]  # no temp file left


def test_refuses_to_overwrite_unless_asked(tmp_path):
    trees = write_trees(tmp_path / "trees.jsonl", make_tree("a", -1.0))
    out = tmp_path / "pairs.jsonl"
    out.write_text("old\n")
    result = run(trees, "-o", out)
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert out.read_text() == "old\n"
    result = run(trees, "-o", out, "--overwrite", "--rule", "best_vs_rest")
    assert result.exit_code == 0, result.output
    assert len([r for r in read_jsonl_records(out, "pair")]) == 1


def test_bad_record_names_file_line_and_field(tmp_path):
    trees = write_trees(tmp_path / "trees.jsonl", make_tree("a", -1.0), make_tree("b", -1.0))
    lines = trees.read_text().splitlines()
    broken = json.loads(lines[1])
    del broken["gold_answer"]
    trees.write_text("\n".join([lines[0], json.dumps(broken), lines[0]]) + "\n")
    out = tmp_path / "pairs.jsonl"
    result = run(trees, "-o", out)
    assert result.exit_code == 2
    assert f"{trees}:2: field 'gold_answer'" in result.output and "--skip-bad" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == [trees]  # no output, no temp file
    result = run(trees, "-o", out, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "bad_lines_skipped=1" in result.output and "trees=2 pairs=2" in result.output


def test_invalid_json_torn_tail_and_wrong_kind(tmp_path):
    good = json.dumps(make_tree("a", -1.0).to_dict())
    trees = tmp_path / "trees.jsonl"
    trees.write_text(good + "\n{not json\n" + good + "\n")
    result = run(trees, "-o", tmp_path / "p.jsonl")
    assert result.exit_code == 2 and f"{trees}:2: field '(line)'" in result.output
    # A torn last line (a killed annotate run) is ignored with a warning, as readers do.
    trees.write_text(good + "\n" + good[:50])
    result = run(trees, "-o", tmp_path / "p.jsonl")
    assert result.exit_code == 0, result.output
    assert "torn last line" in result.output and "trees=1 " in result.output
    # A pairs file given as trees is an error, not zero trees.
    result = run(tmp_path / "p.jsonl", "-o", tmp_path / "q.jsonl")
    assert result.exit_code == 2 and "p.jsonl:1: field 'type'" in result.output
