"""What `svpo view` shows, read from an annotation folder, a trees file or search logs.

The page gets two kinds of JSON (page.py embeds them): one ``index`` (one small entry per
question: the list, its search and filters) and one ``tree`` per question, parsed only when the
question is opened, so a run of 1,000 trees lists at once.

Nodes are sent as compact arrays (column names in ``TREE_FIELDS`` / ``SEARCH_FIELDS``), so the
page's size grows with the text of the steps, not with repeated key names.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from svpo_harness.core.jsonl_io import json_objects, read_jsonl_records
from svpo_harness.core.schemas import PairRecord, RecordError, TreeRecord
from svpo_harness.core.search.types import SearchResult

# column order of one tree node / one search candidate in the page's JSON
TREE_FIELDS = (
    "parent", "depth", "text", "N", "Q", "V", "prior", "terminal", "answer", "reward",
)  # fmt: skip
SEARCH_FIELDS = (
    "parent", "depth", "text", "V", "score", "logprob", "status", "reason", "answer",
)  # fmt: skip


class ViewError(ValueError):
    """Input `svpo view` cannot read: names the file (and line) and what was expected."""


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


# ---- annotation trees ------------------------------------------------------------------------


def _final_path(tree: TreeRecord) -> list[int]:
    """The path the visits chose: from the root, the most visited child (higher Q on ties)."""
    children: dict[int, list[int]] = defaultdict(list)
    for node in tree.nodes[1:]:
        children[node.parent_id or 0].append(node.node_id)
    path, at = [0], 0
    while children.get(at):
        at = max(children[at], key=lambda i: (tree.nodes[i].N, tree.nodes[i].Q or -2.0, -i))
        path.append(at)
    return path


def tree_entry(
    tree: TreeRecord, pairs: Sequence[PairRecord]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(index entry, tree JSON) of one annotation tree and the pairs taken from it."""
    rows = []
    for node in tree.nodes:
        rows.append(
            [
                node.parent_id,
                node.depth,
                node.text,
                node.N,
                _round(node.Q),
                _round(node.value),
                _round(node.prior),
                node.terminal_reason,
                node.answer,
                node.reward,
            ]
        )
    pair_rows = [
        [p.chosen_node_id, p.rejected_node_id, _round(p.q_chosen), _round(p.q_rejected)]
        for p in pairs
        if p.chosen_node_id is not None and p.rejected_node_id is not None
    ]
    path = _final_path(tree)
    last = tree.nodes[path[-1]]
    final_correct = None if last.reward is None else last.reward > 0
    key = f"{tree.question_id}" + (f"#{tree.tree_index}" if tree.tree_index else "")
    entry = {
        "id": key,
        "question": tree.question,
        "gold": tree.gold_answer,
        "answer": last.answer,
        "correct": final_correct,
        "solved": any((n.reward or 0) > 0 for n in tree.nodes),
        "pairs": len(pair_rows),
        "nodes": len(tree.nodes),
    }
    data = {"kind": "tree", "fields": TREE_FIELDS, "nodes": rows, "pairs": pair_rows}
    data["path"] = path
    return entry, data


