"""The records `svpo value-eval` scores, read and checked against the model's tokenizer.

Pairs and step_q records come through ``pref_data.load_preference_data`` (its checks: tokenizer
fingerprint, step format, file:line errors, no pairs refused). Final steps, the items of the AUC
against final correctness: from trees (an annotation folder's ``trees.jsonl``, or tree records in
the file) the terminal ``answer`` nodes labelled by their reward (+1 / -1); from a pairs file
without trees the ``step_q`` records with ``terminal`` set and no child in the file (an
``exhausted`` node is flagged terminal too but is not a final step), labelled by the sign of q.
No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from svpo_harness.core.schemas import PairRecord, StepQRecord, TreeRecord


class ValueEvalError(ValueError):
    """Bad input for value-eval (no value head, other tokenizer, nothing to score): one line."""


@dataclass
class EvalData:
    pairs: list[PairRecord]
    steps: list[StepQRecord]  # every step_q record: V against Q
    finals: list[StepQRecord]  # final steps, q = +1 correct / -1 not: the AUC's items
    finals_from: str  # "trees" | "step_q" | "none"
    files: list[str] = field(default_factory=list)


def final_steps(tree: TreeRecord) -> list[StepQRecord]:
    """The tree's terminal answer nodes as records: value read after the step, q = reward."""
    out = []
    for node in tree.nodes:
        if node.terminal_reason != "answer" or node.reward not in (1.0, -1.0):
            continue
        assert node.parent_id is not None  # the root is never an answer
        out.append(
            StepQRecord(
                question_id=tree.question_id,
                prefix_ids=tree.state_ids(node.parent_id),
                step_ids=node.train_ids(),
                step_text=node.text,
                q=float(node.reward),
                n=max(1, node.N),
                tokenizer_fingerprint=tree.tokenizer_fingerprint,
                step_format=str(tree.step_format.get("name")),
                node_id=node.node_id,
                tree_index=tree.tree_index,
                terminal=True,
                # only the value is read from these rows: the log-prob mask does not matter
            )
        )
    return out


def leaf_terminals(steps: Sequence[StepQRecord]) -> list[StepQRecord]:
    """Terminal step_q records with no child among ``steps`` (drops ``exhausted`` nodes)."""
    states = {(s.question_id, s.tree_index, s.prefix_ids) for s in steps}
    return [
        s
        for s in steps
        if s.terminal and (s.question_id, s.tree_index, s.prefix_ids + s.step_ids) not in states
    ]


def _read_trees(file: Path, fingerprint: str, step_format: str) -> list[TreeRecord]:
    from svpo_harness.core.jsonl_io import read_jsonl_records

    trees = []
    for tree in read_jsonl_records(file, "tree"):
        assert isinstance(tree, TreeRecord)
        fmt = tree.step_format.get("name")
        if tree.tokenizer_fingerprint != fingerprint:  # the same words as load_preference_data
            raise ValueEvalError(
                f"{file}: tree of question {tree.question_id}: made with tokenizer "
                f"{tree.tokenizer_fingerprint}, but the model's is {fingerprint}: its token ids "
                "mean other text (evaluate the model the data was made with)"
            )
        if fmt != step_format:
            raise ValueEvalError(
                f"{file}: tree of question {tree.question_id}: made with step format {fmt!r}, "
                f"but the model uses {step_format!r}"
            )
        trees.append(tree)
    return trees


def load_eval_data(source: str | Path, *, tokenizer_fingerprint: str, step_format: str) -> EvalData:
    """Pairs and step_q records (checked by ``load_preference_data``), plus final steps."""
    from svpo_harness.pipelines.train import PreferenceDataError, load_preference_data

    path = Path(source)
    if not path.exists():
        raise ValueEvalError(f"data not found: {path} (an annotation folder or a JSONL file)")
    try:
        data = load_preference_data(
            path, "svpo", tokenizer_fingerprint=tokenizer_fingerprint, step_format=step_format
        )
    except PreferenceDataError as err:
        raise ValueEvalError(str(err).replace(" for --objective svpo", " to evaluate")) from None
    pairs = [r for r in data.records if isinstance(r, PairRecord)]
    steps = [r for r in data.records if isinstance(r, StepQRecord)]
    tree_file = path / "trees.jsonl" if path.is_dir() else path
    trees = (
        _read_trees(tree_file, tokenizer_fingerprint, step_format) if tree_file.is_file() else []
    )
    files = list(data.source) + ([str(tree_file)] if trees and path.is_dir() else [])
    if trees:
        finals = [s for tree in trees for s in final_steps(tree)]
        return EvalData(pairs, steps, finals, "trees", files)
    finals = leaf_terminals(steps)
    return EvalData(pairs, steps, finals, "step_q" if finals else "none", files)


__all__ = [
    "EvalData",
    "ValueEvalError",
    "final_steps",
    "leaf_terminals",
    "load_eval_data",
]
