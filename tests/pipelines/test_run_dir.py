"""Run folders: manifest refusal/continue/overwrite, torn lines, finished ids, shards, merge."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from svpo_harness.core.jsonl_io import read_jsonl_records
from svpo_harness.core.schemas import PairRecord, TreeNode, TreeRecord
from svpo_harness.core.step_format import ARITH
from svpo_harness.pipelines.annotate.annotate_data import AnnotationQuestion, InputWarning
from svpo_harness.pipelines.runs.run_dir import (
    MANIFEST,
    RunDirError,
    RunSettingsError,
    append_warnings,
    drop_unfinished_records,
    finished_question_ids,
    open_jsonl,
    open_run_dir,
    read_finished_trees,
)
from svpo_harness.pipelines.runs.run_shards import (
    merge_runs,
    normalise_shard,
    parse_shard,
    shard_questions,
)

SETTINGS = {"data": "arith:train", "simulations": 40, "c_puct": 1.5, "seed": 0, "shard": None}
FP = "sha256:tok"


def node(i: int, parent: int | None, **kw) -> TreeNode:
    base = dict(
        node_id=i,
        parent_id=parent,
        depth=0 if parent is None else 1,
        token_ids=() if parent is None else (5, 6),
        text="" if parent is None else "The answer is 4.\n",
        prior=1.0,
        logprob_mean=None if parent is None else -0.5,
        N=1,
        W=1.0,
        value=None,
        terminal=parent is not None,
        terminal_reason=None if parent is None else "answer",
        answer=None if parent is None else "4",
        reward=None if parent is None else 1.0,
        finish_reason=None if parent is None else "delimiter",
    )
    base.update(kw)
    return TreeNode(**base)


def tree(qid: str, index: int = 0) -> TreeRecord:
    return TreeRecord(
        question_id=qid,
        question=f"Question {qid}?",
        gold_answer="4",
        step_format=ARITH.to_dict(),
        tokenizer_fingerprint=FP,
        chat_template=None,
        prompt_ids=(1, 2),
        nodes=(node(0, None), node(1, 0)),
        tree_index=index,
    )


def pair(qid: str, index: int = 0) -> PairRecord:
    return PairRecord(
        question_id=qid,
        prefix_ids=(1, 2),
        chosen_ids=(5, 6),
        rejected_ids=(7,),
        chosen_text="A\n",
        rejected_text="B\n",
        q_chosen=1.0,
        q_rejected=-1.0,
        tokenizer_fingerprint=FP,
        step_format="arith",
        tree_index=index,
    )


def questions(n: int) -> list[AnnotationQuestion]:
    return [AnnotationQuestion(f"q{i:04d}", f"Question {i}?", str(i), "test") for i in range(n)]


# -- manifest ----------------------------------------------------------------------------------
def test_same_settings_continue_and_other_settings_are_refused_by_name(tmp_path: Path) -> None:
    out = tmp_path / "run"
    run = open_run_dir(out, SETTINGS, tokenizer_fingerprint=FP)
    assert not run.resumed
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["settings"] == SETTINGS and manifest["tokenizer_fingerprint"] == FP
    assert manifest["command"] == "annotate" and manifest["library_version"]
    again = open_run_dir(out, dict(reversed(SETTINGS.items())), tokenizer_fingerprint=FP)
    assert again.resumed and again.settings == SETTINGS

    changed = {**SETTINGS, "simulations": 20, "c_puct": 1.25}
    with pytest.raises(RunSettingsError) as err:
        open_run_dir(out, changed, tokenizer_fingerprint="sha256:other")
    message = str(err.value)
    assert "setting 'simulations': 40 in the folder, 20 now" in message
    assert "setting 'c_puct': 1.5 in the folder, 1.25 now" in message
    assert "tokenizer_fingerprint" in message and "--overwrite" in message
    assert set(err.value.differences) == {
        "setting 'simulations'",
        "setting 'c_puct'",
        "tokenizer_fingerprint",
    }
    with pytest.raises(RunSettingsError, match="'leaf_value': '\\(not set\\)' in the folder"):
        open_run_dir(out, {**SETTINGS, "leaf_value": "zero"}, tokenizer_fingerprint=FP)
    with pytest.raises(RunSettingsError, match="command"):
        open_run_dir(out, SETTINGS, tokenizer_fingerprint=FP, command="train")


def test_overwrite_removes_only_the_commands_files(tmp_path: Path) -> None:
    run = open_run_dir(tmp_path, SETTINGS, tokenizer_fingerprint=FP)
    for name in ("trees.jsonl", "pairs.jsonl", "warnings.jsonl", "notes.txt"):
        (tmp_path / name).write_text("x\n")
    run.write_stats({"questions": 3})
    fresh = open_run_dir(
        tmp_path, {**SETTINGS, "simulations": 8}, tokenizer_fingerprint=FP, overwrite=True
    )
    assert not fresh.resumed and fresh.settings["simulations"] == 8
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [MANIFEST, "notes.txt"]


def test_outputs_without_manifest_or_a_broken_manifest_are_refused(tmp_path: Path) -> None:
    (tmp_path / "trees.jsonl").write_text("{}\n")
    with pytest.raises(RunDirError, match="no manifest.json"):
        open_run_dir(tmp_path, SETTINGS, tokenizer_fingerprint=FP)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(RunDirError, match="--overwrite"):
        open_run_dir(tmp_path, SETTINGS, tokenizer_fingerprint=FP)
    assert open_run_dir(tmp_path, SETTINGS, tokenizer_fingerprint=FP, overwrite=True)


# -- JSONL, torn lines, finished ids -----------------------------------------------------------
def test_torn_last_line_is_repaired_and_finished_ids_read_back(tmp_path: Path) -> None:
    run = open_run_dir(tmp_path, SETTINGS, tokenizer_fingerprint=FP)
    with open_jsonl(run.trees) as out:
        out.append(tree("a"))
        out.append(tree("b", 1))
        out.append(tree("b"))
    with open(run.trees, "ab") as fh:  # a writer killed mid-record
        fh.write(json.dumps({"type": "tree", "question_id": "c"}).encode()[:25])
    assert read_finished_trees(run.trees) == {("a", 0), ("b", 0), ("b", 1)}
    assert finished_question_ids(run.trees) == {"a", "b"}
    assert finished_question_ids(run.trees, trees_per_question=2) == {"b"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with open_jsonl(run.trees) as out:  # the resumed run: repairs, then appends
            out.append(tree("c"))
    assert any("torn last line" in str(w.message) for w in caught)
    records = list(read_jsonl_records(run.trees, "tree"))
    assert [(r.question_id, r.tree_index) for r in records] == [
        ("a", 0),
        ("b", 1),
        ("b", 0),
        ("c", 0),
    ]
    with pytest.raises(Exception, match="field"):  # dicts are validated as records
        open_jsonl(run.pairs).append({"type": "pair", "question_id": "a"})


def test_damaged_middle_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "trees.jsonl"
    path.write_text('{"type": "tree", "question_id": "a"}\n{broken\n{"question_id": "b"}\n')
    with pytest.raises(RunDirError, match=r"trees.jsonl:2: not valid JSON"):
        read_finished_trees(path)
    path.write_text('{"type": "tree", "question_id": 5}\n')
    with pytest.raises(RunDirError, match=r"trees.jsonl:1: field 'question_id'"):
        read_finished_trees(path)


def test_pairs_of_unfinished_trees_are_dropped_and_warnings_logged_once(tmp_path: Path) -> None:
    run = open_run_dir(tmp_path, SETTINGS, tokenizer_fingerprint=FP)
    with open_jsonl(run.pairs) as out:
        for qid in ("a", "b", "a"):
            out.append(pair(qid))
    assert drop_unfinished_records(run.pairs, {("a", 0)}) == 1
    assert [r.question_id for r in read_jsonl_records(run.pairs, "pair")] == ["a", "a"]
    assert drop_unfinished_records(run.pairs, {("a", 0)}) == 0
    bad = [InputWarning("f.jsonl", 2, "answer", "missing gold answer")]
    assert append_warnings(run.warnings, bad) == 1
    assert append_warnings(run.warnings, bad) == 0  # a resume re-reads the same input
    assert len(run.warnings.read_text().splitlines()) == 1
    run.write_stats({"questions": 2, "solved_rate": 0.5})
    assert run.read_stats() == {"questions": 2, "solved_rate": 0.5}


# -- shards ------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["3/3", "-1/2", "a/b", "1/0", "1", "0/2/3"])
def test_bad_shard_specs_are_clear_errors(spec: str) -> None:
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(spec)


def test_shards_partition_the_questions_stably() -> None:
    qs = questions(300)
    parts = [shard_questions(qs, f"{i}/4") for i in range(4)]
    ids = [q.question_id for part in parts for q in part]
    assert sorted(ids) == [q.question_id for q in qs]  # every question exactly once
    assert all(40 < len(part) < 110 for part in parts)  # roughly even
    assert all(part == sorted(part, key=lambda q: q.question_id) for part in parts)
    # Stable under reordering and --limit: a question's shard depends on its id only.
    assert {q.question_id for q in shard_questions(qs[::-1], "2/4")} == {
        q.question_id for q in parts[2]
    }
    assert shard_questions(qs[:100], "2/4") == [q for q in parts[2] if q in qs[:100]]
    assert shard_questions(qs, None) == qs == shard_questions(qs, "0/1")
    assert (normalise_shard(" 1 / 4 "), normalise_shard("0/1"), normalise_shard(None)) == (
        "1/4",
        None,
        None,
    )


# -- merge -------------------------------------------------------------------------------------
def make_shard(root: Path, spec: str, qids: list[str], fp: str = FP, **changes) -> Path:
    settings = {**SETTINGS, "shard": spec, **changes}
    run = open_run_dir(root / spec.replace("/", "of"), settings, tokenizer_fingerprint=fp)
    with open_jsonl(run.trees) as trees, open_jsonl(run.pairs) as pairs:
        for qid in qids:
            pairs.append(pair(qid))
            trees.append(tree(qid))
        pairs.append(pair(f"{spec}-killed"))  # its tree was never written
    append_warnings(run.warnings, [InputWarning("in.jsonl", 3, "answer", "missing")])
    run.write_stats({"questions": len(qids), "tokens": 10 * len(qids), "solved_rate": 1.0})
    return run.path


def test_merge_joins_shards(tmp_path: Path) -> None:
    b = make_shard(tmp_path, "1/2", ["c"])
    a = make_shard(tmp_path, "0/2", ["a", "b"])
    result = merge_runs([b, a], tmp_path / "all")  # any order: merged in shard order
    assert result.shards == ["0/2", "1/2"] and result.missing_shards == []
    out = tmp_path / "all"
    assert [r.question_id for r in read_jsonl_records(out / "trees.jsonl", "tree")] == [
        "a",
        "b",
        "c",
    ]
    assert [r.question_id for r in read_jsonl_records(out / "pairs.jsonl", "pair")] == [
        "a",
        "b",
        "c",
    ]
    assert len((out / "warnings.jsonl").read_text().splitlines()) == 1  # same input warning
    stats = json.loads((out / "stats.json").read_text())
    assert stats["questions"] == 3 and stats["tokens"] == 30 and stats["solved_rate"] is None
    assert stats["shards_merged"] == 2
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["settings"] == SETTINGS  # shard None: reads as one unsharded run
    assert [m["shard"] for m in manifest["info"]["merged_from"]] == ["0/2", "1/2"]
    assert open_run_dir(out, SETTINGS, tokenizer_fingerprint=FP).resumed
    assert "3 trees.jsonl" in result.summary()
    with pytest.raises(RunDirError, match="already holds a run"):
        merge_runs([a, b], out)
    with pytest.warns(UserWarning, match=r"shards \[1\] are not among the inputs"):
        assert merge_runs([a], out, overwrite=True).missing_shards == [1]
    assert len((out / "trees.jsonl").read_text().splitlines()) == 2


def test_merge_refuses_other_settings_tokenizers_and_shared_questions(tmp_path: Path) -> None:
    a = make_shard(tmp_path / "x", "0/2", ["a"])
    other = make_shard(tmp_path / "y", "1/2", ["b"], simulations=20)
    with pytest.raises(RunSettingsError, match="setting 'simulations': 40 in .*, 20 in"):
        merge_runs([a, other], tmp_path / "out")
    tok = make_shard(tmp_path / "z", "1/2", ["b"], fp="sha256:else")
    with pytest.raises(RunSettingsError, match="tokenizer_fingerprint"):
        merge_runs([a, tok], tmp_path / "out")
    dup = make_shard(tmp_path / "w", "1/2", ["b", "a"])
    with pytest.raises(RunDirError, match="question 'a' is in two shards"):
        merge_runs([a, dup], tmp_path / "out")
    with pytest.raises(RunDirError, match="given twice"):
        merge_runs([a, make_shard(tmp_path / "v", "0/2", ["d"])], tmp_path / "out")
    with pytest.raises(RunDirError, match="different splits"):
        merge_runs([a, make_shard(tmp_path / "u", "1/3", ["d"])], tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written by a refused merge
