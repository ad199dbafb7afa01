"""Monte Carlo Tree Search over reasoning steps (method.md section 3); pure Python, no torch.

Many trees advance in lock-step: every round, each open tree selects one leaf (PUCT), all those
leaves are expanded by ONE batched ``policy.sample_steps`` call, rewards of the new terminal
children are graded in one batch, and each tree backs up:

- the leaf's own value estimate along the path leaf -> root (``leaf_value``: ``zero``;
  ``head``: the value the head read when the leaf was sampled, the root's from
  ``policy.values``; ``rollout``: +1/-1 for one sampled completion from the leaf, graded like a
  terminal, its tokens counted as cost but not stored in the tree);
- separately, the reward of **each** terminal child the expansion created, along its path.

Every backup adds ``N += 1, W += v`` to each node it passes (so one simulation can make several
backups). A node whose children are all terminal becomes terminal ("exhausted"). Rewards: +1 for
a marked answer equivalent to the gold answer, -1 for a wrong one and for every other terminal
(truncated, empty, EOS without an answer, ``max_depth``, the path's token budget). Without a
gold answer (test-time search) a terminal answer's value is the head's value at it (0 without a
head).

Determinism: expansion ``node_id`` of tree ``(question_id, tree_index)`` samples with seed
``derive_seed(seed, question_id, tree_index, node_id)`` and PUCT ties draw from the tree's own
stream, so a tree does not depend on which trees share its batches (resume after a kill).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from svpo_harness.core.mcts_rollout import rollout_values
from svpo_harness.core.mcts_tree import (
    LEAF_VALUES,
    AnswerFn,
    GradeFn,
    LeafValue,
    MCTSOptions,
    MCTSQuestion,
    Node,
    Tree,
    backup,
    mark_exhausted,
    marked_answer,
    new_tree,
    select_leaf,
)
from svpo_harness.core.policy import StepPolicy, StepRequest, StepSample
from svpo_harness.core.seeding import derive_seed
from svpo_harness.core.step_format import StepFormat

# The tree lives in core.mcts_tree; its names stay importable from here.
__all__ = [
    "LEAF_VALUES",
    "AnswerFn",
    "GradeFn",
    "LeafValue",
    "MCTSOptions",
    "MCTSQuestion",
    "Node",
    "Tree",
    "add_children",
    "backup",
    "grow_trees",
    "mark_exhausted",
    "marked_answer",
    "new_tree",
    "select_leaf",
]


def add_children(
    tree: Tree,
    leaf_id: int,
    samples: Sequence[StepSample],
    fmt: StepFormat,
    opts: MCTSOptions,
    answer_fn: AnswerFn,
) -> list[int]:
    """Record the expansion's samples as children (duplicates dropped); classify terminals.
    Returns the new child ids. Rewards of answers are filled in by the caller (batched)."""
    leaf = tree.nodes[leaf_id]
    seen: set[tuple[int, ...]] = set()
    new = []
    for sample in samples:
        tree.tokens_generated += sample.sampled_count
        key = sample.ids_for_value
        if opts.drop_duplicates and key in seen:
            tree.duplicates.append((leaf_id, sample))
            continue
        seen.add(key)
        node = Node(
            node_id=len(tree.nodes),
            parent_id=leaf_id,
            depth=leaf.depth + 1,
            sample=sample,
            prior=math.exp(sample.logprob_mean),
            path_tokens=leaf.path_tokens + len(sample.token_ids),
            value=sample.value,
        )
        _classify(node, sample, fmt, opts, answer_fn)
        tree.nodes.append(node)
        leaf.children.append(node.node_id)
        new.append(node.node_id)
    return new


def _classify(
    node: Node, sample: StepSample, fmt: StepFormat, opts: MCTSOptions, answer_fn: AnswerFn
) -> None:
    def end(reason: str, reward: float | None = -1.0) -> None:
        node.terminal, node.terminal_reason, node.reward = True, reason, reward

    if sample.finish_reason == "length":
        end("truncated")
    elif fmt.is_empty_step(sample.text):
        end("empty")
    elif fmt.is_final_step(sample.text):
        node.answer = answer_fn(sample.text)
        end("answer", None)  # graded by the caller
    elif sample.finish_reason in ("eos", "stop"):
        end("error")  # the solution ended without a marked answer
    elif node.depth >= opts.max_depth:
        end("max_depth")
    elif opts.max_new_tokens is not None and node.path_tokens >= opts.max_new_tokens:
        end("context")


def grow_trees(
    questions: Sequence[MCTSQuestion],
    policy: StepPolicy,
    opts: MCTSOptions,
    *,
    seed: int = 0,
    grade: GradeFn | None = None,
    answer_fn: AnswerFn | None = None,
    max_trees: int | None = None,
    max_rows: int | None = None,
) -> Iterator[Tree]:
    """Grow one tree per question, ``max_trees`` open at a time (None: all); yield each tree as
    soon as it is finished (simulations spent or root exhausted), in finishing order.

    ``grade`` grades (answer, gold) pairs; required when questions carry gold answers.
    ``max_rows`` bounds the sampled rows of one policy call (trees wait for the next round).
    """
    if any(q.gold_answer is not None for q in questions) and grade is None:
        raise ValueError("questions with gold answers need a grade function (rewards)")
    if opts.leaf_value == "head" and not policy.has_value_head:
        raise ValueError("leaf_value='head' needs a policy with a value head")
    if answer_fn is None:
        answer_fn = marked_answer
    fmt = policy.step_format
    step_cap = opts.max_step_tokens or fmt.max_step_tokens
    stop = tuple(fmt.stop_sequences if opts.stop is None else opts.stop)
    waiting = list(questions)[::-1]
    open_trees: list[Tree] = []
    limit = len(questions) if max_trees is None else max(1, max_trees)
    while waiting or open_trees:
        while waiting and len(open_trees) < limit:
            tree = new_tree(waiting.pop(), seed)
            if opts.leaf_value == "head":
                tree.nodes[0].value = policy.values([tree.question.prompt_ids])[0]
            open_trees.append(tree)
        jobs: list[tuple[Tree, int]] = []
        rows = 0
        for tree in open_trees:
            if max_rows is not None and jobs and rows + opts.children > max_rows:
                break
            leaf = select_leaf(tree, opts.c_puct)
            if not tree.done:
                jobs.append((tree, leaf))
                rows += opts.children
        if jobs:
            _expand(jobs, policy, opts, fmt, step_cap, stop, seed, grade, answer_fn)
        still_open = []
        for tree in open_trees:
            if tree.done or tree.simulations >= opts.simulations:
                yield tree
            else:
                still_open.append(tree)
        open_trees = still_open


def _expand(
    jobs: Sequence[tuple[Tree, int]],
    policy: StepPolicy,
    opts: MCTSOptions,
    fmt: StepFormat,
    step_cap: int,
    stop: tuple[str, ...],
    seed: int,
    grade: GradeFn | None,
    answer_fn: AnswerFn,
) -> None:
    """One batched sampling call for every tree's leaf, one grading batch, then backups."""
    requests = []
    for tree, leaf_id in jobs:
        q = tree.question
        leaf = tree.nodes[leaf_id]
        cap = step_cap
        if opts.max_new_tokens is not None:
            cap = max(1, min(cap, opts.max_new_tokens - leaf.path_tokens))
        requests.append(
            StepRequest(
                state_ids=tree.state_ids(leaf_id),
                n=opts.children,
                seed=derive_seed(seed, q.question_id, q.tree_index, leaf_id),
                temperature=opts.temperature,
                max_step_tokens=cap,
                stop=stop,
            )
        )
    outputs = policy.sample_steps(requests, with_values=policy.has_value_head)
    created = []
    for (tree, leaf_id), samples in zip(jobs, outputs, strict=True):
        tree.policy_calls += 1
        created.append(add_children(tree, leaf_id, samples, fmt, opts, answer_fn))
    to_grade = [
        (tree, cid)
        for (tree, _), kids in zip(jobs, created, strict=True)
        for cid in kids
        if tree.nodes[cid].terminal_reason == "answer" and tree.question.gold_answer is not None
    ]
    if to_grade and grade is not None:
        verdicts = grade(
            [(tree.nodes[c].answer or "", tree.question.gold_answer or "") for tree, c in to_grade]
        )
        for (tree, cid), ok in zip(to_grade, verdicts, strict=True):
            tree.nodes[cid].reward = 1.0 if ok else -1.0
    rollouts = (
        rollout_values(jobs, policy, opts, step_cap, stop, seed, grade)
        if opts.leaf_value == "rollout"
        else {}
    )
    for (tree, leaf_id), kids in zip(jobs, created, strict=True):
        leaf = tree.nodes[leaf_id]
        leaf_estimate = 0.0
        if opts.leaf_value == "head" and leaf.value is not None:
            leaf_estimate = leaf.value
        elif opts.leaf_value == "rollout":
            leaf_estimate = rollouts[(id(tree), leaf_id)]
        backup(tree, leaf_id, leaf_estimate)
        for cid in kids:
            child = tree.nodes[cid]
            if child.terminal:
                if child.reward is None:  # an answer without gold: the head's view of it
                    backup(tree, cid, child.value if child.value is not None else 0.0)
                else:
                    backup(tree, cid, child.reward)
        mark_exhausted(tree, leaf_id)
        tree.simulations += 1
