"""Pair, step_q and path extraction (method.md section 4) on hand-built trees (no PUCT)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from svpo_harness.core.pairs import PairStats, extract_records, ranked_children, train_mask
from svpo_harness.core.schemas import (
    PairRecord,
    PathRecord,
    StepQRecord,
    TreeNode,
    TreeRecord,
    record_from_dict,
    to_dict,
)
from svpo_harness.core.step_format import ARITH


def node(i: int, parent: int | None, n: int, w: float, **kw: Any) -> TreeNode:
    """Node ``i`` with N = n, W = w; ids (10*i, 10*i + 1) unless given; depth set by ``tree``."""
    base: dict[str, Any] = dict(
        node_id=i,
        parent_id=parent,
        depth=0,
        token_ids=() if parent is None else (10 * i, 10 * i + 1),
        text="" if parent is None else f"step {i}",
        prior=1.0,
        logprob_mean=None,
        N=n,
        W=w,
        value=None,
        terminal=False,
        terminal_reason=None,
        answer=None,
        reward=None,
    )
    base.update(kw)
    return TreeNode(**base)


def terminal(i: int, parent: int, reward: float, **kw: Any) -> TreeNode:
    """A finished step with an answer, visited once by its own reward backup."""
    kw = {"N": 1, "W": reward, **kw}
    n, w = kw.pop("N"), kw.pop("W")
    return node(
        i, parent, n, w, terminal=True, terminal_reason="answer", answer=str(i), reward=reward, **kw
    )


def tree(*nodes: TreeNode) -> TreeRecord:
    """A validated tree (depths from parents): fixtures are trees annotate could write."""
    depths: dict[int, int] = {}
    fixed = []
    for n in nodes:
        depths[n.node_id] = 0 if n.parent_id is None else depths[n.parent_id] + 1
        fixed.append(TreeNode(**{**n.__dict__, "depth": depths[n.node_id]}))
    record = TreeRecord(
        question_id="q7",
        question="What is 3 + 4?",
        gold_answer="7",
        step_format=ARITH.to_dict(),
        tokenizer_fingerprint="sha256:test",
        chat_template=None,
        prompt_ids=(1, 2, 3),
        nodes=tuple(fixed),
        tree_index=2,
    )
    return TreeRecord.from_dict(to_dict(record))


def main_tree() -> TreeRecord:
    """Root with six children; node 1 has three children; node 7 one correct terminal child."""
    return tree(
        node(0, None, 10, 2.0),
        node(1, 0, 4, 3.0),  # Q 0.75: the best root child
        node(2, 0, 2, 0.5),  # Q 0.25: gap 0.5 to node 1, exactly at the gap
        terminal(3, 0, -1.0),  # terminal, N = 1: eligible
        node(4, 0, 1, -0.9),  # visited once, not terminal: not eligible
        node(5, 0, 0, 0.0),  # never visited
        node(6, 0, 2, 0.5),  # Q 0.25: ties node 2 (node 2 ranks first)
        node(7, 1, 2, 2.0),  # Q 1.0
        terminal(8, 1, 1.0, finish_reason="eos", eos_appended=True, appended_ids=(99,)),
        terminal(9, 1, -1.0, sampled_mask=(1, 0)),  # Q -1; its second id was inserted
        terminal(10, 7, 1.0),
    )


def split(records: list) -> tuple[list[PairRecord], list[StepQRecord], list[PathRecord]]:
    pairs = [r for r in records if isinstance(r, PairRecord)]
    step_qs = [r for r in records if isinstance(r, StepQRecord)]
    paths = [r for r in records if isinstance(r, PathRecord)]
    assert len(pairs) + len(step_qs) + len(paths) == len(records)
    return pairs, step_qs, paths


def ids(pairs: list[PairRecord]) -> list[tuple[int | None, int | None]]:
    return [(p.chosen_node_id, p.rejected_node_id) for p in pairs]


def test_best_vs_rest_min_visits_gap_and_ties():
    pairs, _, _ = split(extract_records(main_tree()))
    # Root: 1 beats 2 and 6 (gap exactly 0.5) and 3 (terminal, N = 1); 4 (N = 1) and 5 (N = 0)
    # are not eligible. Node 1: 7 and 8 tie at Q 1, 7 (lower id) is best; 7 vs 8 has gap 0.
    assert ids(pairs) == [(1, 2), (1, 6), (1, 3), (7, 9)]
    assert [p.parent_node_id for p in pairs] == [0, 0, 0, 1]
    assert [(p.q_chosen, p.q_rejected) for p in pairs] == [
        (0.75, 0.25),
        (0.75, 0.25),
        (0.75, -1.0),
        (1.0, -1.0),
    ]


def test_all_pairs_every_ordered_pair_with_the_gap():
    pairs, _, _ = split(extract_records(main_tree(), rule="all_pairs"))
    assert ids(pairs) == [(1, 2), (1, 6), (1, 3), (2, 3), (6, 3), (7, 9), (8, 9)]


def test_min_visits_and_gap_settings():
    t = main_tree()
    # min_visits 3: nodes 2 and 6 (N = 2) drop out; terminal node 3 stays.
    assert ids(split(extract_records(t, min_visits=3))[0]) == [(1, 3), (8, 9)]
    # min_visits 1: node 4 (Q -0.9, visited once) joins.
    assert (1, 4) in ids(split(extract_records(t, min_visits=1))[0])
    # Just above the gap between 1 and 2/6: those pairs go.
    assert ids(split(extract_records(t, min_q_gap=0.5001))[0]) == [(1, 3), (7, 9)]
    assert ids(split(extract_records(t, min_q_gap=2.0))[0]) == [(7, 9)]  # Q 1 vs Q -1


def test_gap_exactly_met_despite_float_rounding():
    # 1.4 / 2 - 0.4 / 2 = 0.49999999999999994 in floats: still "exactly" the gap.
    t = tree(node(0, None, 4, 0.0), node(1, 0, 2, 1.4), node(2, 0, 2, 0.4))
    assert 1.4 / 2 - 0.4 / 2 < 0.5
    assert ids(split(extract_records(t))[0]) == [(1, 2)]
    assert ids(split(extract_records(t, min_q_gap=0.51))[0]) == []


def test_ties_rank_lower_node_id_first():
    t = tree(node(0, None, 6, 0.0), node(1, 0, 2, -1.0), node(2, 0, 2, 1.0), node(3, 0, 2, 1.0))
    assert [c.node_id for c in ranked_children(t.nodes[1:], 2)] == [2, 3, 1]
    assert ids(split(extract_records(t))[0]) == [(2, 1)]
    assert ids(split(extract_records(t, rule="all_pairs"))[0]) == [(2, 1), (3, 1)]
    # Equal Qs that differ in the last bits still tie: 0.3 / 3 < 0.2 / 2 in floats.
    u = tree(node(0, None, 5, 0.0), node(1, 0, 3, 0.3), node(2, 0, 2, 0.2))
    assert 0.3 / 3 < 0.2 / 2
    assert [c.node_id for c in ranked_children(u.nodes[1:], 2)] == [1, 2]


def test_pairs_share_the_prefix_ids_of_their_parent():
    t = main_tree()
    pairs, _, _ = split(extract_records(t, rule="all_pairs"))
    assert pairs
    for p in pairs:
        assert p.prefix_ids == t.state_ids(p.parent_node_id)
        for child in (p.chosen_node_id, p.rejected_node_id):
            assert t.state_ids(child) == p.prefix_ids + t.nodes[child].token_ids
    deep = [p for p in pairs if p.parent_node_id == 1][0]
    assert deep.prefix_ids == (1, 2, 3, 10, 11)
    assert deep.chosen_ids == (70, 71) and deep.rejected_ids == (90, 91)
    assert {p.question_id for p in pairs} == {"q7"} and {p.tree_index for p in pairs} == {2}
    assert {p.step_format for p in pairs} == {"arith"}
    assert {p.tokenizer_fingerprint for p in pairs} == {"sha256:test"}


def test_masks_of_sampled_and_appended_ids():
    t = main_tree()
    eos, inserted = t.nodes[8], t.nodes[9]
    assert train_mask(eos) == ()  # appended delimiter ids count as sampled: all 1 -> ()
    assert train_mask(inserted) == (1, 0)
    both = node(11, 1, 1, 1.0, sampled_mask=(0, 1), eos_appended=True, appended_ids=(98, 99))
    assert train_mask(both) == (0, 1, 1, 1)
    pairs, step_qs, _ = split(extract_records(t, rule="all_pairs"))
    p = [p for p in pairs if ids([p]) == [(8, 9)]][0]
    assert p.chosen_ids == (80, 81, 99) and p.chosen_sampled_mask == ()
    assert p.rejected_ids == (90, 91) and p.rejected_sampled_mask == (1, 0)
    by_node = {s.node_id: s for s in step_qs}
    assert by_node[9].step_sampled_mask == (1, 0) and by_node[8].step_ids == (80, 81, 99)


def test_step_q_for_every_visited_step():
    t = main_tree()
    _, step_qs, _ = split(extract_records(t))
    assert [s.node_id for s in step_qs] == [1, 2, 3, 4, 6, 7, 8, 9, 10]  # not the root, not 5
    for s in step_qs:
        n = t.nodes[s.node_id]
        assert (s.q, s.n, s.terminal) == (n.W / n.N, n.N, n.terminal)
        assert s.prefix_ids == t.state_ids(n.parent_id) and s.step_ids == n.train_ids()
        assert s.step_text == n.text


def test_paths_only_for_correct_answers():
    t = main_tree()
    _, _, paths = split(extract_records(t))
    assert [p.node_ids for p in paths] == [(1, 8), (1, 7, 10)]  # not 3 or 9 (reward -1)
    first, second = paths
    assert first.step_ids == ((10, 11), (80, 81, 99)) and first.answer == "8"
    assert first.step_texts == ("step 1", "step 8") and first.step_sampled_masks == ()
    assert second.prompt_ids == (1, 2, 3) and second.question == "What is 3 + 4?"


def test_path_masks_are_per_step_once_one_id_was_inserted():
    t = tree(node(0, None, 1, 1.0), node(1, 0, 1, 1.0, sampled_mask=(1, 0)), terminal(2, 1, 1.0))
    (path,) = split(extract_records(t))[2]
    assert path.step_sampled_masks == ((1, 0), (1, 1))


def test_steps_without_ids_are_skipped_and_counted():
    # An EOS-first step has no sampled ids but its delimiter ids: it is trained on as usual.
    eos_first = terminal(2, 0, -1.0, token_ids=(), eos_appended=True, appended_ids=(99,))
    t = tree(node(0, None, 3, 0.0), node(1, 0, 2, 2.0), eos_first)
    pairs, step_qs, _ = split(extract_records(t))
    assert ids(pairs) == [(1, 2)] and pairs[0].rejected_ids == (99,)
    assert [s.node_id for s in step_qs] == [1, 2]
    # A step with no ids at all (not a valid tree; built directly) never enters a pair.
    empty = node(2, 0, 2, -2.0, token_ids=())
    bad = TreeRecord(**{**t.__dict__, "nodes": (t.nodes[0], t.nodes[1], empty)})
    stats = PairStats()
    pairs, step_qs, _ = split(extract_records(bad, stats=stats))
    assert pairs == [] and [s.node_id for s in step_qs] == [1]
    assert stats.skipped_no_ids == 1 and stats.trees_without_pairs == 1


def test_identical_steps_make_no_pair():
    same = tree(node(0, None, 4, 0.0), node(1, 0, 2, 2.0), node(2, 0, 2, -2.0, token_ids=(10, 11)))
    stats = PairStats()
    assert split(extract_records(same, stats=stats))[0] == []
    assert stats.skipped_identical == 1


def test_records_validate_and_stats_count():
    stats = PairStats()
    records = extract_records(main_tree(), stats=stats) + extract_records(
        tree(node(0, None, 1, 0.0), node(1, 0, 1, 0.0)), stats=stats
    )
    for r in records:
        assert record_from_dict(to_dict(r)) == r
    assert (stats.trees, stats.pairs, stats.step_q, stats.paths) == (2, 4, 10, 2)
    assert stats.trees_without_pairs == 1
    assert stats.summary() == "trees=2 pairs=4 step_q=10 paths=2 trees_without_pairs=1"


def test_q_is_clamped_to_the_unit_range():
    t = tree(node(0, None, 6, 0.0), node(1, 0, 3, 3.0000000001), node(2, 0, 3, -3.0))
    pairs, step_qs, _ = split(extract_records(t))
    assert pairs[0].q_chosen == 1.0 and step_qs[0].q == 1.0


@pytest.mark.parametrize(
    "kw", [{"rule": "best"}, {"min_q_gap": -0.1}, {"min_q_gap": 2.5}, {"min_visits": 0}]
)
def test_bad_settings_are_refused(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        extract_records(main_tree(), **kw)


def test_pairs_module_needs_no_torch():
    code = (
        "import sys\n"
        "for heavy in ('torch', 'transformers', 'lm_eval', 'vllm'):\n"
        "    sys.modules[heavy] = None\n"
        "import svpo_harness.core.pairs\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
