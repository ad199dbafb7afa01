"""`solution_pairs` (the `dpo` objective's records) on hand-built trees: which path is chosen,
how many pairs, and none without both a correct and an incorrect full path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from svpo_harness.core.schemas import TreeNode, TreeRecord, to_dict
from svpo_harness.core.step_format import ARITH
from svpo_harness.pipelines.train.pref_data import load_preference_data, solution_pairs

PROMPT = (1, 2, 3)


def node(i: int, parent: int | None, reward: float | None = None, **kw: Any) -> TreeNode:
    """Node ``i``: ids (10*i, 10*i + 1), text "s{i};"; an answer node when ``reward`` is given."""
    base: dict[str, Any] = dict(
        node_id=i, parent_id=parent, depth=0,
        token_ids=() if parent is None else (10 * i, 10 * i + 1),
        text="" if parent is None else f"s{i};",
        prior=1.0, logprob_mean=None, N=1, W=reward or 0.0, value=None,
        terminal=reward is not None, terminal_reason="answer" if reward is not None else None,
        answer=None if reward is None else str(i), reward=reward,
    )  # fmt: skip
    base.update(kw)
    return TreeNode(**base)


def tree(*nodes: TreeNode) -> TreeRecord:
    depths: dict[int, int] = {}
    fixed = []
    for n in nodes:
        depths[n.node_id] = 0 if n.parent_id is None else depths[n.parent_id] + 1
        fixed.append(TreeNode(**{**n.__dict__, "depth": depths[n.node_id]}))
    record = TreeRecord(
        question_id="q3", question="What is 3 + 4?", gold_answer="7",
        step_format=ARITH.to_dict(), tokenizer_fingerprint="sha256:t", chat_template=None,
        prompt_ids=PROMPT, nodes=tuple(fixed), tree_index=1,
    )  # fmt: skip
    return TreeRecord.from_dict(to_dict(record))


def ids(*node_ids: int) -> tuple[int, ...]:
    return tuple(t for i in node_ids for t in (10 * i, 10 * i + 1))


def two_level() -> TreeRecord:
    """root -> 1 -> {3 correct, 4 wrong}; root -> 2 -> {5 wrong, 6 correct, 7 wrong}."""
    return tree(
        node(0, None), node(1, 0), node(2, 0),
        node(3, 1, 1.0), node(4, 1, -1.0), node(5, 2, -1.0), node(6, 2, 1.0), node(7, 2, -1.0),
    )  # fmt: skip


def test_the_correct_full_path_is_chosen_and_the_incorrect_one_rejected() -> None:
    first, second = solution_pairs(two_level())
    # node order: correct 3, 6; incorrect 4, 5, 7 -> (3, 4), (6, 5)
    assert (first.chosen_node_id, first.rejected_node_id) == (3, 4)
    assert (second.chosen_node_id, second.rejected_node_id) == (6, 5)
    assert first.chosen_ids == ids(1, 3) and first.rejected_ids == ids(1, 4)
    assert second.chosen_ids == ids(2, 6) and second.rejected_ids == ids(2, 5)
    assert first.chosen_text == "s1;s3;" and first.rejected_text == "s1;s4;"
    assert (first.q_chosen, first.q_rejected) == (1.0, -1.0)
    assert first.prefix_ids == PROMPT and first.parent_node_id == 0
    assert (first.question_id, first.tree_index, first.step_format) == ("q3", 1, "arith")
    assert first.tokenizer_fingerprint == "sha256:t"


def test_one_pair_per_correct_path_while_incorrect_ones_last() -> None:
    # 3 correct, 1 incorrect: one pair, the first correct path (node order) against it
    many_good = tree(node(0, None), node(1, 0, 1.0), node(2, 0, 1.0), node(3, 0, -1.0),
                     node(4, 0, 1.0))  # fmt: skip
    (only,) = solution_pairs(many_good)
    assert (only.chosen_node_id, only.rejected_node_id) == (1, 3)
    # 1 correct, 3 incorrect: one pair, against the first incorrect path
    many_bad = tree(node(0, None), node(1, 0, -1.0), node(2, 0, -1.0), node(3, 0, 1.0),
                    node(4, 0, -1.0))  # fmt: skip
    (only,) = solution_pairs(many_bad)
    assert (only.chosen_node_id, only.rejected_node_id) == (3, 1)
    # each answer node is used at most once
    pairs = solution_pairs(two_level())
    assert len({p.chosen_node_id for p in pairs}) == len({p.rejected_node_id for p in pairs}) == 2


def test_no_pair_without_both_a_correct_and_an_incorrect_answer() -> None:
    all_right = tree(node(0, None), node(1, 0, 1.0), node(2, 0, 1.0))
    all_wrong = tree(node(0, None), node(1, 0, -1.0), node(2, 1, -1.0))
    assert solution_pairs(all_right) == [] and solution_pairs(all_wrong) == []
    # terminal nodes that are not answers (length, repeats) and unscored answers are no side
    not_answers = tree(
        node(0, None),
        node(1, 0, 1.0),
        node(2, 0, -1.0, terminal_reason="max_depth"),
        node(3, 0, None, terminal=True, terminal_reason="answer", answer="5"),
    )
    assert solution_pairs(not_answers) == []


def test_appended_delimiter_ids_and_masks_follow_their_path() -> None:
    t = tree(
        node(0, None),
        node(1, 0, sampled_mask=(1, 0)),  # a step with an inserted id (a tool's output)
        node(2, 1, 1.0, eos_appended=True, appended_ids=(99,), finish_reason="eos"),
        node(3, 0, -1.0),
    )
    (pair,) = solution_pairs(t)
    assert pair.chosen_ids == (*ids(1, 2), 99) and pair.rejected_ids == ids(3)
    assert pair.chosen_sampled_mask == (1, 0, 1, 1, 1) and pair.rejected_sampled_mask == ()


def test_dpo_data_from_a_trees_file_counts_trees_without_a_pair(tmp_path: Path) -> None:
    file = tmp_path / "trees.jsonl"
    one_sided = tree(node(0, None), node(1, 0, 1.0))
    lines = [json.dumps(to_dict(t)) for t in (two_level(), one_sided)]
    file.write_text("\n".join(lines) + "\n")
    data = load_preference_data(file, "dpo", tokenizer_fingerprint="sha256:t", step_format="arith")
    assert [(p.chosen_node_id, p.rejected_node_id) for p in data.records] == [(3, 4), (6, 5)]
    assert data.counts == {"pair": 2}
    assert data.skipped == {"trees_without_a_correct_and_an_incorrect_path": 1}


def test_a_file_of_one_sided_trees_is_a_clear_error(tmp_path: Path) -> None:
    from svpo_harness.pipelines.train.pref_data import PreferenceDataError

    file = tmp_path / "trees.jsonl"
    file.write_text(json.dumps(to_dict(tree(node(0, None), node(1, 0, -1.0)))) + "\n")
    with pytest.raises(PreferenceDataError, match="no pair records for --objective dpo"):
        load_preference_data(file, "dpo", tokenizer_fingerprint="sha256:t", step_format="arith")
