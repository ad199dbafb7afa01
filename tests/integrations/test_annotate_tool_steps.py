"""`svpo annotate` with tool steps on the shipped demo model, through the real sandbox.

The demo model writes arithmetic lines, not ``<code>`` blocks, so its checkpoint is given a tool
variant of its own format whose code end is ``" ="``: every step that reaches ``=`` stops there,
its (empty) program runs in the sandbox and ``<output>...</output>`` is inserted as ids the policy
did not sample. The trees must say which ids those are, training records must leave them out,
and a resumed run must write what an uninterrupted one writes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_annotate_cli import (
    annotate,
    assert_same_trees,
    one_thread,  # noqa: F401 (autouse: trees compared token for token)
    trees_by_key,
)

from svpo_harness.core.jsonl_io import read_jsonl_records
from svpo_harness.core.pairs import train_mask
from svpo_harness.core.tool_policy import OUTPUT_OPEN


@pytest.fixture(scope="module")
def tool_demo(tmp_path_factory) -> Path:
    from svpo_harness.pipelines.demo.demo_model import copy_shipped_demo_model

    model = copy_shipped_demo_model(tmp_path_factory.mktemp("tool_demo") / "model")
    meta_path = model / "svpo.json"
    meta = json.loads(meta_path.read_text())
    meta["step_format"]["extra"] = {"code_end": " ="}
    meta_path.write_text(json.dumps(meta, indent=2))
    return model


@pytest.mark.slow  # three annotate runs (about 20 s)
def test_tool_trees_mark_the_output_and_a_resumed_run_equals_an_uninterrupted_one(
    tool_demo, tmp_path
):
    reference, out = tmp_path / "reference", tmp_path / "run"
    annotate(tool_demo, reference, "--limit", "3")
    annotate(tool_demo, out, "--limit", "2")
    annotate(tool_demo, out, "--limit", "3")  # resumes: the third tree only
    trees = trees_by_key(reference)
    assert_same_trees(trees_by_key(out), trees)
    for tree in trees_by_key(out).values():
        for got, want in zip(
            tree.nodes, trees[(tree.question_id, tree.tree_index)].nodes, strict=True
        ):
            assert got.sampled_mask == want.sampled_mask
    tool_nodes = [n for t in trees.values() for n in t.nodes if OUTPUT_OPEN in n.text]
    assert tool_nodes, "the demo model writes '=' in its steps"
    for node in tool_nodes:
        cut = node.text.index(OUTPUT_OPEN)
        assert node.text[:cut].endswith(" =") and node.finish_reason == "delimiter"
        n_sampled = sum(node.sampled_mask)
        assert 0 < n_sampled < len(node.token_ids)
        assert node.sampled_mask == (1,) * n_sampled + (0,) * (len(node.token_ids) - n_sampled)
    # training records carry each step's mask: the output ids are left out of every loss
    records = list(read_jsonl_records(reference / "pairs.jsonl", ("pair", "step_q", "path")))
    masked = 0
    for rec in records:
        if rec.KIND == "step_q":
            node = trees[(rec.question_id, rec.tree_index)].nodes[rec.node_id]
            assert rec.step_ids == node.train_ids() and rec.step_sampled_mask == train_mask(node)
            masked += 0 in rec.step_sampled_mask
    assert masked
    # the collator scores only the sampled ids and reads the value after the output
    from svpo_harness.engines.collate import collate, prepare_examples

    tool_records = [r for r in records if r.KIND == "step_q" and 0 in r.step_sampled_mask]
    examples, _ = prepare_examples(tool_records, 1024)
    batch = collate(examples, pad_id=0)
    for i, rec in enumerate(tool_records):
        owned = batch.score_owner == i
        sampled = [t for t, m in zip(rec.step_ids, rec.step_sampled_mask, strict=True) if m]
        assert batch.score_target[owned].tolist() == sampled
        assert int(batch.last_col[i]) == len(rec.prefix_ids) + len(rec.step_ids) - 1
    stats = json.loads((reference / "stats.json").read_text())
    # generated tokens count only what the policy sampled
    assert stats["tokens_generated"] < sum(
        len(n.token_ids) for t in trees.values() for n in t.nodes
    )
