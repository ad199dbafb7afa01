"""How `svpo report` groups its rows: checkpoint x decoding, seeds, and which pairs it tests.

A big run (`svpo quickstart --full`: 25 checkpoints x 3 decodings) gives 75 rows; testing every two
of them is 2,775 McNemar tests and plotting them is a cloud of labels. So:

- A row's **checkpoint** is what its model was (model_args ``pretrained``, else its name); the
  checkpoint's label is the words the names of all its rows share ("svpo r1 s0" from
  "svpo r1 s0 greedy" and "svpo r1 s0 sbs-3-5"); the rest of a name is its **decoding** label.
- A word ``s<N>`` or ``seed<N>`` in a name is the **seed**: rows whose names differ only there are
  seeds of one **setting** ("svpo r1"), pooled in the plot and the seed table.
- **Matched pairs** (``--pairs matched``; the default ``auto`` tests every two rows of a task up
  to 12 measured rows, at most 66 tests, and matched pairs above): two rows are tested when they
  share a checkpoint (decodings compared on one model) or share a decoding and their seed
  (models compared under one decoding, seed against seed; a row without a seed, such as the base
  model, meets every seed).
  ``--pairs all`` tests every two rows.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import Any

SEED_WORD = re.compile(r"^(?:s|seed)(\d+)$")
PAIR_MODES = ("auto", "matched", "all")
AUTO_ALL_UP_TO = 12  # rows on a task; 12 rows = 66 tests


def split_seed(name: str) -> tuple[str, int | None]:
    """("svpo r1 s2 greedy") -> ("svpo r1 greedy", 2); names without a seed word unchanged."""
    words = name.split()
    seeds = [i for i, w in enumerate(words) if SEED_WORD.match(w)]
    if len(seeds) != 1:  # none, or ambiguous: no seed
        return name, None
    seed = int(SEED_WORD.match(words[seeds[0]]).group(1))  # type: ignore[union-attr]
    return " ".join(words[: seeds[0]] + words[seeds[0] + 1 :]), seed


def _shared_words(names: Sequence[str]) -> list[str]:
    """Words every name has, in the first name's order."""
    rest = [set(n.split()) for n in names[1:]]
    return [w for w in names[0].split() if all(w in r for r in rest)]


def label_rows(rows: list[dict[str, Any]]) -> None:
    """Set ``checkpoint_key``, ``checkpoint``, ``decoding_label``, ``setting`` and ``seed`` on each
    measured row. A checkpoint's label is the words all its rows' names share; the rest of a
    name is its decoding label."""
    for task in dict.fromkeys(r["task"] for r in rows):
        on_task = [r for r in rows if r["task"] == task and r["kind"] == "measured"]
        by_model: dict[str, list[dict[str, Any]]] = {}
        for row in on_task:
            by_model.setdefault(str(row.get("pretrained") or row["name"]), []).append(row)
        for key, group in by_model.items():
            shared = _shared_words([r["name"] for r in group]) if len(group) > 1 else []
            for row in group:
                rest = [w for w in row["name"].split() if w not in shared]
                row["checkpoint_key"] = key
                row["checkpoint"] = " ".join(shared) if shared and rest else row["name"]
                row["decoding_label"] = " ".join(rest) if shared else str(row.get("decoding"))
                row["setting"], row["seed"] = split_seed(row["checkpoint"])


def tested(mode: str, a: dict[str, Any], b: dict[str, Any], rows_on_task: int) -> bool:
    """Whether the pair mode tests rows ``a`` and ``b`` of one task."""
    if mode == "all" or (mode == "auto" and rows_on_task <= AUTO_ALL_UP_TO):
        return True
    return matched(a, b)


def matched(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether the matched-pairs rule tests rows ``a`` and ``b`` (same task assumed)."""
    if a.get("checkpoint_key") is None or b.get("checkpoint_key") is None:
        return True  # rows we could not label are tested (nothing silently dropped)
    if a["checkpoint_key"] == b["checkpoint_key"]:
        return True
    same_decoding = a.get("decoding") == b.get("decoding")
    seeds_meet = a["seed"] is None or b["seed"] is None or a["seed"] == b["seed"]
    return same_decoding and seeds_meet


def pooled_points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per (task, setting, decoding label) over its seeds: mean accuracy and tokens,
    the spread (sample standard deviation over seeds; one seed: its standard error)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        if row["kind"] == "measured":
            key = (row["task"], row.get("setting") or row["name"], row.get("decoding_label") or "")
            groups.setdefault(key, []).append(row)
    points = []
    for (task, setting, decoding), members in groups.items():
        accs = [m["acc"] for m in members]
        tokens = [m["tokens_per_question"] for m in members]
        sources = [str(m["tokens_source"]) for m in members]
        points.append(
            {
                "task": task,
                "setting": setting,
                "decoding": decoding,
                "seeds": len(members),
                "acc": statistics.fmean(accs),
                "acc_min": min(accs),
                "acc_max": max(accs),
                "spread": statistics.stdev(accs) if len(accs) > 1 else members[0]["acc_stderr"],
                "tokens_per_question": statistics.fmean(tokens) if all(tokens) else None,
                "from_log": not any(s.startswith("re-tokenized") for s in sources),
            }
        )
    return points
