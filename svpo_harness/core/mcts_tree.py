"""The MCTS tree (method.md section 3): options, nodes, PUCT selection, backup; no torch.

Kept apart from ``core.mcts`` (the lock-step loop that grows trees) so that
``core.mcts_rollout`` (``leaf_value="rollout"``) uses the tree without importing the loop that
calls it. ``core.mcts`` re-exports every name here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from svpo_harness.core.policy import StepSample
from svpo_harness.core.schemas import TreeNode
from svpo_harness.core.seeding import derive_seed

LeafValue = Literal["zero", "head", "rollout"]
LEAF_VALUES: tuple[str, ...] = ("zero", "head", "rollout")
# (answer text, gold answer) pairs -> correct or not, in one batch (grading.grade_many)
GradeFn = Callable[[Sequence[tuple[str, str]]], list[bool]]
AnswerFn = Callable[[str], str | None]  # the marked answer of a step's text, if any


@dataclass(frozen=True)
class MCTSOptions:
    """Settings of one search (method.md section 3 defaults)."""

    simulations: int = 40
    children: int = 5  # steps sampled per expansion
    c_puct: float = 1.5
    temperature: float = 0.6
    max_depth: int = 8
    max_step_tokens: int | None = None  # None: the step format's
    max_new_tokens: int | None = None  # a path's token budget; reaching it is terminal
    leaf_value: LeafValue = "zero"
    drop_duplicates: bool = True  # siblings with the same ids are sampled once
    stop: tuple[str, ...] | None = None  # None: the step format's stop sequences

    def __post_init__(self) -> None:
        for name in ("simulations", "children", "max_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"MCTSOptions.{name} must be >= 1, got {getattr(self, name)}")
        if self.c_puct < 0 or self.temperature < 0:
            raise ValueError("MCTSOptions.c_puct and temperature must be >= 0")
        if self.leaf_value not in LEAF_VALUES:
            raise ValueError(f"leaf_value must be one of {LEAF_VALUES}, got {self.leaf_value!r}")


@dataclass(frozen=True)
class MCTSQuestion:
    """One tree to grow: ``gold_answer`` None means test-time search (no reward)."""

    question_id: str
    prompt_ids: tuple[int, ...]
    gold_answer: str | None = None
    tree_index: int = 0


@dataclass
class Node:
    node_id: int
    parent_id: int | None
    depth: int
    sample: StepSample | None  # None at the root
    prior: float
    path_tokens: int
    N: int = 0  # noqa: N815 (the paper's names)
    W: float = 0.0  # noqa: N815
    value: float | None = None
    terminal: bool = False
    terminal_reason: str | None = None
    answer: str | None = None
    reward: float | None = None
    children: list[int] = field(default_factory=list)

    @property
    def Q(self) -> float:  # noqa: N802
        return self.W / self.N if self.N else 0.0


@dataclass
class Tree:
    """One question's tree while it grows (nodes[i].node_id == i, nodes[0] is the root)."""

    question: MCTSQuestion
    nodes: list[Node]
    rng: random.Random
    simulations: int = 0
    tokens_generated: int = 0
    policy_calls: int = 0
    # siblings dropped as duplicates: (parent id, sample); generated, so they count as cost
    duplicates: list[tuple[int, StepSample]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.nodes[0].terminal

    def state_ids(self, node_id: int) -> tuple[int, ...]:
        steps = []
        node = self.nodes[node_id]
        while node.sample is not None:
            steps.append(node.sample.token_ids)
            node = self.nodes[node.parent_id]  # type: ignore[index]
        return self.question.prompt_ids + tuple(t for s in reversed(steps) for t in s)

    def path(self, node_id: int) -> list[int]:
        ids = []
        while node_id is not None:
            ids.append(node_id)
            node_id = self.nodes[node_id].parent_id  # type: ignore[assignment]
        return ids[::-1]

    def to_nodes(self) -> tuple[TreeNode, ...]:
        """The tree as schema records (what ``trees.jsonl`` stores)."""
        out = []
        for n in self.nodes:
            s = n.sample
            appended = s.value_ids[len(s.token_ids) :] if s is not None and s.eos_appended else ()
            out.append(
                TreeNode(
                    node_id=n.node_id,
                    parent_id=n.parent_id,
                    depth=n.depth,
                    token_ids=s.token_ids if s is not None else (),
                    text=s.text if s is not None else "",
                    prior=n.prior,
                    logprob_mean=s.logprob_mean if s is not None else None,
                    N=n.N,
                    W=n.W,
                    value=n.value,
                    terminal=n.terminal,
                    terminal_reason=n.terminal_reason,
                    answer=n.answer,
                    reward=n.reward,
                    finish_reason=s.finish_reason if s is not None else None,
                    retokenized=s.retokenized if s is not None else False,
                    eos_appended=bool(appended),
                    appended_ids=tuple(appended),
                    # a tool's output ids (0): no prior, no training; all 1 is stored as ()
                    sampled_mask=s.sampled_mask if s is not None and 0 in s.sampled_mask else (),
                )
            )
        return tuple(out)


def new_tree(question: MCTSQuestion, seed: int) -> Tree:
    rng = random.Random(derive_seed(seed, question.question_id, question.tree_index, "ties"))
    root = Node(node_id=0, parent_id=None, depth=0, sample=None, prior=1.0, path_tokens=0)
    return Tree(question=question, nodes=[root], rng=rng)


# -- one simulation, in pieces -------------------------------------------------------------------
def select_leaf(tree: Tree, c_puct: float) -> int:
    """PUCT from the root among non-terminal children down to a node without children."""
    node = tree.nodes[0]
    while node.children:
        open_children = [tree.nodes[c] for c in node.children if not tree.nodes[c].terminal]
        if not open_children:  # can only happen before backup marks it; treat as terminal
            mark_exhausted(tree, node.node_id)
            return select_leaf(tree, c_puct) if not tree.done else 0
        sqrt_n = math.sqrt(node.N)
        scores = [c.Q + c_puct * c.prior * sqrt_n / (1 + c.N) for c in open_children]
        best = max(scores)
        ties = [c for c, s in zip(open_children, scores, strict=True) if s == best]
        node = ties[0] if len(ties) == 1 else tree.rng.choice(ties)
    return node.node_id


def mark_exhausted(tree: Tree, node_id: int) -> None:
    """A node whose children are all terminal is terminal; so may be its ancestors."""
    while node_id is not None:
        node = tree.nodes[node_id]
        if node.terminal or not node.children:
            return
        if not all(tree.nodes[c].terminal for c in node.children):
            return
        node.terminal, node.terminal_reason = True, "exhausted"
        node_id = node.parent_id  # type: ignore[assignment]


def backup(tree: Tree, node_id: int, value: float) -> None:
    for nid in tree.path(node_id):
        tree.nodes[nid].N += 1
        tree.nodes[nid].W += value


def marked_answer(text: str) -> str | None:
    from svpo_harness.grading import extract_answer

    found = extract_answer(text)
    return found.answer if found is not None else None
