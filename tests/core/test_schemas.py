"""JSONL record contracts: validation with FILE:LINE and field, versions, durable appends."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from svpo_harness.core.jsonl_io import (
    append_jsonl,
    atomic_write_json,
    read_jsonl_records,
    repair_jsonl_tail,
)
from svpo_harness.core.schemas import (
    SCHEMA_VERSION,
    PairRecord,
    PathRecord,
    RecordError,
    SFTExample,
    StepQRecord,
    TreeNode,
    TreeRecord,
    record_from_dict,
    to_dict,
)
from svpo_harness.core.step_format import ARITH


def node(i: int, parent: int | None, depth: int, ids: tuple[int, ...], **kw) -> TreeNode:
    base = dict(
        node_id=i,
        parent_id=parent,
        depth=depth,
        token_ids=ids,
        text="x",
        prior=0.5,
        logprob_mean=-0.7,
        N=2,
        W=1.0,
        value=0.1,
        terminal=False,
        terminal_reason=None,
        answer=None,
        reward=None,
    )
    base.update(kw)
    return TreeNode(**base)


def tree() -> TreeRecord:
    nodes = (
        node(0, None, 0, (), text="", prior=1.0, logprob_mean=None, N=3, W=0.0, value=None),
        node(1, 0, 1, (7, 8, 9), finish_reason="delimiter"),
        node(
            2,
            1,
            2,
            (5, 6),
            terminal=True,
            terminal_reason="answer",
            answer="14",
            reward=1.0,
            N=1,
            W=1.0,
            finish_reason="eos",
            eos_appended=True,
            appended_ids=(9,),
        ),
    )
    return TreeRecord(
        question_id="q1",
        question="Tom has 12 apples.",
        gold_answer="14",
        step_format=ARITH.to_dict(),
        tokenizer_fingerprint="sha256:ab",
        chat_template=None,
        prompt_ids=(1, 2, 3),
        nodes=nodes,
        meta={"simulations": 40, "c_puct": 1.5},
    )


def pair(**kw) -> PairRecord:
    base = dict(
        question_id="q1",
        prefix_ids=(1, 2, 3),
        chosen_ids=(7, 8, 9),
        rejected_ids=(4, 9),
        chosen_text="A\n",
        rejected_text="B\n",
        q_chosen=0.8,
        q_rejected=-0.6,
        tokenizer_fingerprint="sha256:ab",
        step_format="arith",
        chosen_node_id=1,
        rejected_node_id=3,
        parent_node_id=0,
    )
    base.update(kw)
    return PairRecord(**base)


ALL = [
    tree(),
    pair(),
    StepQRecord(
        question_id="q1",
        prefix_ids=(1, 2),
        step_ids=(3,),
        step_text="A\n",
        q=0.5,
        n=2,
        tokenizer_fingerprint="sha256:ab",
        step_format="arith",
        node_id=1,
    ),
    PathRecord(
        question_id="q1",
        question="Q?",
        prompt_ids=(1,),
        step_ids=((2, 3), (4,)),
        step_texts=("A\n", "The answer is 4.\n"),
        answer="4",
        tokenizer_fingerprint="sha256:ab",
        step_format="arith",
        node_ids=(1, 2),
    ),
    SFTExample(question_id="q1", question="Q?", steps=("A", "The answer is 4."), answer="4"),
]


def write_lines(path: Path, objs: list) -> None:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")


def test_every_record_round_trips_through_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    for rec in ALL:
        append_jsonl(path, rec)
    assert list(read_jsonl_records(path, None)) == ALL
    assert list(read_jsonl_records(path, "pair")) == [ALL[1]]  # other kinds are skipped
    assert list(read_jsonl_records(path, ("step_q", "path"))) == ALL[2:4]
    first = json.loads(path.read_text().splitlines()[0])
    assert first["type"] == "tree" and first["schema_version"] == SCHEMA_VERSION
    assert first["nodes"][1]["Q"] == 0.5  # derived W / N, written for humans
    for rec in ALL:  # the classmethod and method forms agree with the module functions
        assert type(rec).from_dict(rec.to_dict(), path="x.jsonl", line=1) == rec
    assert TreeNode.from_dict(ALL[0].nodes[1].to_dict()) == ALL[0].nodes[1]
    t = ALL[0]
    assert t.state_ids(2) == (1, 2, 3, 7, 8, 9, 5, 6)  # ids as sampled, nothing appended
    assert t.nodes[2].train_ids() == (5, 6, 9)


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ({"q_chosen": "0.8"}, "q_chosen", "expected a finite number, got string"),
        ({"q_rejected": 1.5}, "q_rejected", "expected a number in [-1, 1], got 1.5"),
        ({"chosen_ids": [1, "2"]}, "chosen_ids[1]", "expected an integer, got string"),
        ({"chosen_ids": [1, True]}, "chosen_ids[1]", "expected an integer, got boolean"),
        ({"prefix_ids": []}, "prefix_ids", "expected a non-empty list"),
        ({"q_chosen": -0.9}, "q_chosen", "expected >= q_rejected"),
        ({"from_text": 1}, "from_text", "expected true or false, got integer"),
        ({"chosen_id": 3}, "chosen_id", "unknown field"),
        ({"question_id": None}, "question_id", "expected a string, got nothing"),
    ],
)
def test_malformed_pairs_name_file_line_and_field(tmp_path: Path, line, field, expected) -> None:
    path = tmp_path / "pairs.jsonl"
    bad = {**to_dict(pair()), **line}
    write_lines(path, [to_dict(pair()), to_dict(pair()), bad])
    with pytest.raises(RecordError) as info:
        list(read_jsonl_records(path, "pair"))
    msg = str(info.value)
    assert msg.startswith(f"{path}:3: field '{field}': ")
    assert expected in msg
    assert info.value.line == 3 and info.value.field == field


def test_missing_required_field_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    rec = to_dict(pair())
    del rec["rejected_text"]
    write_lines(path, [rec])
    with pytest.raises(RecordError, match=r":1: field 'rejected_text': expected a value"):
        list(read_jsonl_records(path, "pair"))
    path.write_text(json.dumps(to_dict(pair())) + "\n{not json\n" + json.dumps(to_dict(pair())))
    with pytest.raises(RecordError, match=r"pairs.jsonl:2: field '\(line\)': expected valid JSON"):
        list(read_jsonl_records(path, "pair"))


@pytest.mark.parametrize(
    ("edit", "field", "expected"),
    [
        (lambda t: t["nodes"][2].update(parent_id=5), "nodes[2].parent_id", "expected a node id"),
        (lambda t: t["nodes"][2].update(depth=1), "nodes[2].depth", "expected parent depth + 1"),
        (lambda t: t["nodes"][1].update(node_id=4), "nodes[1].node_id", "expected 1"),
        (lambda t: t["nodes"][1].update(terminal=True), "nodes[1].terminal_reason", "reason"),
        (lambda t: t["nodes"][1].update(value=2.0), "nodes[1].value", "[-1, 1]"),
        (lambda t: t["nodes"][1].update(N=-1), "nodes[1].N", "visit count"),
        (lambda t: t["nodes"][2].update(eos_appended=False), "nodes[2].appended_ids", "eos"),
        (
            lambda t: t["nodes"][2].update(terminal_reason="bored"),
            "nodes[2].terminal_reason",
            "expected one of",
        ),
        (lambda t: t["nodes"][1].update(token_ids=[]), "nodes[1].token_ids", "non-empty"),
        (lambda t: t["nodes"][1].update(sampled_mask=[1, 0]), "nodes[1].sampled_mask", "one 0/1"),
        (lambda t: t["nodes"][1].update(sampled_mask=[1, 2, 1]), "nodes[1].sampled_mask", "0 or 1"),
        (lambda t: t["step_format"].update(delimiter=""), "step_format", "valid step format"),
        (lambda t: t.update(nodes=[]), "nodes", "non-empty"),
    ],
)
def test_malformed_trees_name_the_nested_field(tmp_path: Path, edit, field, expected) -> None:
    data = to_dict(tree())
    edit(data)
    path = tmp_path / "trees.jsonl"
    write_lines(path, [data])
    with pytest.raises(RecordError) as info:
        list(read_jsonl_records(path, "tree"))
    assert str(info.value).startswith(f"{path}:1: field '{field}': ")
    assert expected in str(info.value)


def test_unknown_schema_version_and_kind_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    write_lines(path, [to_dict(pair()), {**to_dict(pair()), "schema_version": 2}])
    with pytest.raises(RecordError, match=r":2: field .schema_version.: expected 1 .* got integer"):
        list(read_jsonl_records(path, "pair"))
    write_lines(path, [{**to_dict(pair()), "type": "gossip"}])
    with pytest.raises(RecordError, match=r":1: field 'type': expected one of"):
        list(read_jsonl_records(path, "pair"))
    with pytest.raises(RecordError, match=r"field 'type': expected 'pair', got string \"tree\""):
        record_from_dict({**to_dict(pair()), "type": "tree"}, "pair")
    with pytest.raises(ValueError, match="unknown record kind"):
        list(read_jsonl_records(path, "pairs"))
    with pytest.raises(RecordError, match=r"^<record>:\?: field 'schema_version'"):
        record_from_dict({**to_dict(pair()), "schema_version": None})


def test_append_after_a_torn_last_line_recovers(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    records = [pair(q_chosen=0.1 * i) for i in range(3)]
    for rec in records:
        append_jsonl(path, rec)
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[0][:25])  # a kill mid-write
    with pytest.warns(UserWarning, match="torn last line"):
        assert list(read_jsonl_records(path, "pair")) == records
    with pytest.warns(UserWarning, match="dropped a torn last line"):
        append_jsonl(path, pair(q_chosen=0.9))
    assert list(read_jsonl_records(path, "pair")) == records + [pair(q_chosen=0.9)]
    assert path.read_bytes().startswith(whole)  # earlier records untouched


def test_a_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(to_dict(pair())), encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repair_jsonl_tail(path) == 0
        append_jsonl(path, pair(q_chosen=0.9))
    assert list(read_jsonl_records(path, "pair")) == [pair(), pair(q_chosen=0.9)]


def test_append_validates_dicts_before_writing(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    with pytest.raises(RecordError, match="q_chosen"):
        append_jsonl(path, {**to_dict(pair()), "q_chosen": float("nan")})
    assert not path.exists() or path.read_text() == ""


def test_atomic_write_json_replaces_whole_files(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.json"
    atomic_write_json(path, {"step": 1})
    atomic_write_json(path, {"step": 2, "done": True})
    assert json.loads(path.read_text()) == {"step": 2, "done": True}
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temp files left
    with pytest.raises(ValueError):
        atomic_write_json(path, {"bad": float("nan")})
    assert json.loads(path.read_text()) == {"step": 2, "done": True}  # old content survives
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_core_modules_import_without_torch() -> None:
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "import svpo_harness.core.schemas, svpo_harness.core.arith\n"
        "svpo_harness.core.arith.arith_split('dev', 3)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_sampled_masks_say_which_ids_the_policy_sampled(tmp_path: Path) -> None:
    """A per-token property in every record type that holds step ids (tree, pair, step_q,
    path): empty means every id was sampled; a mask has one 0/1 per id."""
    data = to_dict(tree())
    data["nodes"][1]["sampled_mask"] = [1, 0, 1]  # e.g. one id of a tool's output
    data["nodes"][2].update(token_ids=[], sampled_mask=[])  # EOS first: only the delimiter
    records = [
        data,
        to_dict(pair(chosen_sampled_mask=(1, 1, 0), rejected_sampled_mask=())),
        {**to_dict(ALL[2]), "step_sampled_mask": [0]},
        {**to_dict(ALL[3]), "step_sampled_masks": [[1, 0], [1]]},
    ]
    path = tmp_path / "records.jsonl"
    write_lines(path, records)
    got = list(read_jsonl_records(path, None))
    assert got[0].nodes[1].sampled_mask == (1, 0, 1) and got[0].nodes[2].train_ids() == (9,)
    assert got[1].chosen_sampled_mask == (1, 1, 0) and got[1].rejected_sampled_mask == ()
    assert got[2].step_sampled_mask == (0,) and got[3].step_sampled_masks == ((1, 0), (1,))
    assert pair().chosen_sampled_mask == ()  # older files without the field read as all-sampled
    bad = [{**to_dict(ALL[3]), "step_sampled_masks": [[1, 0]]}]
    write_lines(path, bad)
    with pytest.raises(RecordError, match="step_sampled_masks"):
        list(read_jsonl_records(path, None))
    write_lines(path, [to_dict(pair(rejected_sampled_mask=(1,)))])
    with pytest.raises(RecordError, match="rejected_sampled_mask"):
        list(read_jsonl_records(path, None))
