"""Quoted rows of `svpo report`: published numbers from a YAML list (or a shipped set), never
measured and never tested."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

REFERENCE_SETS = {"alphamath": "reference_alphamath.yaml"}  # --reference NAME, shipped data


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def load_reference(spec: str, error: type[Exception] = ValueError) -> list[dict[str, Any]]:
    """Quoted rows from a YAML list (or a shipped set, e.g. ``alphamath``)."""
    import yaml

    if spec in REFERENCE_SETS:
        where = f"{REFERENCE_SETS[spec]} (--reference {spec})"
        text = resources.files("svpo_harness.data").joinpath(REFERENCE_SETS[spec]).read_text()
    else:
        path, where = Path(spec), spec
        if not path.is_file():
            raise error(f"{spec}: no such reference file (built-in: {', '.join(REFERENCE_SETS)})")
        text = path.read_text(encoding="utf-8")
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise error(f"{where}: not valid YAML ({err})") from None
    if not isinstance(entries, list):
        raise error(f"{where}: expected a list of rows (name, task, acc, ...)")
    rows = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not {"name", "task", "acc"} <= entry.keys():
            raise error(f"{where} entry {i}: needs name, task and acc")
        acc = entry["acc"]
        if isinstance(acc, bool) or not isinstance(acc, (int, float)) or not 0 <= acc <= 1:
            raise error(f"{where} entry {i}: acc must be a fraction in [0, 1], got {acc!r}")
        hardware = f" ({entry['hardware']})" if entry.get("hardware") else ""
        notes = [entry["note"]] if entry.get("note") else []
        rows.append(
            {
                "name": str(entry["name"]),
                "task": str(entry["task"]),
                "kind": "quoted",
                "decoding": entry.get("decoding"),
                "n": entry.get("n"),
                "acc": float(acc),
                "acc_stderr": None,
                "acc_flexible": None,
                "acc_flexible_stderr": None,
                "tokens_per_question": _number(entry.get("tokens_per_question")),
                "tokens_source": "quoted" if entry.get("tokens_per_question") else None,
                "seconds_per_question": _number(entry.get("seconds_per_question")),
                "hardware": hardware.strip(" ()") or None,
                "source": f"{entry.get('source') or where}",
                "notes": notes,
            }
        )
    return rows


def match_task(task: str, measured: list[str]) -> str:
    """A data set name (MATH, GSM8K, MATH-500) -> our task name when that task was measured."""
    ours = "svpo_" + re.sub(r"[^a-z0-9]", "", task.lower())
    return task if task in measured or ours not in measured else ours
