"""`svpo report` of a quickstart-sized run (18 rows) in headless Chromium at 1400 px: its
images load, nothing is broken or logged as an error, no cell wraps inside a word, the
checkpoint x decoding matrix shows known numbers, and the rows' search tree links open."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_inputs import CHECKPOINTS, DECODINGS, correct, quickstart_outputs

from svpo_harness.pipelines.report.report import ReportConfig, run_report

# Every word (maximal run of non-space characters) of every table cell: one that the layout
# split over two lines has two client rects.
WORDS_SPLIT = """(() => {
  const split = [];
  for (const cell of document.querySelectorAll('td, th')) {
    const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      for (const m of node.textContent.matchAll(/\\S+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) split.push(m[0]);
      }
    }
  }
  return split;
})()"""


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    root = tmp_path_factory.mktemp("quickstart-report")
    specs = quickstart_outputs(root, shipped_demo_model())
    run_report(ReportConfig(results=specs, out=str(root / "report" / "report.md")))
    return root / "report" / "report.html"


def test_report_layout_images_and_matrix(browser, report_html, shots):
    page = browser.open(report_html)
    page.screenshot(shots / "report.png", full_page=True)
    images = page.eval("[...document.images].map((i) => [i.alt, i.complete && i.naturalWidth > 0])")
    assert images == [["Accuracy per row", True], ["Accuracy vs generated tokens", True]]
    assert page.eval(WORDS_SPLIT) == []
    # the long table is not squeezed: as wide as its content, each of its 18 rows one line
    heights = page.eval(
        "[...document.querySelectorAll('.side')[0].querySelectorAll('table')[1].rows]"
        ".slice(1).map((r) => r.getBoundingClientRect().height)"
    )
    assert len(heights) == 18 and max(heights) < 2 * min(heights)
    assert page.eval("document.querySelectorAll('.side')[0].getBoundingClientRect().width") > 1200
    matrix = page.eval(
        "[...document.querySelector('.side table').rows].map((r) => [...r.cells]"
        ".map((c) => c.textContent))"
    )
    # (no svpo.json beside these checkpoints: the sbs rows' heads are of unknown training)
    head = ["greedy", "sbs-3-5 (head of unknown training)", "maj-5"]
    assert matrix[0] == ["checkpoint \\ decoding", *head]
    for c, checkpoint in enumerate(CHECKPOINTS):
        accs = [f"{100 * sum(correct(c, d)) / 8:.1f}" for d in range(len(DECODINGS))]
        assert matrix[c + 1] == [checkpoint, *accs]
    assert page.errors == []


def test_report_rows_link_to_their_search_trees(browser, report_html):
    page = browser.open(report_html)
    links = page.eval(
        "[...document.querySelectorAll('td a')].map((a) => [a.textContent, a.getAttribute('href')])"
    )
    names = [f"{c} sbs-3-5" for c in CHECKPOINTS]
    # the sbs rows: "(head of unknown training)": no svpo.json beside these checkpoints
    in_leaderboard = [pair for pair in links if pair[0].split(" (")[0] in names]
    assert [name.split(" (")[0] for name, _ in in_leaderboard] == names
    for name, href in in_leaderboard:
        assert href.startswith(f"report_trees/{name.split(' (')[0].replace(' ', '-')}-")
        assert (report_html.parent / href).is_file()
    # the inputs table links each search log to the row's first wrong question (svpo s0:
    # correct(5, 1) is wrong first on problem 3)
    deep = [href for text, href in links if text.endswith("search_log.jsonl")]
    assert deep[-1].startswith("report_trees/svpo-s0-sbs-3-5-")
    assert deep[-1].endswith("-svpo_arith.html#q=arith-test-00003")
    path, fragment = deep[-1].split("#")
    trees = browser.open(report_html.parent / path, fragment)
    assert trees.eval("document.body.dataset.loaded") == "arith-test-00003"
    assert trees.eval("document.querySelectorAll('#tree .node.open').length") == 3  # #0, #1, #2
    assert trees.eval("document.querySelector('#qhead .qans').textContent") == (
        "answer 8 \u00b7 gold 7 \u00b7 incorrect"
    )
    assert trees.errors == [] and page.errors == []
