"""What `svpo report` adds for reading: each row's search trees as an `svpo view` page linked
from the row, and a compact checkpoint x decoding matrix per task beside the long table.

The viewer pages go in ``<report stem>_trees/`` beside the report (one per row that has a search
log; the row's samples file gives each question's answer and correctness), so `svpo run`, which
writes its report through `svpo report`, writes them beside its report too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from svpo_harness.pipelines.view import ViewError, write_page
from svpo_harness.pipelines.view.data import load_search_logs


class Link(NamedTuple):
    """A table cell that links to a file (markdown ``[text](href)``, HTML ``<a>``), written
    relative to the page that shows it, plus a fragment (``q=<question id>``)."""

    text: str
    path: str
    fragment: str = ""

    def href(self, folder: Path) -> str:
        rel = Path(os.path.relpath(self.path, folder)).as_posix()
        return rel + (f"#{self.fragment}" if self.fragment else "")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:80] or "row"


def viewer_folder(out: Path) -> Path:
    return out.with_name(f"{out.stem}_trees")


def write_viewer_pages(report: dict[str, Any], out: Path) -> list[Path]:
    """One viewer page per measured row with a search log, in ``<out stem>_trees/``; sets
    ``row["viewer"]`` (the page's path) and ``row["viewer_first_wrong"]`` (the first question
    the row got wrong, for a deep link). A log the viewer cannot read becomes a row note."""
    folder, written, taken = viewer_folder(out), [], set()
    for row in report["rows"]:
        logs = [Path(p) for p in row.get("search_log") or []]
        if row["kind"] != "measured" or not logs:
            continue
        samples = [Path(row["samples_file"])] if row.get("samples_file") else []
        try:
            data = load_search_logs(logs, samples, decoding=_decoding(row), lenient=True)
        except ViewError as err:
            row["notes"].append(f"no search tree page: {err}")
            continue
        slug = _slug(f"{row['name']}-{row['task']}")
        while slug in taken:
            slug += "-x"
        taken.add(slug)
        page = write_page(data, folder / f"{slug}.html", f"{row['name']} ({row['task']})")
        row["viewer"] = str(page)
        wrong = [e["id"] for e in data["index"] if e["correct"] is False]
        row["viewer_first_wrong"] = wrong[0] if wrong else None
        written.append(page)
    return written


def _decoding(row: dict[str, Any]) -> str | None:
    """The decoding kind of an svpo row's description ("svpo SBS(B1=3, ...") for the log filter."""
    text = str(row.get("decoding") or "").removeprefix("svpo ").lower()
    for kind, starts in (("sbs", "sbs("), ("bon", "best-of-"), ("maj", "maj@"), ("mcts", "mcts(")):
        if text.startswith(starts):
            return kind
    return "greedy" if text.startswith("greedy") else None


def link(row: dict[str, Any], text: str, question: str | None = None) -> str | Link:
    """``text`` linked to the row's viewer page (at ``question``'s tree), or plain text."""
    if not row.get("viewer"):
        return text
    return Link(text, row["viewer"], f"q={quote(question, safe='')}" if question else "")


def matrix(rows: list[dict[str, Any]], task: str) -> tuple[list[str], list[list[str]]] | None:
    """(head, body) of strict accuracy (%) by checkpoint (rows) x decoding (columns) on
    ``task``; None when the task has fewer than two measured rows."""
    measured = [r for r in rows if r["task"] == task and r["kind"] == "measured"]
    if len(measured) < 2:
        return None
    checkpoints = list(dict.fromkeys(r.get("checkpoint") or r["name"] for r in measured))
    decodings = list(dict.fromkeys(r.get("decoding_label") or "" for r in measured))
    cells: dict[tuple[str, str], str] = {}
    for r in measured:
        key = (r.get("checkpoint") or r["name"], r.get("decoding_label") or "")
        cells[key] = "—" if r["acc"] is None else f"{100 * r['acc']:.1f}"
    body = [[c] + [cells.get((c, d), "") for d in decodings] for c in checkpoints]
    return ["checkpoint \\ decoding"] + decodings, body
