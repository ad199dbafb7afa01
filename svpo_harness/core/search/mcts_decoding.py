"""Test-time MCTS as a decoding (method.md section 3 without a gold answer).

The tree grows as in annotation (``svpo_harness.core.mcts``) with value-head leaf estimates
(``leaf_value="head"`` when the policy has a head, else ``zero``), ``c_puct`` 1.25 by default
and no rewards: a terminal answer backs up the head's value at it. The answer is the most
visited finished path: from the root, the most visited child whose subtree holds a finished
answer (ties: higher Q, then the earlier node), down to that answer. The result has the same
shape and cost accounting as every other decoding (``SearchResult``, one candidate per node).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from svpo_harness.core.mcts import MCTSOptions, MCTSQuestion, Tree, grow_trees
from svpo_harness.core.policy import StepPolicy, StepSample
from svpo_harness.core.search.types import (
    ROOT_ID,
    Candidate,
    RootState,
    SearchOptions,
    SearchResult,
)

DEFAULT_TEST_C_PUCT = 1.25


def mcts(
    roots: Sequence[RootState],
    policy: StepPolicy,
    opts: SearchOptions | None = None,
    seed: int = 0,
) -> list[SearchResult]:
    """Grow one tree per root (``opts.simulations``, ``opts.n_samples`` children per
    expansion) and return the most visited finished path of each."""
    opts = opts or SearchOptions()
    fmt = policy.step_format
    options = MCTSOptions(
        simulations=opts.simulations,
        children=opts.n_samples,
        c_puct=opts.c_puct,
        temperature=opts.temperature,
        max_depth=opts.max_depth if opts.max_depth is not None else fmt.max_steps,
        max_step_tokens=opts.max_step_tokens,
        max_new_tokens=opts.max_new_tokens,
        leaf_value="head" if policy.has_value_head else "zero",
        drop_duplicates=opts.drop_duplicates,
        stop=opts.stop,
    )
    keys = [str(root.key) for root in roots]
    if len(set(keys)) != len(keys):
        raise ValueError("root keys must be unique within a search")
    questions = [MCTSQuestion(key, root.prompt_ids) for key, root in zip(keys, roots, strict=True)]
    start = time.perf_counter()
    grown: dict[str, tuple[Tree, float]] = {}
    for tree in grow_trees(questions, policy, options, seed=seed):
        grown[tree.question.question_id] = (tree, time.perf_counter() - start)
    return [_result(root, *grown[key]) for root, key in zip(roots, keys, strict=True)]


def _finished(tree: Tree, node_id: int) -> bool:
    node = tree.nodes[node_id]
    return node.terminal_reason == "answer"


def _holds_answer(tree: Tree) -> dict[int, bool]:
    """node id -> whether its subtree holds a finished answer (children come after parents)."""
    holds = {n.node_id: _finished(tree, n.node_id) for n in tree.nodes}
    for node in reversed(tree.nodes):
        if node.parent_id is not None and holds[node.node_id]:
            holds[node.parent_id] = True
    return holds


def choose(tree: Tree) -> int:
    """The end of the most visited finished path (or of the most visited path, if none)."""
    holds = _holds_answer(tree)
    node = tree.nodes[0]
    while node.children:
        kids = [tree.nodes[c] for c in node.children]
        if holds[node.node_id]:
            kids = [k for k in kids if holds[k.node_id]]
        best = min(kids, key=lambda k: (-k.N, -k.Q, k.node_id))
        node = best
        if _finished(tree, node.node_id):
            break
    return node.node_id


def _result(root: RootState, tree: Tree, seconds: float) -> SearchResult:
    cands: list[Candidate] = []
    path_lp: dict[int, float] = {ROOT_ID: 0.0}
    for node in tree.nodes[1:]:
        s = node.sample
        assert s is not None and node.parent_id is not None
        path_lp[node.node_id] = path_lp[node.parent_id] + s.logprob_sum
        if node.terminal_reason == "answer":
            status, reason = "finished", "answer"
        elif node.terminal and node.terminal_reason != "exhausted":
            status, reason = "dropped", _end_reason(node.terminal_reason)
        else:
            status, reason = ("kept" if node.children else "pruned"), None
        cands.append(
            _candidate(s, node.node_id, node.parent_id, node.depth, node.path_tokens,
                       path_lp[node.node_id], node.terminal_reason == "answer",
                       node.Q if node.N else None, status, reason)
        )  # fmt: skip
    for k, (parent_id, s) in enumerate(tree.duplicates):
        parent = tree.nodes[parent_id]
        cands.append(
            _candidate(s, len(tree.nodes) + k, parent_id, parent.depth + 1,
                       parent.path_tokens + len(s.token_ids), path_lp[parent_id] + s.logprob_sum,
                       False, None, "duplicate", None)
        )  # fmt: skip
    chosen_id = choose(tree)
    path = tree.path(chosen_id)[1:]
    chosen = tree.nodes[chosen_id]
    samples = [tree.nodes[i].sample for i in path]
    return SearchResult(
        key=root.key,
        decoding="mcts",
        text="".join(s.text for s in samples if s is not None),
        step_token_ids=tuple(s.token_ids for s in samples if s is not None),
        finished=chosen.terminal_reason == "answer",
        has_answer=chosen.terminal_reason == "answer",
        value=chosen.value,
        score=chosen.Q if chosen.N else None,
        end_reason=_end_reason(chosen.terminal_reason) if chosen.terminal else None,
        chosen_id=chosen_id,
        tokens_generated=tree.tokens_generated,
        policy_calls=tree.policy_calls,
        seconds=seconds,
        tree=cands,
        prefill_tokens=sum(n.sample.prefill_tokens for n in tree.nodes if n.sample is not None),
    )


def _candidate(
    s: StepSample,
    cand_id: int,
    parent_id: int,
    depth: int,
    path_tokens: int,
    path_logprob_sum: float,
    has_answer: bool,
    score: float | None,
    status: str,
    reason: str | None,
) -> Candidate:
    """A search-log candidate for one sampled step (a tree node or a dropped duplicate)."""
    return Candidate(
        id=cand_id,
        parent_id=parent_id,
        depth=depth,
        text=s.text,
        token_ids=s.token_ids,
        value=s.value,
        logprob_sum=s.logprob_sum,
        logprob_mean=s.logprob_mean,
        finish_reason=s.finish_reason,
        has_answer=has_answer,
        path_tokens=path_tokens,
        path_logprob_sum=path_logprob_sum,
        score=score,
        status=status,  # type: ignore[arg-type]
        reason=reason,  # type: ignore[arg-type]
    )


def _end_reason(terminal_reason: str | None) -> str | None:
    """MCTS terminal reasons in the search log's vocabulary (``types.EndReason``)."""
    return {
        "answer": "answer",
        "truncated": "truncated",
        "empty": "empty",
        "error": "eos_no_answer",
        "max_depth": "max_depth",
        "context": "token_budget",
    }.get(terminal_reason or "", None)
