"""Step-level preference pairs, step Q-values and correct paths from MCTS trees (method.md 4).

Pure functions over a ``TreeRecord``: nothing here searches, so pairs can be re-extracted from
saved trees with other rules (``svpo pairs``) and the annotation pipeline calls the same code.
For each internal node, its *eligible* children (terminal, or visited at least ``min_visits``
times; a child visited once carries a single untrained value estimate, i.e. noise) are ordered
by Q, ties by lower node id so the output never depends on anything but the tree:
- ``best_vs_rest``: the best child against every sibling whose Q is lower by >= ``min_q_gap``;
- ``all_pairs``: every ordered pair (higher Q first) with that gap.
Every visited non-root step becomes a ``StepQRecord`` (value regression), every root-to-answer
path whose answer earned reward +1 a ``PathRecord`` (SFT baseline). No torch (core layer).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from svpo_harness.core.schemas import PairRecord, PathRecord, StepQRecord, TreeNode, TreeRecord

RULES = ("best_vs_rest", "all_pairs")
# W / N may miss the gap or [-1, 1] by float rounding (0.5 as 1.5 / 3 - 1 / 3); "exactly at the
# gap" must count, so gaps and bounds get this much slack.
_EPS = 1e-9

ExtractedRecord = PairRecord | StepQRecord | PathRecord


@dataclass
class PairStats:
    """Counts over the trees one run extracted from (summary line, ``stats.json``)."""

    trees: int = 0
    pairs: int = 0
    step_q: int = 0
    paths: int = 0
    trees_without_pairs: int = 0
    skipped_no_ids: int = 0  # visited steps with no train ids, left out of pairs and step_q
    skipped_identical: int = 0  # pairs dropped because both steps have the same ids
    skipped_no_answer: int = 0  # reward +1 terminals without an answer string: no path

    def add(self, other: PairStats) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        """One line: the counts a user checks first, then the non-zero skip counts."""
        text = (
            f"trees={self.trees} pairs={self.pairs} step_q={self.step_q} paths={self.paths} "
            f"trees_without_pairs={self.trees_without_pairs}"
        )
        skips = {k: v for k, v in asdict(self).items() if k.startswith("skipped_") and v}
        return text + "".join(f" {k}={v}" for k, v in skips.items())


def _check_settings(rule: str, min_q_gap: float, min_visits: int) -> None:
    if rule not in RULES:
        raise ValueError(f"rule: expected one of {list(RULES)}, got {rule!r}")
    if not 0.0 <= min_q_gap <= 2.0:
        raise ValueError(
            f"min_q_gap: expected a number in [0, 2] (Q is in [-1, 1]), got {min_q_gap}"
        )
    if min_visits < 1:
        raise ValueError(f"min_visits: expected an integer >= 1, got {min_visits}")


def _q(node: TreeNode) -> float:
    """The node's Q clamped to [-1, 1] (records validate the range; W / N may overshoot by ulps)."""
    assert node.N >= 1, f"node {node.node_id}: Q of an unvisited node"
    return min(1.0, max(-1.0, node.W / node.N))


def train_mask(node: TreeNode) -> tuple[int, ...]:
    """The DPO mask of ``node.train_ids()``: sampled_mask (or all 1) + 1 per appended id.

    Appended delimiter ids count as the step's own (they end it, schemas.PairRecord); a mask of
    all 1s is written as () to keep files compact.
    """
    mask = (node.sampled_mask or (1,) * len(node.token_ids)) + (1,) * len(node.appended_ids)
    return () if all(mask) else mask


def _children(tree: TreeRecord) -> dict[int, list[TreeNode]]:
    kids: dict[int, list[TreeNode]] = {}
    for node in tree.nodes[1:]:
        assert node.parent_id is not None, f"node {node.node_id}: no parent"
        kids.setdefault(node.parent_id, []).append(node)
    return kids


def ranked_children(siblings: Sequence[TreeNode], min_visits: int) -> list[TreeNode]:
    """Eligible siblings, best Q first, ties by lower node id (method.md section 4).

    Eligible: visited (so Q exists) and terminal or visited at least ``min_visits`` times.
    """
    eligible = [c for c in siblings if c.N >= 1 and (c.terminal or c.N >= min_visits)]
    # Rounded so equal Qs that differ in the last bits (0.6 / 2, 0.9 / 3) tie and go by id.
    return sorted(eligible, key=lambda c: (-round(c.W / c.N, 12), c.node_id))


def _ordered_pairs(
    ranked: list[TreeNode], rule: str, min_q_gap: float
) -> Iterable[tuple[TreeNode, TreeNode]]:
    def far_enough(hi: TreeNode, lo: TreeNode) -> bool:
        return hi.W / hi.N - lo.W / lo.N >= min_q_gap - _EPS

    winners = ranked[:1] if rule == "best_vs_rest" else ranked
    for i, chosen in enumerate(winners):
        for rejected in ranked[i + 1 :]:
            if far_enough(chosen, rejected):
                yield chosen, rejected


