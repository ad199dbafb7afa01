"""`svpo view`: annotation trees and search logs as one offline HTML page (docs/view.md).

Public API: ``load`` (PATHs -> viewer data), ``render`` / ``write_page`` (data -> page),
``view`` (both, what the command runs), ``ViewError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from svpo_harness.pipelines.view.data import ViewError, load, rank_files
from svpo_harness.pipelines.view.page import embed_json, render, write_page


def view(
    paths: list[str | Path], out: str | Path, samples: list[Path] | None = None
) -> dict[str, Any]:
    """Write the viewer page of ``paths``; returns a summary (what the command prints)."""
    data = load(paths, samples)
    title = ", ".join(str(p) for p in paths)
    page = write_page(data, out, title)
    index = data["index"]
    return {
        "out": str(page),
        "kind": data["kind"],
        "questions": len(index),
        "nodes": sum(e["nodes"] for e in index),
        "pairs": sum(e["pairs"] for e in index),
        "bytes": page.stat().st_size,
    }


__all__ = ["ViewError", "embed_json", "load", "rank_files", "render", "view", "write_page"]
