"""The pages of `svpo report`: built once as a list of blocks, written as markdown (PNG links)
and as self-contained HTML (PNGs embedded as base64 data URIs)."""

from __future__ import annotations

import base64
import html as html_lib
import re
from pathlib import Path
from typing import Any

from svpo_harness.pipelines.report import report_ceiling as ceiling
from svpo_harness.pipelines.report import report_training as training
from svpo_harness.pipelines.report import report_view as view
from svpo_harness.pipelines.report.report_view import Link

QUOTED = "quoted, not measured"
NOT_COMPARABLE = "not comparable (no shared problems)"
# Laid out for reading (issue 30): the page is as wide as the window, prose stays in a
# readable measure, tables take the width they need (scrolling sideways rather than breaking a
# word or a number: cells wrap at spaces only), the per-task matrix sits beside the long table
# (above it when the window cannot hold both: the long table never gets less than 75em), and
# the charts side by side.
CSS = (
    "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em 2em;"
    "color:#222;line-height:1.45}h1,h2,h3{line-height:1.2}p,ul{max-width:80em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.92em}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;"
    "overflow-wrap:normal;word-break:normal;hyphens:manual}"
    "th{background:#f2f2f2}td{font-variant-numeric:tabular-nums}.w{white-space:nowrap}"
    "tr.quoted td{color:#666;font-style:italic}"
    ".wide{max-width:100%;overflow-x:auto}.side{display:flex;flex-wrap:wrap;gap:0 2em;"
    "align-items:flex-start}.side>.wide:first-child{flex:0 0 auto}"
    ".side>.wide:first-child th{max-width:9em}"
    ".side>.wide:last-child{flex:1 1 auto;min-width:min(100%,75em)}"
    ".imgs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}"
    ".imgs img{max-width:calc(50% - 1em);height:auto}"
    "img{max-width:100%;border:1px solid #eee;margin:.5em 0}"
)

PLUS_MINUS = re.compile(r"[\d.]+ ± [\d.]+")  # one number: never two lines
BREAKS_INSIDE = re.compile(r"\S[-/?!}\])|+–—]\S")  # a line may break after these


def _pct(value: float | None, err: float | None) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.2f}" + (f" ± {100 * err:.2f}" if err is not None else "")


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _p(value: float) -> str:
    return f"{value:.1e}" if value < 1e-4 else f"{value:.4f}"


def _decoding_cell(row: dict[str, Any]) -> str:
    label = training.head_label(row)
    return (row.get("decoding") or "—") + (f" ({label})" if label else "")


def _pair_cells(pair: dict[str, Any]) -> list[str]:
    if pair.get("comparable") is False:  # no problem in common: no test
        return [pair["row_a"], pair["row_b"], "0", "—", "—", "—", "—", NOT_COMPARABLE]
    return [
        pair["row_a"],
        pair["row_b"],
        str(pair["n_common"]),
        str(pair["b"]),
        str(pair["c"]),
        _pct(pair["acc_a"], None),
        _pct(pair["acc_b"], None),
        _p(pair["p"]) + (ceiling.PAIR_MARK if pair.get("both_at_ceiling") else ""),
    ]


def _row_cells(row: dict[str, Any]) -> list[str]:
    quoted = row["kind"] == "quoted"
    seconds = _num(row["seconds_per_question"])
    if quoted and row["seconds_per_question"] is not None:  # as published, on its hardware
        seconds = f"{row['seconds_per_question']:g}"
        seconds += f" ({row['hardware']})" if row.get("hardware") else ""
    return [
        view.link(row, row["name"]),
        QUOTED if quoted else "measured",
        _decoding_cell(row),
        str(row["n"]) if row.get("n") else "—",
        _pct(row["acc"], row["acc_stderr"]),
        _pct(row["acc_flexible"], row["acc_flexible_stderr"]),
        _num(row["tokens_per_question"]),
        (row["tokens_source"] or "—").split(" (")[0],
        seconds,
    ]


