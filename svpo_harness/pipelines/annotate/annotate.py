"""`svpo annotate`: MCTS step-level annotation of questions with gold answers (method.md 3-4).

One run = one output folder (``pipelines.runs.run_dir``): ``manifest.json`` (the settings that
define the results), ``trees.jsonl`` (one search tree per (question, tree index)),
``pairs.jsonl`` (typed ``pair`` / ``step_q`` / ``path`` records), ``warnings.jsonl`` (skipped or
suspicious input, file:line) and ``stats.json``.

Trees are written as they finish; a tree's records go to ``pairs.jsonl`` first and its line to
``trees.jsonl`` last, so the tree line commits the tree: after a kill, the same command drops a
torn last line, drops records of trees that were not committed, skips committed trees and
continues. Each tree's samples are seeded by (seed, question, tree index, node), so a resumed
run writes what an uninterrupted one would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from svpo_harness.core.mcts import MCTSOptions, MCTSQuestion, Tree, grow_trees
from svpo_harness.core.pairs import PairStats, extract_records
from svpo_harness.core.schemas import TreeRecord
from svpo_harness.core.tool_policy import with_tools
from svpo_harness.pipelines.annotate.annotate_data import AnnotationQuestion
from svpo_harness.sandbox import sandbox_runner


@dataclass(frozen=True)
class PairRule:
    rule: str = "best_vs_rest"
    min_q_gap: float = 0.5
    min_visits: int = 2


def tree_record(tree: Tree, question: AnnotationQuestion, policy: Any) -> TreeRecord:
    """What the search found, and nothing about the run (settings go to the manifest)."""
    chat = None
    if getattr(policy, "apply_chat_template", False):  # the template the prompt ids came from
        chat = policy.chat_template or getattr(policy.tokenizer, "chat_template", None)
    return TreeRecord(
        question_id=question.question_id,
        question=question.question,
        gold_answer=question.gold_answer,
        step_format=policy.step_format.to_dict(),
        tokenizer_fingerprint=policy.tokenizer_fingerprint,
        chat_template=chat,
        prompt_ids=tree.question.prompt_ids,
        nodes=tree.to_nodes(),
        tree_index=tree.question.tree_index,
    )


def solved(record: TreeRecord) -> bool:
    return any(node.reward == 1.0 for node in record.nodes)


def annotate_trees(
    questions: Sequence[AnnotationQuestion],
    policy: Any,
    opts: MCTSOptions,
    *,
    seed: int,
    grade: Callable[[Sequence[tuple[str, str]]], list[bool]],
    trees_per_question: int = 1,
    done: set[tuple[str, int]] | frozenset[tuple[str, int]] = frozenset(),
    trees_in_flight: int = 16,
    batch_rows: int | None = None,
    pair_rule: PairRule = PairRule(),
    on_tree: Callable[[TreeRecord, list[Any], dict[str, Any]], None],
) -> None:
    """Grow every (question, tree index) not in ``done`` and hand each finished tree, its
    pair/step_q/path records and its counters to ``on_tree`` (which writes them).

    A policy of a tool format (``tool``) runs each step's code in the sandbox and inserts its
    output (core.tool_policy); the trees record those ids as not sampled."""
    policy = with_tools(policy, sandbox_runner)
    by_id = {q.question_id: q for q in questions}
    todo = [
        MCTSQuestion(q.question_id, policy.encode_prompt(q.question), q.gold_answer, index)
        for q in questions
        for index in range(trees_per_question)
        if (q.question_id, index) not in done
    ]
    for tree in grow_trees(
        todo,
        policy,
        opts,
        seed=seed,
        grade=grade,
        max_trees=trees_in_flight,
        max_rows=batch_rows,
    ):
        record = tree_record(tree, by_id[tree.question.question_id], policy)
        stats = PairStats()
        records = extract_records(
            record,
            rule=pair_rule.rule,
            min_q_gap=pair_rule.min_q_gap,
            min_visits=pair_rule.min_visits,
            stats=stats,
        )
        counters = {
            "nodes": len(record.nodes),
            "tokens_generated": tree.tokens_generated,
            "policy_calls": tree.policy_calls,
            "solved": solved(record),
            "pair_stats": stats.to_dict(),
            "finished_at": time.time(),
        }
        on_tree(record, records, counters)
