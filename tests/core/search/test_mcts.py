"""MCTS (method.md section 3) on the scripted policy: PUCT, backups, terminals, determinism."""

from __future__ import annotations

import math
import random

import pytest
from scripted_policy import ScriptedPolicy, Step, final

from svpo_harness.core.mcts import (
    MCTSOptions,
    MCTSQuestion,
    Node,
    backup,
    grow_trees,
    new_tree,
    select_leaf,
)
from svpo_harness.core.schemas import TreeRecord
from svpo_harness.core.step_format import ARITH


def grade(items):
    return [pred == gold for pred, gold in items]


def question(policy: ScriptedPolicy, text: str, gold: str | None = "3", index: int = 0):
    return MCTSQuestion(text, policy.encode_prompt(text), gold, tree_index=index)


def grow(policy, questions, **opts):
    max_trees = opts.pop("max_trees", None)
    seed = opts.pop("seed", 0)
    options = MCTSOptions(**opts)
    return list(grow_trees(questions, policy, options, seed=seed, grade=grade, max_trees=max_trees))


# -- selection and backup arithmetic ----------------------------------------------------------
def test_puct_picks_the_highest_score_among_open_children_and_breaks_ties_by_the_tree_stream():
    tree = new_tree(MCTSQuestion("q", (1,)), seed=0)
    root = tree.nodes[0]
    root.N = 9
    specs = [(0.9, 4, 2.0), (0.2, 1, 0.5), (0.5, 0, 0.0), (0.9, 0, 0.0)]  # prior, N, W
    for i, (prior, n, w) in enumerate(specs, start=1):
        tree.nodes.append(Node(i, 0, 1, None, prior, 0, N=n, W=w))
        root.children.append(i)
    tree.nodes[4].terminal = True  # never selected
    scores = {
        i: tree.nodes[i].Q + 1.5 * tree.nodes[i].prior * math.sqrt(9) / (1 + tree.nodes[i].N)
        for i in (1, 2, 3)
    }
    assert select_leaf(tree, 1.5) == max(scores, key=scores.get)
    # equal scores: the choice comes from the tree's own seeded stream
    tree.nodes[2].prior, tree.nodes[2].N, tree.nodes[2].W = 0.5, 0, 0.0
    picks = {select_leaf(new_copy(tree, seed), 1.5) for seed in range(20)}
    assert picks == {2, 3}


def new_copy(tree, seed):
    other = new_tree(tree.question, seed)
    other.nodes = tree.nodes
    return other


def test_one_simulation_backs_up_the_leaf_value_and_each_terminal_child():
    policy = ScriptedPolicy(
        {("q", ""): [final("3"), final("5"), Step("a\n", 0.4), Step("", finish="eos")]}
    )
    [tree] = grow(policy, [question(policy, "q")], simulations=1, children=4, leaf_value="head")
    root, right, wrong, going, empty = tree.nodes
    assert (right.reward, wrong.reward, empty.reward) == (1.0, -1.0, -1.0)
    assert empty.terminal_reason == "empty" and not going.terminal
    assert (right.N, right.W, wrong.N, wrong.W, going.N) == (1, 1.0, 1, -1.0, 0)
    # root: its own estimate (leaf_value=head: the policy's value of the prompt) + 3 terminals
    assert root.N == 4 and root.W == pytest.approx(0.25 + 1.0 - 1.0 - 1.0)


def test_backup_adds_to_every_node_on_the_path():
    tree = new_tree(MCTSQuestion("q", (1,)), seed=0)
    tree.nodes += [Node(1, 0, 1, None, 1.0, 0), Node(2, 1, 2, None, 1.0, 0)]
    backup(tree, 2, -1.0)
    backup(tree, 1, 0.5)
    assert [(n.N, n.W) for n in tree.nodes] == [(2, -0.5), (2, -0.5), (1, -1.0)]