LEADERBOARD = [
    "row",
    "status",
    "decoding",
    "n",
    "strict acc (%)",
    "flexible acc (%)",
    "tokens / question",
    "tokens from",
    "s / question",
]
PAIRS = [
    "A",
    "B",
    "common problems",
    "b: only A right",
    "c: only B right",
    "acc A (%)",
    "acc B (%)",
    "p",
]
SEEDS = [
    "task",
    "checkpoint",
    "decoding",
    "seeds",
    "mean acc (%)",
    "s.d. (%)",
    "range (%)",
    "tokens / question",
]
PAIR_MODE_TEXT = {
    "all": "Every two measured rows of a task are tested.",
    "matched": "Matched pairs: two rows are tested when they share a checkpoint (decodings "
    "compared on one model) or share a decoding and a seed (models compared under one decoding; "
    "a row without a seed meets every seed).",
    "auto": "Every two measured rows are tested on tasks with at most 12 rows; above that, "
    "matched pairs: rows that share a checkpoint (decodings compared on one model) or share a "
    "decoding and a seed (models compared under one decoding; a row without a seed meets every "
    "seed).",
}


def _seed_cells(point: dict[str, Any]) -> list[str]:
    return [
        point["task"],
        point["setting"],
        point["decoding"],
        str(point["seeds"]),
        f"{100 * point['acc']:.2f}",
        f"{100 * point['spread']:.2f}",
        f"{100 * point['acc_min']:.1f} to {100 * point['acc_max']:.1f}",
        _num(point["tokens_per_question"]),
    ]


DEFINITIONS = [
    "strict acc: lm-eval's `acc` of our tasks (the marked final answer, graded by the checker); "
    "flexible acc: `acc_flexible` (a marked answer, else the last number in the text). "
    "± is lm-eval's standard error of the mean (sample standard deviation / sqrt(n)).",
    "tokens / question, search log: every token the `--model svpo` search generated for the "
    "question (all candidates, not only the answer): its real cost.",
    "tokens / question, re-tokenized responses: the logged answer text encoded again with the "
    "model's tokenizer (model_args pretrained, or --tokenizer), special tokens excluded: a lower "
    "bound for `hf` (stop strings and EOS are cut from the text), the answer only for svpo.",
    "s / question: lm-eval's total_evaluation_time_seconds (the whole run, model and data loading "
    "included) divided by the questions the run evaluated over all its tasks.",
    "untrained head: the row's decoding (SBS, best-of-N, MCTS) ranks candidates with a value head "
    "that was never trained (its checkpoint's svpo.json has no `value_head_trained: true`), so "
    "its ranking is noise, not value guidance; the row stays for the token budget maj@k is "
    "matched to. head of unknown training: no svpo.json found for the head.",
    "Training: objective and learning rate from the checkpoint's svpo.json; chosen step: the "
    "optimizer step whose dev accuracy was best (of the steps run); passes: chosen step x batch "
    "window / examples, the times each pair and record was seen (records are sampled uniformly, "
    "so the same for every kind).",
    ceiling.DEFINITION,
    f"Quoted rows are published numbers ({QUOTED}); their seconds were measured on other "
    "hardware, and they take no part in the significance tests.",
]


