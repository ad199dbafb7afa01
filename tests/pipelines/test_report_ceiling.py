"""`svpo report` flags a ceiling (issue 26): the rule on known values (the Agresti-Coull standard
error computed here independently), and a report of 200-problem runs in lm-eval's layout
(test_report.write_run) that shows, or does not show, the line, the JSON field and the caveat on
McNemar lines."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pytest
from test_report import write_run

from svpo_harness.pipelines.report.report import ReportConfig, run_report
from svpo_harness.pipelines.report.report_ceiling import (
    DEFINITION,
    PAIR_NOTE,
    Score,
    adjusted_stderr,
    at_ceiling,
    ceiling_rows,
    task_ceilings,
)

LINE = "at ceiling: this task cannot separate these rows"
GREEDY = "hf greedy, max 256 new tokens"  # the column of one-row checkpoints: their decoding


def se_plus_four(k: int, n: int) -> float:
    """Agresti & Coull (1998), z = 2: p~ = (k + 2) / (n + 4), SE = sqrt(p~ (1 - p~) / (n + 4))."""
    p = (k + 2) / (n + 4)
    return math.sqrt(p * (1 - p) / (n + 4))


def test_adjusted_stderr_known_values():
    assert adjusted_stderr(200, 200) == pytest.approx(math.sqrt(202 * 2 / 204**3))
    assert adjusted_stderr(200, 200) == pytest.approx(0.006898, abs=1e-6)
    assert adjusted_stderr(199, 200) == pytest.approx(0.008428, abs=1e-6)
    for k, n in [(0, 8), (7, 8), (150, 200), (196, 200), (1300, 1319)]:
        assert adjusted_stderr(k, n) == pytest.approx(se_plus_four(k, n))


def test_rows_at_ceiling_at_n_200():
    assert at_ceiling(200, 200) and at_ceiling(199, 200)  # 1 - 0.995 = 0.005 <= 0.0084
    assert not at_ceiling(198, 200)  # 0.010 > 0.0097
    assert not at_ceiling(196, 200)  # 0.020 > 0.0116
    # what DEFINITION tells the reader
    assert [k for k in range(201) if at_ceiling(k, 200)] == [199, 200]
    assert "at n = 200: 199 or 200 right" in DEFINITION
    # why not lm-eval's plain SE: it would leave 199/200 out (and is 0 at 200/200)
    assert 1 - 199 / 200 > math.sqrt(0.995 * 0.005 / 200)


@pytest.mark.parametrize("n", [5, 6, 7, 8, 50, 200, 1319])  # 4/5..6/7: n + 4, not n
def test_at_ceiling_is_one_adjusted_se_from_one(n):
    for k in range(n + 1):
        gap, se = 1 - k / n, se_plus_four(k, n)
        if abs(gap - se) > 1e-12:  # off the boundary, floats decide it too
            assert at_ceiling(k, n) == (gap <= se), (k, n)
    assert at_ceiling(7, 8)  # exactly one SE (1/8 = sqrt(27/1728)): within, as <= says
    with pytest.raises(ValueError):
        at_ceiling(201, 200)


def test_a_column_is_flagged_when_its_best_two_rows_are_at_ceiling():
    top, next_, low = Score("svpo", 200, 200), Score("rft", 199, 200), Score("dpo", 196, 200)
    assert ceiling_rows([low, next_, top]) == ["svpo", "rft"]  # best first; dpo not at ceiling
    assert ceiling_rows([top, Score("rft", 180, 200)]) == []  # one at ceiling, next at 0.9
    assert ceiling_rows([top, low]) == []
    assert ceiling_rows([top]) == []  # one row: nothing to separate
    assert ceiling_rows([top, Score("base", 200, 200)]) == ["svpo", "base"]
    # the best row decides, whatever its n: 997/1000 (SE 0.0022) is not within reach of 1.0
    assert ceiling_rows([Score("big", 997, 1000), next_, Score("all", 199, 200)]) == []


def _row(name: str, task: str, decoding: str, k: int, n: int = 200, kind: str = "measured"):
    return {"name": name, "task": task, "kind": kind, "decoding_label": decoding,
            "acc": k / n, "n": n}  # fmt: skip


def test_task_ceilings_per_task_and_decoding_column():
    rows = [
        _row("svpo greedy", "arith", "greedy", 200),
        _row("rft greedy", "arith", "greedy", 199),
        _row("base greedy", "arith", "greedy", 150),
        _row("svpo sbs", "arith", "sbs", 200),
        _row("rft sbs", "arith", "sbs", 180),
        _row("paper", "arith", "sbs", 200, kind="quoted"),  # published: never flagged
        _row("svpo greedy", "math", "greedy", 199),
        _row("rft greedy", "math", "greedy", 196),
    ]
    assert task_ceilings(rows, ["arith", "math"]) == {
        "arith": {"greedy": ["svpo greedy", "rft greedy"]}
    }


def _report(tmp_path: Path, ks: dict[str, int]) -> tuple[str, str, dict]:
    """run_report over one hf run per label on 200 problems (label -> problems right)."""
    specs = []
    for i, (label, k) in enumerate(ks.items()):
        args = {"pretrained": str(tmp_path / f"ckpt{i}")}
        correct = [1] * k + [0] * (200 - k)
        specs.append(f"{label}={write_run(tmp_path / f'run{i}', 'hf', args, correct, 10.0)}")
    out = tmp_path / "rep" / "report.md"
    run_report(ReportConfig(results=specs, out=str(out), plots=False, trees=False))
    data = json.loads(out.with_suffix(".json").read_text())
    return out.read_text(), out.with_suffix(".html").read_text(), data


def test_report_flags_the_ceiling(tmp_path):
    md, page, data = _report(tmp_path, {"svpo": 200, "rft": 199, "base": 150})
    line = f"{LINE} (svpo, rft within one standard error of 1.0 under {GREEDY})"
    assert data["ceiling"] == {"svpo_arith": {GREEDY: ["svpo", "rft"]}}
    leaderboard = md.split("## Paired significance")[0]
    assert f"\n{line}\n" in leaderboard  # a line of its own, beside the task's table
    assert f"<p>{html.escape(line)}</p>" in page
    assert DEFINITION in md
    # the McNemar line of the two rows at ceiling carries the caveat, the others do not
    pairs = {(p["row_a"], p["row_b"]): p for p in data["significance"]["pairs"]}
    assert pairs[("svpo", "rft")]["both_at_ceiling"] is True
    assert pairs[("svpo", "base")]["both_at_ceiling"] is False
    assert "| svpo | rft | 200 | 1 | 0 | 100.00 | 99.50 | 1.0000 (both at ceiling) |" in md
    assert "| svpo | base | 200 | 50 | 0 | 100.00 | 75.00 | 1.8e-15 |" in md
    assert "p (both at ceiling): both rows are within one standard error of 1.0" in PAIR_NOTE
    assert f"\n{PAIR_NOTE}\n" in md.split("## How the numbers")[0]
    assert {r["name"]: r["at_ceiling"] for r in data["rows"]} == {
        "svpo": True,
        "rft": True,
        "base": False,
    }


def test_report_without_a_ceiling_says_nothing_of_it(tmp_path):
    md, page, data = _report(tmp_path, {"svpo": 200, "rft": 196, "base": 150})
    assert data["ceiling"] == {}
    assert LINE not in md and LINE not in page
    assert "(both at ceiling) |" not in md and PAIR_NOTE not in md  # no McNemar caveat
    assert not any(p["both_at_ceiling"] for p in data["significance"]["pairs"])


def test_ceiling_line_escapes_row_labels_in_html(tmp_path):
    md, page, data = _report(tmp_path, {"<b>svpo</b>": 200, "rft & co": 199})
    assert data["ceiling"] == {"svpo_arith": {GREEDY: ["<b>svpo</b>", "rft & co"]}}
    assert "&lt;b&gt;svpo&lt;/b&gt;, rft &amp; co within one standard error" in page
    assert "<b>svpo</b>" not in page
