"""Fixtures of the viewer tests: hand-made inputs with known numbers (view_inputs.py) and the
headless browser.

``annotation``: an `svpo annotate`-like folder of three trees (one solved with two pairs, one
unsolved, one hostile); ``search_log``: a search log of two SBS(2, 2) searches with the lm-eval
samples file beside it. The browser is Chromium over the DevTools pipe (cdp_browser.py); under
CI=true a missing Chromium fails the tests that need it, naming what is missing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cdp_browser import Browser, find_chromium  # noqa: E402
from view_inputs import (  # noqa: E402
    EVIL,
    HOSTILE,
    SEARCH,
    SOLVED,
    UNSOLVED,
    cand,
    context,
    pair,
    search_record,
    tree,
)  # fmt: skip

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def annotation(tmp_path: Path) -> Path:
    folder = tmp_path / "ann"
    folder.mkdir()
    trees = [
        tree("q-solved", "Tom has 3 cards and buys 4 more. How many now?", "7", SOLVED),
        tree("q-unsolved", "Ann has 2 pens and buys 2 more. How many now?", "4", UNSOLVED),
        tree("q-evil", "Say " + HOSTILE, "1", EVIL),
    ]
    pairs = [
        pair("q-solved", 0, 1, 2, 1 / 3, -1.0),
        pair("q-solved", 1, 3, 4, 1.0, -1.0),
        pair("q-evil", 0, 1, 2, 1.0, -1.0),
    ]
    (folder / "trees.jsonl").write_text("".join(json.dumps(t) + "\n" for t in trees))
    (folder / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return folder


@pytest.fixture
def search_log(tmp_path: Path) -> Path:
    """search_log.jsonl (questions 3 and 5) and lm-eval's samples file one folder below."""
    folder = tmp_path / "eval"
    (folder / "demo").mkdir(parents=True)
    log = folder / "search_log.jsonl"
    other = [cand(1, 0, 1, "The answer is 9.", 0.1, "finished", "answer", True)]
    records = [search_record(3, 5, True, SEARCH), search_record(5, 1, True, other)]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    samples = []
    for doc_id, (i, resp, ok) in enumerate(
        [(3, "The answer is 7.", 1), (5, "The answer is 9.", 0)]
    ):
        doc = {"question_id": f"arith-test-{i:05d}", "question": context(i)[10:-9], "answer": "?"}
        samples.append(
            {
                "doc_id": doc_id, "doc": doc, "target": str(i + 4),
                "arguments": {"gen_args_0": {"arg_0": context(i), "arg_1": {}}},
                "resps": [[resp]], "filtered_resps": [resp], "filter": "none", "acc": float(ok),
            }
        )  # fmt: skip
    path = folder / "demo" / "samples_svpo_arith_2026-12-07T00-00-00.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    return log


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (a tab per page)."""
    if find_chromium() is None:
        reason = (
            "Chromium not found (apt-get install chromium, or scripts/install_browser.sh; "
            "or set $SVPO_CHROMIUM)"
        )
        if IN_CI:
            pytest.fail(f"{reason}: CI runs the browser tests", pytrace=False)
        pytest.skip(reason)
    with Browser() as b:
        yield b


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: $SVPO_SCREENSHOTS (e.g. docs/img), else the test's tmp folder."""
    folder = Path(os.environ.get("SVPO_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