def blocks(report: dict[str, Any], images: dict[str, Path]) -> list[tuple]:
    """The page as blocks: (h1|h2|h3|p, text), (ul, items), (table, head, rows, row classes),
    (img, alt, path)."""
    rows, pairs = report["rows"], report["significance"]["pairs"]
    measured = [r for r in rows if r["kind"] == "measured"]
    quoted = [r for r in rows if r["kind"] == "quoted"]
    files = len({r["results_file"] for r in measured})
    intro = f"Generated {report['generated']} from {files} lm-eval results file(s): "
    intro += f"{len(measured)} measured row(s)"
    if quoted:
        intro += f" and {len(quoted)} quoted row(s) ({QUOTED}; never tested)"
    if any(r.get("viewer") for r in rows):
        intro += "; a row's name links to its search trees (svpo view)"
    out: list[tuple] = [("h1", "svpo report"), ("p", intro + "."), ("h2", "Leaderboard")]
    for task in report["tasks"]:
        task_rows = [r for r in rows if r["task"] == task]
        out.append(("h3", task))
        long_table = (
            "table",
            LEADERBOARD,
            [_row_cells(r) for r in task_rows],
            ["quoted" if r["kind"] == "quoted" else "" for r in task_rows],
        )
        compact = view.matrix(rows, task)
        if compact is None:
            out.append(long_table)
        else:  # strict accuracy by checkpoint x decoding, beside the long table
            out.append(("side", [("table", *compact, [""] * len(compact[1])), long_table]))
        out += [("p", line) for line in ceiling.flag_lines(report, task)]
    if report.get("seeds"):
        out += [
            ("h2", "Over seeds"),
            (
                "p",
                "Rows whose names differ only in a seed word (s<N> or seed<N>), pooled: mean, "
                "sample standard deviation and range of strict accuracy over the seeds.",
            ),
            (
                "table",
                SEEDS,
                [_seed_cells(p) for p in report["seeds"]],
                [""] * len(report["seeds"]),
            ),
        ]
    titles = {"accuracy": "Accuracy per row", "acc_vs_tokens": "Accuracy vs generated tokens"}
    for key, image in images.items():
        if key != "dev_curves":
            out.append(("img", titles.get(key, key), image))
    out += _training_blocks(report, images.get("dev_curves"))
    out.append(("h2", "Paired significance"))
    out.append(
        (
            "p",
            f"Test: {report['significance']['test']}, on strict correctness, over the "
            "problems (doc_id) both rows answered; two rows with no problem in common get no "
            f"test ({NOT_COMPARABLE}). b: problems only A got right; c: only B. "
            "Quoted rows are never tested; p-values are not corrected for multiple "
            "comparisons. " + PAIR_MODE_TEXT[report["significance"].get("pair_mode", "all")],
        )
    )
    if pairs:
        cells = [_pair_cells(p) for p in pairs]
        for task in report["tasks"]:
            picked = [c for c, p in zip(cells, pairs, strict=True) if p["task"] == task]
            if picked:
                out += [("h3", task), ("table", PAIRS, picked, [""] * len(picked))]
        if any(p.get("both_at_ceiling") for p in pairs):
            out.append(("p", ceiling.PAIR_NOTE))
    else:
        out.append(("p", "No two measured rows with samples files share a task."))
    out += [("h2", "How the numbers are made"), ("ul", DEFINITIONS)]
    notes = [f"{r['name']} ({r['task']}): {n}" for r in rows for n in r["notes"]]
    if notes:
        out += [("h2", "Notes"), ("ul", notes)]
    inputs = [
        [
            r["name"],
            r["task"],
            r.get("results_file") or r.get("source") or "—",
            r.get("samples_file") or "—",
            view.link(r, ", ".join(r["search_log"]), r.get("viewer_first_wrong"))
            if r.get("search_log")
            else "—",
        ]
        for r in rows
    ]
    out += [
        ("h2", "Inputs"),
        (
            "table",
            ["row", "task", "results file / source", "samples file", "search log"],
            inputs,
            [""] * len(inputs),
        ),
    ]
    return out