# -- terminals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (Step("cut off", finish="length"), "truncated"),
        (Step(" \n"), "empty"),
        (Step("the end", finish="eos"), "error"),
        (Step("the end", finish="stop"), "error"),
    ],
)
def test_dead_ends_are_terminal_with_reward_minus_one(step, reason):
    policy = ScriptedPolicy({("q", ""): [step]})
    [tree] = grow(policy, [question(policy, "q")], simulations=3, children=1)
    child = tree.nodes[1]
    assert child.terminal and child.terminal_reason == reason and child.reward == -1.0
    # its only child is terminal: the root is exhausted and the tree ends after one expansion
    assert tree.nodes[0].terminal_reason == "exhausted" and tree.simulations == 1


def test_depth_cut_and_token_budget():
    policy = ScriptedPolicy(default=lambda q, p, s, j: Step(f"s{p.count(chr(10))}\n"))
    [tree] = grow(policy, [question(policy, "q")], simulations=10, children=1, max_depth=3)
    # a chain of only children: the terminal leaf exhausts every node above it
    assert [n.terminal_reason for n in tree.nodes[1:]] == ["exhausted", "exhausted", "max_depth"]
    assert tree.nodes[3].reward == -1.0 and tree.done
    policy = ScriptedPolicy(default=lambda q, p, s, j: Step("abcd\n"))
    [tree] = grow(policy, [question(policy, "q")], simulations=10, children=1, max_new_tokens=9)
    assert [n.terminal_reason for n in tree.nodes[1:]] == ["exhausted", "context"]


def test_duplicate_siblings_are_kept_once():
    policy = ScriptedPolicy(
        {
            ("q", ""): [Step("a\n"), Step("a\n"), Step("b\n")],
            ("q", "a\n"): [final("3")],
            ("q", "b\n"): [final("3")],
        }
    )
    [tree] = grow(policy, [question(policy, "q")], simulations=1, children=3)
    assert [n.sample.text for n in tree.nodes[1:]] == ["a\n", "b\n"]
    assert tree.tokens_generated == 6  # the duplicate was still generated
    again = ScriptedPolicy(policy.script)
    [kept] = grow(
        again,
        [question(again, "q")],
        simulations=1,
        children=3,
        drop_duplicates=False,
    )
    assert len(kept.nodes) == 4


def test_a_solved_tree_has_q_values_that_match_its_backups():
    script = {
        ("q", ""): [Step("a\n", 0.1), Step("b\n", -0.2)],
        ("q", "a\n"): [final("3"), Step("c\n")],
        ("q", "b\n"): [final("4")],
        ("q", "a\nc\n"): [final("3")],
    }
    policy = ScriptedPolicy(script)
    [tree] = grow(policy, [question(policy, "q")], simulations=6, children=2)
    record_nodes = tree.to_nodes()
    for node in record_nodes:
        children = [c for c in record_nodes if c.parent_id == node.node_id]
        if node.node_id and not node.terminal:
            # each visit of an inner node came through one of its children or its own estimate
            assert node.N >= sum(c.N for c in children)
    assert any(n.reward == 1.0 for n in record_nodes) and any(
        n.reward == -1.0 for n in record_nodes
    )
    TreeRecord(
        question_id="q",
        question="q",
        gold_answer="3",
        step_format=ARITH.to_dict(),
        tokenizer_fingerprint="x",
        chat_template=None,
        prompt_ids=tree.question.prompt_ids,
        nodes=record_nodes,
    )


# -- determinism --------------------------------------------------------------------------------
def random_steps(question: str, prefix: str, seed: int, j: int) -> Step:
    rng = random.Random(f"{seed}/{j}")
    depth = prefix.count("\n")
    if rng.random() < 0.3 * depth:
        return final(str(rng.randint(1, 4)), round(rng.uniform(-1, 1), 3), finish="delimiter")
    return Step(f"{question}{depth}-{rng.randint(0, 3)}\n", round(rng.uniform(-1, 1), 3))


def _signature(tree):
    return [
        (n.parent_id, n.sample.text if n.sample else "", n.N, round(n.W, 9), n.terminal_reason)
        for n in tree.nodes
    ]


