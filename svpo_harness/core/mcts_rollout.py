"""``leaf_value="rollout"`` of MCTS: one sampled completion from each leaf, graded.

Kept apart from ``core.mcts`` (the tree and the lock-step loop); the completions run on the
same ``rollout`` engine as best-of-N and maj@k, in lock-step batches across trees, each chain
seeded by (seed, question, tree index, leaf id), so results do not depend on batch-mates.
"""

from __future__ import annotations

from collections.abc import Sequence

from svpo_harness.core.mcts_tree import GradeFn, MCTSOptions, Tree, marked_answer
from svpo_harness.core.policy import StepPolicy


def rollout_values(
    jobs: Sequence[tuple[Tree, int]],
    policy: StepPolicy,
    opts: MCTSOptions,
    step_cap: int,
    stop: tuple[str, ...],
    seed: int,
    grade: GradeFn | None,
) -> dict[tuple[int, int], float]:
    """One sampled completion from every job's leaf (all in lock-step batches), graded:
    +1 for a correct marked answer, -1 otherwise; 0 without a gold answer to grade against."""
    from svpo_harness.core.search.rollout import rollout
    from svpo_harness.core.search.types import RootState, SearchOptions

    values: dict[tuple[int, int], float] = {}
    by_depth: dict[int, list[tuple[Tree, int]]] = {}
    for tree, leaf_id in jobs:
        depth = tree.nodes[leaf_id].depth
        if tree.nodes[leaf_id].terminal or depth >= opts.max_depth:
            values[(id(tree), leaf_id)] = 0.0
        else:
            by_depth.setdefault(opts.max_depth - depth, []).append((tree, leaf_id))
    for remaining, group in by_depth.items():  # chains of the same length share a loop
        roots = [
            RootState(f"{t.question.question_id}/{t.question.tree_index}/{leaf}", t.state_ids(leaf))
            for t, leaf in group
        ]
        search = SearchOptions(
            max_depth=remaining, max_step_tokens=step_cap, temperature=opts.temperature, stop=stop
        )
        chains = rollout(
            roots, policy, search, seed, n_solutions=1, temperature=opts.temperature,
            with_values=False,
        )  # fmt: skip
        ends = []
        for (tree, leaf), chain in zip(group, chains, strict=True):
            tree.tokens_generated += chain.question.tokens_generated
            tree.policy_calls += chain.question.policy_calls
            end = chain.ends[0]
            text = "".join(c.text for c in chain.question.path(end.id))
            ends.append((tree, leaf, end.status == "finished", text))
        graded = [(t, leaf, text) for t, leaf, ok, text in ends if ok and t.question.gold_answer]
        verdicts = (
            grade(
                [(marked_answer(text) or "", t.question.gold_answer or "") for t, _, text in graded]
            )
            if graded and grade is not None
            else []
        )
        correct = {(id(t), leaf) for (t, leaf, _), ok in zip(graded, verdicts, strict=True) if ok}
        for tree, leaf, _, _ in ends:
            if tree.question.gold_answer is None:
                values[(id(tree), leaf)] = 0.0
            else:
                values[(id(tree), leaf)] = 1.0 if (id(tree), leaf) in correct else -1.0
    return values