def _training_blocks(report: dict[str, Any], curves: Path | None) -> list[tuple]:
    """The "Training (model selection on dev)" table and the dev curves, when any row has them."""
    entries = report.get("training") or []
    if not entries:
        return []
    cells = [training.training_cells(e) for e in entries]
    out: list[tuple] = [
        ("h2", "Training (model selection on dev)"),
        (
            "p",
            "Each trained checkpoint as its svpo.json records it: the checkpoint kept is the one "
            "of the dev step with the best accuracy (chosen step, of the optimizer steps run); "
            "passes are the times each of its pairs and records was seen up to that step.",
        ),
        ("table", training.TRAINING_HEAD, cells, [""] * len(cells)),
    ]
    if curves is not None:
        out.append(("img", "Dev accuracy vs optimizer step", curves))
    return out


def _md_cell(text: str | Link, folder: Path) -> str:
    if isinstance(text, Link):
        label = text.text.replace("[", "\\[").replace("]", "\\]")
        return f"[{_md_cell(label, folder)}]({text.href(folder)})"
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(page: list[tuple], folder: Path) -> str:
    """Markdown; images linked relative to ``folder`` (where the .md file is)."""
    lines: list[str] = []
    for block in page:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            lines += ["#" * int(kind[1]) + " " + block[1], ""]
        elif kind == "p":
            lines += [block[1], ""]
        elif kind == "ul":
            lines += [f"- {item}" for item in block[1]] + [""]
        elif kind == "side":
            lines.append(markdown(block[1], folder))
        elif kind == "table":
            head, body = block[1], block[2]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            lines += ["| " + " | ".join(_md_cell(c, folder) for c in row) + " |" for row in body]
            lines.append("")
        elif kind == "img":
            path = Path(block[2])
            link = path.name if path.parent.resolve() == folder.resolve() else str(path)
            lines += [f"![{block[1]}]({link})", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escaped text with markdown's `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html_lib.escape(text))


def _unbroken(text: str) -> str:
    """Escaped text whose words with a break chance inside (``sbs-3-5``, paths) never break."""
    return "".join(
        f'<span class="w">{html_lib.escape(w)}</span>' if BREAKS_INSIDE.search(w) else
        html_lib.escape(w)
        for w in re.split(r"(\s+)", text)
    )  # fmt: skip


def _td(cell: str | Link, folder: Path) -> str:
    esc = html_lib.escape
    text = cell.text if isinstance(cell, Link) else str(cell)
    inner = f'<span class="w">{esc(text)}</span>' if PLUS_MINUS.fullmatch(text) else _unbroken(text)
    if isinstance(cell, Link):
        inner = f'<a href="{esc(cell.href(folder))}">{inner}</a>'
    return f"<td>{inner}</td>"


def _html_blocks(page: list[tuple], folder: Path) -> list[str]:
    esc = html_lib.escape
    parts: list[str] = []
    for i, block in enumerate(page):
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{kind}>{_inline(block[1])}</{kind}>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "side":
            parts += ['<div class="side">', *_html_blocks(block[1], folder), "</div>"]
        elif kind == "table":
            head, body, classes = block[1], block[2], block[3]
            parts.append('<div class="wide"><table><tr>')
            parts.append("".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>")
            for row, cls in zip(body, classes, strict=True):
                attr = f' class="{cls}"' if cls else ""
                parts.append(f"<tr{attr}>" + "".join(_td(c, folder) for c in row) + "</tr>")
            parts.append("</table></div>")
        elif kind == "img":
            data = base64.b64encode(Path(block[2]).read_bytes()).decode("ascii")
            first = i == 0 or page[i - 1][0] != "img"
            last = i + 1 == len(page) or page[i + 1][0] != "img"
            parts.append(
                ('<div class="imgs">' if first else "")
                + f'<img alt="{esc(block[1])}" src="data:image/png;base64,{data}">'
                + ("</div>" if last else "")
            )
    return parts


def html(page: list[tuple], folder: Path | None = None) -> str:
    """One self-contained HTML file: inline CSS, PNGs as base64 data URIs; links (the rows'
    search tree pages) relative to ``folder``, where the file is written."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>svpo report</title>",
        f"<style>{CSS}</style></head><body>",
        *_html_blocks(page, folder or Path.cwd()),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