@pytest.mark.parametrize("leaf_value", ["zero", "head"])
def test_trees_do_not_depend_on_which_trees_share_a_batch(leaf_value):
    texts = ["q", "r", "s", "t"]

    def run(max_trees):
        policy = ScriptedPolicy(default=random_steps, mode="seeded")
        qs = [question(policy, t, gold="2") for t in texts]
        trees = grow(
            policy,
            qs,
            simulations=12,
            children=3,
            leaf_value=leaf_value,
            max_trees=max_trees,
            seed=5,
        )
        return {t.question.question_id: _signature(t) for t in trees}, policy

    together, policy = run(None)
    alone, _ = run(1)
    assert together == alone
    assert max(len(reqs) for reqs, _ in policy.calls) == len(texts)  # all trees in one call
    other_seed_policy = ScriptedPolicy(default=random_steps, mode="seeded")
    qs = [question(other_seed_policy, t, gold="2") for t in texts]
    other = grow(other_seed_policy, qs, simulations=12, children=3, seed=6)
    assert {t.question.question_id: _signature(t) for t in other} != together


def test_trees_in_flight_are_yielded_as_they_finish():
    policy = ScriptedPolicy(default=random_steps, mode="seeded")
    qs = [question(policy, t, gold="2") for t in "abcde"]
    out = list(
        grow_trees(qs, policy, MCTSOptions(simulations=4, children=2), grade=grade, max_trees=2)
    )
    assert sorted(t.question.question_id for t in out) == list("abcde")
    assert max(len(reqs) for reqs, _ in policy.calls) <= 2


def test_gold_answers_need_a_grader_and_head_leaves_need_a_head():
    policy = ScriptedPolicy({("q", ""): [final("3")]})
    with pytest.raises(ValueError, match="grade"):
        list(grow_trees([question(policy, "q")], policy, MCTSOptions()))
    headless = ScriptedPolicy({("q", ""): [final("3")]}, value_head=False)
    with pytest.raises(ValueError, match="value head"):
        list(
            grow_trees(
                [question(headless, "q")], headless, MCTSOptions(leaf_value="head"), grade=grade
            )
        )


# -- test-time MCTS as a decoding ----------------------------------------------------------------
def test_mcts_decoding_returns_the_most_visited_finished_path():
    from svpo_harness.core.search import RootState, SearchOptions, run_search

    script = {
        ("q", ""): [Step("a\n", 0.6), Step("b\n", -0.6)],
        ("q", "a\n"): [final("3", 0.9, finish="delimiter"), Step("c\n", 0.1)],
        ("q", "b\n"): [final("4", -0.9, finish="delimiter"), Step("d\n", -0.1)],
        ("q", "a\nc\n"): [final("3", 0.8, finish="delimiter")],
        ("q", "b\nd\n"): [final("5", -0.8, finish="delimiter")],
    }
    policy = ScriptedPolicy(script)
    roots = [RootState("q", policy.encode_prompt("q"))]
    opts = SearchOptions(n_samples=2, simulations=8, temperature=0.6)
    [res] = run_search("mcts", roots, policy, opts, seed=0)
    assert res.decoding == "mcts" and res.finished and res.has_answer
    assert res.text.startswith("a\n") and "boxed{3}" in res.text  # the high-value branch
    ids = {c.id: c for c in res.tree}
    path = []
    node = ids[res.chosen_id]
    while True:
        path.append(node)
        if node.parent_id == 0:
            break
        node = ids[node.parent_id]
    assert "".join(c.text for c in reversed(path)) == res.text
    assert res.tokens_generated == sum(len(c.token_ids) for c in res.tree)
    assert res.policy_calls >= 2 and all(req.n == 2 for reqs, _ in policy.calls for req in reqs)


@pytest.mark.parametrize(("gold", "expected"), [("3", 1.0), ("4", -1.0)])
def test_rollout_leaf_value_is_the_graded_completion(gold, expected):
    script = {("q", ""): [Step("a\n")], ("q", "a\n"): [final("3", finish="delimiter")]}
    policy = ScriptedPolicy(script)
    [tree] = grow(
        policy, [question(policy, "q", gold=gold)], simulations=1, children=1, leaf_value="rollout"
    )
    root, child = tree.nodes
    assert (root.N, root.W) == (1, expected)  # the root's estimate: its rollout "a", "3"
    assert child.N == 0 and not child.terminal
    rollout_tokens = len("a\n") + len("so \\boxed{3}")
    assert tree.tokens_generated == len("a\n") + rollout_tokens