def _pair(tree: TreeRecord, parent: int, chosen: TreeNode, rejected: TreeNode) -> PairRecord:
    prefix = tree.state_ids(parent)
    for child in (chosen, rejected):
        # Both steps follow the same state by construction; a broken tree must not slip through.
        state = tree.state_ids(child.node_id)
        assert state[: len(prefix)] == prefix and state[len(prefix) :] == child.token_ids, (
            f"node {child.node_id}: its state does not extend its parent's ({parent})"
        )
    return PairRecord(
        question_id=tree.question_id,
        prefix_ids=prefix,
        chosen_ids=chosen.train_ids(),
        rejected_ids=rejected.train_ids(),
        chosen_text=chosen.text,
        rejected_text=rejected.text,
        q_chosen=_q(chosen),
        q_rejected=_q(rejected),
        tokenizer_fingerprint=tree.tokenizer_fingerprint,
        step_format=tree.step_format["name"],
        chosen_node_id=chosen.node_id,
        rejected_node_id=rejected.node_id,
        parent_node_id=parent,
        tree_index=tree.tree_index,
        chosen_sampled_mask=train_mask(chosen),
        rejected_sampled_mask=train_mask(rejected),
    )


def _step_q(tree: TreeRecord, node: TreeNode) -> StepQRecord:
    assert node.parent_id is not None
    return StepQRecord(
        question_id=tree.question_id,
        prefix_ids=tree.state_ids(node.parent_id),
        step_ids=node.train_ids(),
        step_text=node.text,
        q=_q(node),
        n=node.N,
        tokenizer_fingerprint=tree.tokenizer_fingerprint,
        step_format=tree.step_format["name"],
        node_id=node.node_id,
        tree_index=tree.tree_index,
        terminal=node.terminal,
        step_sampled_mask=train_mask(node),
    )


def _path(tree: TreeRecord, leaf: TreeNode, answer: str) -> PathRecord:
    steps: list[TreeNode] = []
    node = leaf
    while node.parent_id is not None:
        steps.append(node)
        node = tree.nodes[node.parent_id]
    steps.reverse()
    masks = [
        (s.sampled_mask or (1,) * len(s.token_ids)) + (1,) * len(s.appended_ids) for s in steps
    ]
    return PathRecord(
        question_id=tree.question_id,
        question=tree.question,
        prompt_ids=tree.prompt_ids,
        step_ids=tuple(s.train_ids() for s in steps),
        step_texts=tuple(s.text for s in steps),
        answer=answer,
        tokenizer_fingerprint=tree.tokenizer_fingerprint,
        step_format=tree.step_format["name"],
        node_ids=tuple(s.node_id for s in steps),
        tree_index=tree.tree_index,
        # One full mask per step once any id of any step was not sampled; else () for all.
        step_sampled_masks=() if all(all(m) for m in masks) else tuple(masks),
    )


def extract_records(
    tree: TreeRecord,
    *,
    rule: str = "best_vs_rest",
    min_q_gap: float = 0.5,
    min_visits: int = 2,
    stats: PairStats | None = None,
) -> list[ExtractedRecord]:
    """Pairs (by parent node id), then step Q-values and correct paths (by node id) of ``tree``.

    ``stats``, when given, gets this tree's counts added (one tree, its records and skips).
    """
    _check_settings(rule, min_q_gap, min_visits)
    counts = PairStats(trees=1)
    pairs: list[ExtractedRecord] = []
    for parent, siblings in sorted(_children(tree).items()):
        # A step without ids has nothing to train on: left out before ranking (counted below).
        with_ids = [c for c in siblings if c.train_ids()]
        for chosen, rejected in _ordered_pairs(
            ranked_children(with_ids, min_visits), rule, min_q_gap
        ):
            if chosen.train_ids() == rejected.train_ids():
                # The same step sampled twice: the Q gap is noise and DPO's gradient is zero.
                counts.skipped_identical += 1
                continue
            pairs.append(_pair(tree, parent, chosen, rejected))
    step_qs: list[ExtractedRecord] = []
    paths: list[ExtractedRecord] = []
    for node in tree.nodes[1:]:
        if node.N >= 1:
            if node.train_ids():
                step_qs.append(_step_q(tree, node))
            else:
                counts.skipped_no_ids += 1
        if node.terminal and node.reward is not None and node.reward >= 1.0 - _EPS:
            if node.answer is None:
                counts.skipped_no_answer += 1
            else:
                paths.append(_path(tree, node, node.answer))
    counts.pairs, counts.step_q, counts.paths = len(pairs), len(step_qs), len(paths)
    counts.trees_without_pairs = int(not pairs)
    if stats is not None:
        stats.add(counts)
    return pairs + step_qs + paths
