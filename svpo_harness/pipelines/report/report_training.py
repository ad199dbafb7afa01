"""What `svpo report` reads from each row's checkpoint: its training and its value head.

A measured row's checkpoint is model_args ``pretrained``, a folder holding ``svpo.json``. Its
``training`` object (written by `svpo train`) gives the objective, the learning rate, the model
selection on a dev split (``selection``: the dev curve and the chosen step) and the exposure
(``exposure``: optimizer steps, batch window, examples, records per kind, passes). A missing file
or key leaves the fact blank; nothing here raises on a checkpoint of another shape.

A row is **value-guided** when its decoding ranks candidates with a value head (`--model svpo`,
decoding sbs, bon or mcts, without ``value_head=none``). Such a row whose head was never trained
(``training.value_head_trained`` absent or false: the shipped demo model's head is fresh) is
labelled "untrained head" wherever it is named (method.md section 7.2); it stays in the tables,
since maj@k's token budget is matched to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

META_FILE = "svpo.json"
VALUE_GUIDED = ("sbs", "bon", "mcts")
UNTRAINED = "untrained head"
UNKNOWN = "head of unknown training"
RECORD_NAMES = {"pair": "pairs", "step_q": "step_q", "path": "paths"}
TRAINING_HEAD = [
    "checkpoint",
    "objective",
    "lr",
    "selected on",
    "chosen step",
    "passes",
    "records",
    "value head",
]


def read_meta(folder: Path | None) -> dict[str, Any] | None:
    """``svpo.json`` of a checkpoint folder (or of a head file's folder), else None."""
    if folder is None:
        return None
    path = folder / META_FILE if folder.is_dir() else folder.parent / META_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _training(meta: dict[str, Any] | None) -> dict[str, Any]:
    training = (meta or {}).get("training")
    return training if isinstance(training, dict) else {}


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None and number == int(number) else None


def _curve(raw: Any) -> list[tuple[int, float]]:
    points = []
    for point in raw if isinstance(raw, list) else []:
        if isinstance(point, (list, tuple)) and len(point) == 2:
            step, acc = _int(point[0]), _float(point[1])
            if step is not None and acc is not None:
                points.append((step, acc))
    return points


def training_facts(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """The facts of a trained checkpoint (None when svpo.json names no training objective)."""
    training = _training(meta)
    if not isinstance(training.get("objective"), str):
        return None
    config = training.get("config") if isinstance(training.get("config"), dict) else {}
    raw_sel = training.get("selection") if isinstance(training.get("selection"), dict) else None
    raw_exp = training.get("exposure") if isinstance(training.get("exposure"), dict) else None
    selection = None
    if raw_sel is not None:
        selection = {
            "on": str(raw_sel["on"]) if raw_sel.get("on") is not None else None,
            "metric": str(raw_sel["metric"]) if raw_sel.get("metric") is not None else None,
            "every": _int(raw_sel.get("every")),
            "limit": _int(raw_sel.get("limit")),
            "problems": _int(raw_sel.get("problems")),  # how many the dev set held
            "curve": _curve(raw_sel.get("curve")),
            "chosen_step": _int(raw_sel.get("chosen_step")),
            "lr": _float(raw_sel.get("lr")),
        }
    exposure = None
    if raw_exp is not None:
        records = raw_exp.get("records") if isinstance(raw_exp.get("records"), dict) else {}
        exposure = {
            key: _int(raw_exp.get(key))
            for key in ("optimizer_steps", "chosen_step", "window", "examples")
        }
        exposure["records"] = {str(k): n for k, v in records.items() if (n := _int(v)) is not None}
        exposure["passes"] = _float(raw_exp.get("passes"))
        chosen, window, examples = (exposure[k] for k in ("chosen_step", "window", "examples"))
        if exposure["passes"] is None and None not in (chosen, window) and examples:
            exposure["passes"] = chosen * window / examples  # type: ignore[operator]
    lr = selection["lr"] if selection and selection["lr"] is not None else None
    return {
        "objective": training["objective"],
        "lr": lr if lr is not None else _float(config.get("lr")),
        "value_head_trained": training.get("value_head_trained") is True,
        "selection": selection,
        "exposure": exposure,
    }


def value_guided(model: str, args: dict[str, Any], defaults: dict[str, Any]) -> bool:
    """Whether the row's decoding ranks candidates with a value head."""
    if model != "svpo":
        return False
    decoding = str({**defaults, **args}.get("decoding", "sbs")).lower()
    if decoding not in VALUE_GUIDED:
        return False
    head = args.get("value_head", "absent")
    return not (head is None or str(head).strip().lower() in ("none", ""))


def head_trained(meta: dict[str, Any] | None) -> bool | None:
    """True / False from svpo.json (an absent key is False); None when there is no svpo.json."""
    if meta is None:
        return None
    return _training(meta).get("value_head_trained") is True


def head_label(row: dict[str, Any]) -> str | None:
    """The head label of a value-guided row whose head is untrained (or unknown), else None."""
    if not row.get("value_guided") or row.get("head_trained") is True:
        return None
    return UNKNOWN if row.get("head_trained") is None else UNTRAINED


def label_heads(rows: list[dict[str, Any]]) -> None:
    """Append the head label to the name and decoding label of every row that needs it (after
    report_groups.label_rows, so a checkpoint's label stays the same for all its rows)."""
    for row in rows:
        label = head_label(row)
        if label is None:
            continue
        row["name"] += f" ({label})"
        if row.get("decoding_label"):
            row["decoding_label"] += f" ({label})"


def checkpoints(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per trained checkpoint (first row's checkpoint label), in row order."""
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        facts = row.get("training")
        key = str(row.get("pretrained") or row["name"])
        if row.get("kind") == "measured" and facts and key not in seen:
            label = row.get("checkpoint") or row["name"]
            seen[key] = {"checkpoint": label, "pretrained": row.get("pretrained"), **facts}
    return list(seen.values())


def records_text(records: dict[str, int]) -> str:
    """{"pair": 109, "step_q": 1469} -> "109 pairs + 1,469 step_q" (kinds with none left out)."""
    parts = [f"{n:,} {RECORD_NAMES.get(kind, kind)}" for kind, n in records.items() if n]
    return " + ".join(parts) or "—"


def _lr(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _passes(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def training_cells(entry: dict[str, Any]) -> list[str]:
    """One row of the "Training (model selection on dev)" table."""
    sel, exp = entry.get("selection") or {}, entry.get("exposure") or {}
    selected = "—"
    if sel:
        selected = f"{sel.get('metric') or '?'} on {sel.get('on') or '?'}"
        if sel.get("every"):
            selected += f", every {sel['every']} steps"
        problems = sel.get("problems") or sel.get("limit")
        if problems:
            selected += f", {problems:,} problems"
    chosen = exp.get("chosen_step")
    chosen = sel.get("chosen_step") if chosen is None else chosen
    chosen_text = "—" if chosen is None else str(chosen)
    if chosen is not None and exp.get("optimizer_steps") is not None:
        chosen_text += f" of {exp['optimizer_steps']}"
    return [
        str(entry["checkpoint"]),
        str(entry["objective"]),
        _lr(entry.get("lr")),
        selected,
        chosen_text,
        _passes(exp.get("passes")),
        records_text(exp.get("records") or {}),
        "trained" if entry.get("value_head_trained") else "untrained",
    ]


def dev_curves(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checkpoints with a dev curve: label, metric, points and chosen step."""
    curves = []
    for entry in entries:
        sel = entry.get("selection") or {}
        if sel.get("curve"):
            chosen = sel.get("chosen_step")
            if chosen is None:
                chosen = (entry.get("exposure") or {}).get("chosen_step")
            lr = f", lr {_lr(entry['lr'])}" if entry.get("lr") is not None else ""
            curves.append(
                {
                    "label": f"{entry['checkpoint']} ({entry['objective']}{lr})",
                    "metric": sel.get("metric") or "?",
                    "on": sel.get("on") or "?",
                    "curve": sel["curve"],
                    "chosen_step": chosen,
                }
            )
    return curves
