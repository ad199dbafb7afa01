"""The viewer page in headless Chromium (DevTools protocol over a pipe): what a person sees and
does, asserted on the DOM with known numbers on known nodes, keyboard included; no console
error; hostile model text stays text; deep links open a tree fully expanded."""

from __future__ import annotations

import json
from pathlib import Path

from svpo_harness.pipelines.view import view

STATS = """(id) => Object.fromEntries([...document.querySelectorAll(
  '#tree .row[data-node="' + id + '"] > .st')].map((s) => [s.dataset.k, s.textContent]))"""


def _page(browser, paths: list[Path], out: Path, fragment: str = ""):
    view(paths, out)
    page = browser.open(out, fragment)
    assert page.eval("document.body.dataset.ready") == "1"
    return page


def _stats(page, node: int) -> dict:
    return page.eval(f"({STATS})({node})")


def _visible(page) -> list[str]:
    return page.eval(
        "[...document.querySelectorAll('#tree .row')].filter((r) => r.offsetParent)"
        ".map((r) => r.dataset.node)"
    )


def test_annotation_tree_numbers_clicks_and_keyboard(browser, annotation, tmp_path, shots):
    page = _page(browser, [annotation], tmp_path / "trees.html")
    assert page.eval("document.body.dataset.loaded") == "q-solved"  # the first question opens
    assert page.eval("document.getElementById('count').textContent") == "3 of 3 questions"
    # opened along the path the visits chose: #1 and #3 shown, #3's children none
    assert _visible(page) == ["0", "1", "3", "4", "2"]
    assert _stats(page, 1) == {"N": "N 3", "Q": "Q 0.333", "V": "V 0.250", "P": "prior 0.900",
                               "chosen": "chosen over #2 (Q 0.333 vs -1.000)"}  # fmt: skip
    assert _stats(page, 4) == {"N": "N 1", "Q": "Q -1.000", "V": "V 0.100", "P": "prior 0.400",
                               "end": "answer 8 (-1)",
                               "rejected": "rejected for #3 (Q -1.000 vs 1.000)"}  # fmt: skip
    # a click on a node: its full text and numbers
    page.eval("document.querySelector('#tree .row[data-node=\"3\"] .txt').click()")
    assert page.eval("document.querySelector('#detail .full').textContent") == "The answer is 7."
    facts = page.eval(
        "Object.fromEntries([...document.querySelectorAll('#detail tr')]"
        ".map((r) => [r.dataset.k, r.lastChild.textContent]))"
    )
    assert (facts["N"], facts["Q"], facts["reward"], facts["answer"]) == ("2", "1", "1", "7")
    # keyboard: from #3, Up to #1, Left collapses it, Down goes to #2, Enter shows it
    for key in ("ArrowUp", "ArrowLeft"):
        page.key(key)
    assert _visible(page) == ["0", "1", "2"]
    page.key("ArrowDown")
    page.key("Enter")
    assert page.eval("document.activeElement.dataset.node") == "2"
    assert page.eval("document.querySelector('#detail h3').textContent") == "node #2"
    page.key("ArrowUp")
    page.key("ArrowRight")  # expands #1 again
    assert _visible(page) == ["0", "1", "3", "4", "2"]
    # the list: Escape back to it, Down selects the next question
    page.key("Escape")
    page.key("ArrowDown")
    assert page.eval("document.body.dataset.loaded") == "q-unsolved"
    assert _stats(page, 0) == {"N": "N 1", "Q": "Q -1.000", "end": "exhausted"}
    page.screenshot(shots / "view_trees.png")
    assert page.errors == []


def test_filters_and_search(browser, annotation, tmp_path):
    page = _page(browser, [annotation], tmp_path / "trees.html")

    def shown(**settings) -> list[str]:
        js = json.dumps(settings)
        return page.eval(
            f"(() => {{ const s = {js}; document.getElementById('search').value = s.q || '';"
            "document.getElementById('f-solved').value = s.solved || 'all';"
            "document.getElementById('f-correct').value = s.correct || 'all';"
            "document.getElementById('f-pairs').checked = !!s.pairs;"
            "document.getElementById('search').dispatchEvent(new Event('input'));"
            "return [...document.querySelectorAll('#qlist li')].filter((li) => !li.hidden)"
            ".map((li) => li.dataset.q); })()"
        )

    assert shown() == ["q-solved", "q-unsolved", "q-evil"]
    assert shown(solved="no") == ["q-unsolved"]
    assert shown(correct="yes") == ["q-solved", "q-evil"]  # q-evil's visits pick #1 (+1)
    assert shown(correct="no") == ["q-unsolved"]
    assert shown(pairs=True) == ["q-solved", "q-evil"]
    assert shown(q="ANN HAS") == ["q-unsolved"]
    assert page.eval("document.getElementById('count').textContent") == "1 of 3 questions"
    assert page.errors == []


