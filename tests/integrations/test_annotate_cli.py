"""`svpo annotate` end to end on the shipped demo model (arith:train): records, resume, refusal,
bad input, shards. The kill test (SIGKILL of the process group mid-run) is in the slow suite."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from svpo_harness.core.jsonl_io import read_jsonl_records

SVPO = str(Path(sys.executable).parent / "svpo")  # the console script of this environment
ARGS = ["--simulations", "8", "--children", "3", "--temperature", "1.0", "--min-visits", "1"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from svpo_harness.pipelines.demo.demo_model import copy_shipped_demo_model

    return copy_shipped_demo_model(tmp_path_factory.mktemp("demo") / "model")


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Trees are compared token for token: one torch thread here and in every `svpo` started
    (OMP_NUM_THREADS), so no float sum depends on this machine's core count."""
    import torch

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def svpo(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    cmd = [SVPO, *args]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out


def annotate(model: Path, out: Path, *extra: str, check: bool = True):
    return svpo("annotate", "--model", str(model), "--data", "arith:train", "--out", str(out),
                *ARGS, *extra, check=check)  # fmt: skip


def trees_by_key(folder: Path) -> dict:
    return {
        (t.question_id, t.tree_index): t for t in read_jsonl_records(folder / "trees.jsonl", "tree")
    }


def assert_same_trees(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, ta in a.items():
        tb = b[key]
        assert ta.prompt_ids == tb.prompt_ids and len(ta.nodes) == len(tb.nodes)
        for na, nb in zip(ta.nodes, tb.nodes, strict=True):
            assert (na.parent_id, na.token_ids, na.text, na.reward, na.terminal_reason, na.N) == (
                nb.parent_id, nb.token_ids, nb.text, nb.reward, nb.terminal_reason, nb.N,
            )  # fmt: skip
            assert na.W == pytest.approx(nb.W, abs=1e-5)
            assert (na.value is None) == (nb.value is None)
            if na.value is not None:
                assert na.value == pytest.approx(nb.value, abs=1e-5)


def test_annotate_writes_valid_trees_and_pairs(demo, tmp_path):
    out = tmp_path / "run"
    result = annotate(demo, out, "--limit", "4")
    assert "annotate: 4 trees (4 new) of 4 questions" in result.stdout
    trees = trees_by_key(out)
    assert len(trees) == 4
    records = list(read_jsonl_records(out / "pairs.jsonl", ("pair", "step_q", "path")))
    pairs = [r for r in records if r.KIND == "pair"]
    assert pairs, "the demo model at temperature 1.0 yields some preference pairs"
    for pair in pairs:
        tree = trees[(pair.question_id, pair.tree_index)]
        assert pair.q_chosen - pair.q_rejected >= 0.5 - 1e-9
        assert pair.prefix_ids == tree.state_ids(pair.parent_node_id)  # one shared prefix
        assert pair.chosen_ids == tree.nodes[pair.chosen_node_id].train_ids()
        assert pair.rejected_ids == tree.nodes[pair.rejected_node_id].train_ids()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["trees"] == 4 and stats["pairs"] == len(pairs) and stats["tokens_generated"] > 0
    assert stats["nodes"] == sum(len(t.nodes) for t in trees.values())
    # the same command again: nothing left to do, nothing duplicated
    again = annotate(demo, out, "--limit", "4")
    assert "(0 new)" in again.stdout and len(trees_by_key(out)) == 4


def test_other_settings_are_refused_naming_them(demo, tmp_path):
    out = tmp_path / "run"
    annotate(demo, out, "--limit", "1")
    refused = annotate(demo, out, "--limit", "1", "--c-puct", "2.0", check=False)
    assert (
        refused.returncode != 0 and "c_puct" in refused.stderr and "--overwrite" in refused.stderr
    )
    annotate(demo, out, "--limit", "1", "--c-puct", "2.0", "--overwrite")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["c_puct"] == 2.0


@pytest.mark.slow
def test_a_torn_line_and_records_of_an_uncommitted_tree_are_dropped_on_resume(demo, tmp_path):
    out, reference = tmp_path / "run", tmp_path / "reference"
    annotate(demo, reference, "--limit", "3")
    annotate(demo, out, "--limit", "2")
    # a kill while writing tree 3: its pair records went out, its tree line was torn (the
    # records of tree 3 are the reference run's: the same questions, settings and seed)
    have = {key[0] for key in trees_by_key(out)}
    third = next(
        tree
        for line in (reference / "trees.jsonl").read_text().splitlines()
        if (tree := json.loads(line))["question_id"] not in have
    )
    with open(out / "pairs.jsonl", "a", encoding="utf-8") as fh:
        for line in (reference / "pairs.jsonl").read_text().splitlines():
            if json.loads(line)["question_id"] == third["question_id"]:
                fh.write(line + "\n")
    with open(out / "trees.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(third)[:200])  # torn: no newline, not valid JSON
    annotate(demo, out, "--limit", "3")
    assert_same_trees(trees_by_key(out), trees_by_key(reference))
    got = sorted((out / "pairs.jsonl").read_text().splitlines())
    assert got == sorted((reference / "pairs.jsonl").read_text().splitlines())


def test_bad_input_is_skipped_logged_with_file_line_and_counted(demo, tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text(
        '{"question": "Tom has 3 apples and buys 4 more. How many apples does Tom have?", '
        '"answer": "He has 3 + 4 = 7.\\n#### 7"}\n'
        "{not json\n"
        '{"question": "Ann has 5 pens. How many pens?"}\n',
        encoding="utf-8",
    )
    out = tmp_path / "run"
    svpo("annotate", "--model", str(demo), "--data", str(data), "--out", str(out), *ARGS)
    warnings = [json.loads(line) for line in (out / "warnings.jsonl").read_text().splitlines()]
    assert {(w["file"], w["line"]) for w in warnings} == {(str(data), 2), (str(data), 3)}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["trees"] == 1 and stats["bad_input_lines"] == 2


@pytest.mark.slow
def test_shards_partition_the_questions_and_merge_into_the_unsharded_run(demo, tmp_path):
    whole = tmp_path / "whole"
    annotate(demo, whole, "--limit", "4")
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"shard{i}")
        annotate(demo, shards[-1], "--limit", "4", "--shard", f"{i}/2")
    merged = tmp_path / "merged"
    svpo("annotate", "merge", *map(str, shards), "--out", str(merged))
    assert_same_trees(trees_by_key(merged), trees_by_key(whole))
    bad = tmp_path / "other"
    annotate(demo, bad, "--limit", "4", "--shard", "1/2", "--simulations", "5")
    refused = svpo("annotate", "merge", str(shards[0]), str(bad), "--out", str(tmp_path / "m2"),
                   check=False)  # fmt: skip
    assert refused.returncode != 0 and "simulations" in refused.stderr


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_uninterrupted_result(demo, tmp_path):
    """A hard exit (os._exit, as under `kill -9`) right after the 3rd of 8 trees is written
    (SVPO_FAULT_EXIT_AT), then the same command: the uninterrupted run's trees and pairs."""
    from svpo_harness.core.fault import FAULT_ENV, FAULT_EXIT_CODE

    reference, out = tmp_path / "reference", tmp_path / "run"
    args = ("--limit", "8", "--trees-in-flight", "2", "--simulations", "12")
    annotate(demo, reference, *args)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env[FAULT_ENV] = "annotate:3"
    cmd = [SVPO, "annotate", "--model", str(demo), "--data",
           "arith:train", "--out", str(out), *ARGS, *args]  # fmt: skip
    log = tmp_path / "killed.stderr"
    with open(log, "w") as err:  # a file, not a pipe: a helper left running cannot hold it open
        proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        proc.wait(timeout=600)  # hang guard only: the run takes seconds
    with contextlib.suppress(ProcessLookupError):  # helpers the hard exit left behind
        os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == FAULT_EXIT_CODE, log.read_text()[-3000:]
    assert (out / "trees.jsonl").read_text().count("\n") == 3
    annotate(demo, out, *args)
    assert_same_trees(trees_by_key(out), trees_by_key(reference))
    got = sorted((out / "pairs.jsonl").read_text().splitlines())
    assert got == sorted((reference / "pairs.jsonl").read_text().splitlines())
