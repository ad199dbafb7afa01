"""One self-contained HTML page: the viewer's CSS and script (package data beside this file)
and the data as JSON in ``<script type="application/json">`` blocks.

Model text is hostile input. The JSON is made so that no string can close its container or
start markup: ``<``, ``>``, ``&`` and U+2028/U+2029 are written as ``\\u003c`` etc. (still the
same JSON), and the script reads it with ``JSON.parse(textContent)``. A Content-Security-Policy
lets the page load nothing at all from anywhere and run only its own script (by hash), so even
markup that got through would not run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def embed_json(data: Any) -> str:
    """JSON for an HTML ``<script type="application/json">``: no ``</script>``, no ``<!--``."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in _ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render(data: dict[str, Any], title: str) -> str:
    """The page of ``data`` (from ``data.load``); ``title`` is escaped."""
    script = _asset("viewer.js")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'"
    index = {k: v for k, v in data.items() if k != "trees"}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>svpo view: {html.escape(title)}</title>",
        f"<style>{_asset('viewer.css')}</style></head><body>",
        '<header><h1>svpo view</h1><span id="source"></span></header>',
        '<div id="app"><aside id="list-pane">',
        '<input id="search" type="search" placeholder="search questions ( / )" '
        'aria-label="search">',
        '<div class="filters">',
        '<select id="f-solved" aria-label="solved"><option value="all">solved or not</option>'
        '<option value="yes">solved / finished</option><option value="no">unsolved</option>'
        "</select>",
        '<select id="f-correct" aria-label="final answer"><option value="all">any final answer'
        '</option><option value="yes">correct</option><option value="no">incorrect</option>'
        "</select>",
        '<label><input type="checkbox" id="f-pairs"> has pairs</label></div>',
        '<div id="count"></div><ol id="qlist" role="listbox" tabindex="0"></ol></aside>',
        '<main id="tree-pane"><div id="qhead"></div><div id="levels"></div>',
        '<ul id="tree" role="tree"></ul></main>',
        '<aside id="detail-pane"><div id="detail"></div></aside></div>',
        f'<script type="application/json" id="svpo-index">{embed_json(index)}</script>',
    ]
    for i, tree in enumerate(data["trees"]):
        parts.append(f'<script type="application/json" id="svpo-t{i}">{embed_json(tree)}</script>')
    parts += [f"<script>{script}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


def write_page(data: dict[str, Any], out: str | Path, title: str) -> Path:
    """Write the page atomically (temp file + rename); returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(data, title)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