def test_deep_link_opens_the_tree_fully_expanded(browser, annotation, tmp_path):
    page = _page(browser, [annotation], tmp_path / "trees.html", "q=q-solved&n=4")
    assert page.eval("document.body.dataset.loaded") == "q-solved"
    assert page.eval("document.querySelectorAll('#tree .node.open').length") == 2  # #0 and #1
    assert _visible(page) == ["0", "1", "3", "4", "2"]
    assert page.eval("document.querySelector('#detail h3').textContent") == "node #4"
    page.eval("location.hash = 'q=q-unsolved'")
    page.eval("new Promise((done) => setTimeout(done, 50))")
    assert page.eval("document.body.dataset.loaded") == "q-unsolved"
    assert page.errors == []


def test_hostile_question_and_steps_show_as_text_and_run_nothing(
    browser, annotation, tmp_path, shots
):
    from view_inputs import HOSTILE

    page = _page(browser, [annotation], tmp_path / "trees.html", "q=q-evil")
    assert page.eval("document.body.dataset.loaded") == "q-evil"
    assert page.eval("typeof window.__pwned") == "undefined"
    assert page.eval("document.querySelector('#qhead .qfull').textContent") == "Say " + HOSTILE
    assert page.eval("document.querySelector('.row[data-node=\"1\"] .txt').textContent") == HOSTILE
    page.eval("document.querySelector('.row[data-node=\"1\"] .txt').click()")
    assert page.eval("document.querySelector('#detail .full').textContent") == HOSTILE
    # no element came out of the data: no img, no a, and exactly the page's own scripts
    assert page.eval("document.querySelectorAll('img, a, iframe').length") == 0
    assert page.eval("document.scripts.length") == 5  # index + 3 trees + the viewer
    assert page.eval("performance.getEntriesByType('resource').length") == 0  # loaded nothing
    page.eval("new Promise((done) => setTimeout(done, 100))")  # an onerror would have fired
    assert page.eval("typeof window.__pwned") == "undefined"
    page.screenshot(shots / "view_hostile.png")
    assert page.errors == []


def test_search_log_levels_kept_dropped_and_final_pick(browser, search_log, tmp_path, shots):
    page = _page(browser, [search_log], tmp_path / "search.html", "q=arith-test-00003")
    assert page.eval("document.querySelector('#qhead .qans').textContent") == (
        "answer 7 \u00b7 gold 7 \u00b7 correct"
    )
    levels = page.eval(
        "[...document.querySelectorAll('#levels .level')].map((l) => [...l.querySelectorAll"
        "('.chip')].map((c) => c.textContent))"
    )
    assert levels == [
        ["#1 kept 0.600", "#2 kept 0.200", "#4 duplicate 0.200", "#3 pruned -0.300"],
        ["#5 finished 0.900", "#7 finished 0.400", "#6 pruned 0.100", "#8 pruned -0.200"],
    ]
    assert page.eval("document.querySelector('#levels .chip.pick').textContent").startswith("#5")
    final = page.eval("document.querySelector('#levels .final').textContent")
    assert final == "final pick #5, V 0.900, finished, answer, 43 tokens generated"
    assert _stats(page, 5) == {"status": "finished", "V": "V 0.900", "lp": "logprob -0.250",
                               "end": "answer", "pick": "final pick"}  # fmt: skip
    assert page.eval("document.querySelectorAll('#tree .row.on-path').length") == 3
    page.eval("document.querySelector('#levels .chip[data-node=\"8\"]').click()")
    assert page.eval("document.activeElement.dataset.node") == "8"
    assert page.eval("document.querySelector('#detail .full').textContent") == "So 12.\n"
    wrong = page.eval(
        "document.querySelector('#qlist li[data-q=\"arith-test-00005\"] .q-ans').textContent"
    )
    assert wrong == "answer 9 \u00b7 gold 9"
    page.screenshot(shots / "view_search.png")
    assert page.errors == []


def test_the_harness_sees_console_errors(browser, tmp_path):
    """`page.errors == []` above means something: a console error and an uncaught exception
    are both caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><script>console.error('boom'); nothing.here();</script>")
    page = browser.open(bad)
    page.eval("1")
    assert page.errors[0] == "boom"
    assert any("nothing is not defined" in e for e in page.errors[1:])