def _records(path: Path, kind: str) -> Iterable[Any]:
    try:
        yield from read_jsonl_records(path, kind)
    except RecordError as err:
        raise ViewError(str(err)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ViewError(f"{path}: not readable ({err})") from None


def load_trees(trees: Path, pairs: Path | None) -> dict[str, Any]:
    """The viewer data of a trees.jsonl and (when given) the pairs.jsonl made from it."""
    by_tree: dict[tuple[str, int], list[PairRecord]] = defaultdict(list)
    if pairs is not None and pairs.is_file():
        for pair in _records(pairs, "pair"):
            by_tree[(pair.question_id, pair.tree_index)].append(pair)
    index, bodies = [], []
    for tree in _records(trees, "tree"):
        entry, body = tree_entry(tree, by_tree.get((tree.question_id, tree.tree_index), []))
        index.append(entry)
        bodies.append(body)
    if not index:
        raise ViewError(f"{trees}: no tree records")
    sources = [str(trees)] + ([str(pairs)] if pairs is not None and pairs.is_file() else [])
    return {"kind": "trees", "sources": sources, "index": index, "trees": bodies}


# ---- search logs -----------------------------------------------------------------------------


def _samples_by_context(samples: Sequence[Path]) -> dict[str, dict[str, Any]]:
    """lm-eval sample records keyed by their prompt (the search log's ``context``)."""
    found: dict[str, dict[str, Any]] = {}
    for path in samples:
        for _, record in json_objects(path, error=ViewError):
            if record.get("filter") not in (None, "none"):
                continue
            args = record.get("arguments") or {}
            first = next(iter(args.values()), None) if isinstance(args, dict) else None
            prompt = first.get("arg_0") if isinstance(first, dict) else None
            if isinstance(prompt, str):
                found.setdefault(prompt, record)
    return found


def find_samples(logs: Sequence[Path]) -> list[Path]:
    """lm-eval samples files beside the logs: in their folders or one level below (lm-eval
    writes ``OUT/<model>/samples_<task>_<date>.jsonl`` beside ``OUT/search_log.jsonl``)."""
    found: list[Path] = []
    for folder in dict.fromkeys(p.resolve().parent for p in logs):
        found += sorted(folder.glob("samples_*.jsonl")) + sorted(folder.glob("*/samples_*.jsonl"))
    return found


def _answer_of(record: dict[str, Any]) -> str | None:
    from svpo_harness.grading import extract_answer

    resps = record.get("filtered_resps") or record.get("resps") or []
    while isinstance(resps, list) and resps:
        resps = resps[0]
    if not isinstance(resps, str):
        return None
    found = extract_answer(resps)
    return found.answer if found is not None else None


def search_entry(
    result: SearchResult, record: dict[str, Any], sample: dict[str, Any] | None, fallback: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(index entry, tree JSON) of one search log line (and its lm-eval sample, if found)."""
    rows = [[None, 0, "", None, None, None, "root", None, None]]  # candidate 0: the prompt
    for cand in sorted(result.tree, key=lambda c: c.id):
        rows.append(
            [
                cand.parent_id,
                cand.depth,
                cand.text,
                _round(cand.value),
                _round(cand.score),
                _round(cand.logprob_mean),
                cand.status,
                cand.reason,
                cand.has_answer,
            ]
        )
    ids = [0] + [c.id for c in sorted(result.tree, key=lambda c: c.id)]
    path, at = [], result.chosen_id
    known = {c.id: c for c in result.tree}
    while at in known:
        path.append(at)
        at = known[at].parent_id
    path = [0] + path[::-1]
    doc = (sample or {}).get("doc") if isinstance((sample or {}).get("doc"), dict) else {}
    qid = doc.get("question_id") or doc.get("id")
    if qid is None and sample is not None and "doc_id" in sample:
        qid = f"doc-{sample['doc_id']}"
    question = doc.get("question") or doc.get("problem") or record.get("context") or ""
    acc = (sample or {}).get("acc")
    entry = {
        "id": str(qid if qid is not None else fallback),
        "question": str(question),
        "gold": None if sample is None else str(sample.get("target")),
        "answer": _answer_of(sample) if sample is not None else None,
        "correct": None if acc is None else float(acc) >= 0.5,
        "solved": result.finished,
        "pairs": 0,
        "nodes": len(rows),
        "decoding": result.decoding,
    }
    data = {
        "kind": "search",
        "fields": SEARCH_FIELDS,
        "ids": ids,
        "nodes": rows,
        "path": path,
        "chosen": result.chosen_id,
        "finished": result.finished,
        "value": _round(result.value),
        "end_reason": result.end_reason,
        "tokens": result.tokens_generated,
        "text": result.text,
    }
    return entry, data


def load_search_logs(
    logs: Sequence[Path],
    samples: Sequence[Path] | None,
    *,
    decoding: str | None = None,
    lenient: bool = False,
) -> dict[str, Any]:
    """The viewer data of search log files (one per rank); ``samples`` None = look beside.

    ``decoding``: only records of that decoding (a log appended by runs of several);
    ``lenient``: lines without a search tree are skipped instead of refused (the report's use).
    """
    samples = list(samples) if samples is not None else find_samples(logs)
    by_context = _samples_by_context(samples)
    index, bodies = [], []
    for rank, log in enumerate(logs):
        for number, record in json_objects(log, error=ViewError):
            if decoding and record.get("decoding") not in (None, decoding):
                continue
            if lenient and not isinstance(record.get("tree"), list):
                continue
            extra = {k: record.pop(k) for k in ("context", "until", "output") if k in record}
            try:
                result = SearchResult.from_dict(record)
            except (KeyError, TypeError, ValueError) as err:
                raise ViewError(f"{log} line {number}: not a search log record ({err})") from None
            record.update(extra)
            sample = by_context.get(str(extra.get("context")))
            fallback = f"{rank}-{number}" if len(logs) > 1 else str(number)
            entry, body = search_entry(result, record, sample, fallback)
            index.append(entry)
            bodies.append(body)
    if not index:
        raise ViewError(f"{', '.join(map(str, logs))}: no search log records")
    sources = [str(p) for p in logs] + [str(p) for p in samples]
    return {"kind": "search", "sources": sources, "index": index, "trees": bodies}


# ---- what PATH is ----------------------------------------------------------------------------


def _first_object(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    data = json.loads(line)
                    return data if isinstance(data, dict) else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ViewError(f"{path} line 1: not a JSON Lines file ({err})") from None
    raise ViewError(f"{path}: empty file")


def _what(first: dict[str, Any]) -> str:
    return f"a {first['type']!r} record" if "type" in first else "neither"


def rank_files(path: Path) -> list[Path]:
    """``log.jsonl`` itself, or its per-rank files ``log.rank<N>.jsonl`` of a multi-process run."""
    if path.is_file():
        return [path]
    return sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))


def load(paths: Sequence[str | Path], samples: Sequence[Path] | None = None) -> dict[str, Any]:
    """Viewer data of PATHs: one annotate folder, one trees file, or search logs (ranks)."""
    files: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            if len(paths) > 1:
                raise ViewError(f"{given}: give one annotate folder, or files")
            trees = given / "trees.jsonl"
            if not trees.is_file():
                raise ViewError(f"{given}: no trees.jsonl (not an `svpo annotate` folder)")
            return load_trees(trees, given / "pairs.jsonl")
        found = rank_files(given)
        if not found:
            raise ViewError(f"{given}: no such file (nor per-rank files {given.stem}.rank*)")
        files += found
    kinds = set()
    for f in files:
        first = _first_object(f)
        if first.get("type") not in (None, "tree") or "tree" not in first and "nodes" not in first:
            raise ViewError(
                f"{f} line 1: expected a tree record (trees.jsonl) or a search log line (with "
                f"'tree'), got {_what(first)}"
            )
        kinds.add(first.get("type") == "tree")
    if kinds == {True}:
        if len(files) > 1:
            raise ViewError("give one trees.jsonl at a time")
        return load_trees(files[0], files[0].with_name("pairs.jsonl"))
    if kinds == {False}:
        return load_search_logs(files, samples)
    raise ViewError("give either a trees file or search logs, not both")
