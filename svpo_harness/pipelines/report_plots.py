"""What `svpo report` shows: the two PNGs (matplotlib, Agg backend) and the markdown/HTML pages.

- ``<out>_accuracy.png``: per task, a horizontal bar per row, strict and flexible accuracy with
  one-standard-error bars; quoted rows hatched grey (no error bars: none were published).
- ``<out>_acc_vs_tokens.png``: per task, strict accuracy against generated tokens per question
  (log x), one marker per row; filled markers count from the search log, hollow ones from
  re-tokenized responses.
- The pages are built once as a list of blocks and written as markdown (PNG links) and as
  self-contained HTML (PNGs embedded as base64 data URIs).
"""

from __future__ import annotations

import base64
import html as html_lib
import math
import re
import textwrap
from pathlib import Path
from typing import Any

QUOTED = "quoted, not measured"
MARKERS = "osD^vP*Xh<>p"
CSS = (
    "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1150px;margin:2em auto;"
    "padding:0 1em;color:#222;line-height:1.45}h1,h2,h3{line-height:1.2}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.92em}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f2f2f2}td{overflow-wrap:anywhere}tr.quoted td{color:#666;font-style:italic}"
    "img{max-width:100%;border:1px solid #eee;margin:.5em 0}"
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt

    return plt


def _wrap(text: str, width: int = 34) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def plot_accuracy(report: dict[str, Any], path: Path) -> Path:
    """Bar chart: accuracy per row per task, with standard-error bars."""
    plt = _pyplot()
    tasks = report["tasks"]
    per_task = [[r for r in report["rows"] if r["task"] == t] for t in tasks]
    heights = [0.62 * len(rows) + 1.1 for rows in per_task]
    total = sum(heights) + 1.0
    fig, axes = plt.subplots(
        len(tasks), 1, figsize=(11, total), squeeze=False, gridspec_kw={"height_ratios": heights}
    )
    handles: dict[str, Any] = {}
    for ax, task, rows in zip(axes[:, 0], tasks, per_task, strict=True):
        for i, row in enumerate(rows):
            y = len(rows) - 1 - i  # first row on top
            bars = [("strict", row["acc"], row["acc_stderr"], y + 0.19, "C0")]
            if row["kind"] == "quoted":
                bars = [("quoted (not measured)", row["acc"], None, y, "#cfcfcf")]
            elif row["acc_flexible"] is not None:
                bars.append(
                    ("flexible", row["acc_flexible"], row["acc_flexible_stderr"], y - 0.19, "C1")
                )
            for name, value, err, pos, color in bars:
                if value is None:
                    continue
                quoted = row["kind"] == "quoted"
                handles[name] = ax.barh(
                    pos,
                    value,
                    height=0.62 if quoted else 0.36,
                    xerr=err,
                    capsize=3,
                    color=color,
                    edgecolor="#555" if quoted else color,
                    hatch="//" if quoted else None,
                )
                ax.text(value + (err or 0) + 0.01, pos, f"{value:.3f}", va="center", fontsize=9)
        ax.set_yticks(range(len(rows)), [_wrap(r["name"]) for r in reversed(rows)], fontsize=10)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.set_xlim(0, 1.1)
        ax.set_xlabel("accuracy (error bars: ±1 standard error)", fontsize=10)
        ax.set_title(task, fontsize=12, loc="left")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Accuracy per row and task", fontsize=14)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="lower center",
        ncol=len(handles),
        frameon=False,
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.45 / total, 1, 1 - 0.1 / total))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _minor_label(value: float, _: Any) -> str:
    """Label the 2x and 5x minor ticks of a log axis (20, 50, 200, ...), not the others."""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if any(abs(mantissa - m) < 1e-6 for m in (2, 5)) else ""


def plot_acc_vs_tokens(report: dict[str, Any], path: Path) -> Path:
    """Strict accuracy against generated tokens per question, one panel per task."""
    plt = _pyplot()
    from matplotlib import ticker

    rows = report["rows"]
    tasks = [
        t for t in report["tasks"] if any(r["task"] == t and r["tokens_per_question"] for r in rows)
    ]
    cols = min(len(tasks), 2) or 1
    lines = math.ceil(len(tasks) / cols) or 1
    fig, axes = plt.subplots(lines, cols, figsize=(7.5 * cols, 5.6 * lines), squeeze=False)
    for ax in axes.flat[len(tasks) :]:
        ax.axis("off")
    if not tasks:
        axes[0, 0].text(0.5, 0.5, "no row has a token count", ha="center", fontsize=12)
    for ax, task in zip(axes.flat, tasks, strict=False):
        plotted = [r for r in rows if r["task"] == task and r["tokens_per_question"]]
        for i, row in enumerate(plotted):
            hollow = str(row["tokens_source"]).startswith("re-tokenized")
            name = row["name"] + (" (quoted)" if row["kind"] == "quoted" else "")
            ax.errorbar(
                row["tokens_per_question"],
                row["acc"],
                yerr=row["acc_stderr"],
                fmt=MARKERS[i % len(MARKERS)],
                ms=10,
                capsize=4,
                color=f"C{i % 10}",
                mfc="white" if hollow else f"C{i % 10}",
                mew=2,
                label=_wrap(name, 40),
            )
            ax.annotate(
                _wrap(name, 28),
                (row["tokens_per_question"], row["acc"]),
                fontsize=8,
                textcoords="offset points",
                xytext=(9, 7 if i % 2 == 0 else -16),
                color=f"C{i % 10}",
            )
        xs = [r["tokens_per_question"] for r in plotted]
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))  # not 10^2
        ax.xaxis.set_minor_formatter(ticker.FuncFormatter(_minor_label))
        ax.tick_params(axis="x", which="minor", labelsize=8)
        ax.set_xlim(min(xs) / 2, max(xs) * 2)
        low = min(r["acc"] - (r["acc_stderr"] or 0) for r in plotted)
        high = max(r["acc"] + (r["acc_stderr"] or 0) for r in plotted)
        ax.set_ylim(max(0.0, low - 0.06), min(1.05, high + 0.06))
        ax.set_xlabel("generated tokens per question (log scale)", fontsize=11)
        ax.set_ylabel("strict accuracy (±1 s.e.)", fontsize=11)
        ax.set_title(task, fontsize=12, loc="left")
        ax.grid(True, which="both", alpha=0.3)
        missing = [
            r["name"]
            for r in rows
            if r["task"] == task and r["kind"] == "measured" and not r["tokens_per_question"]
        ]
        if missing:
            ax.text(
                0.01,
                0.01,
                _wrap("no token count: " + ", ".join(missing), 90),
                transform=ax.transAxes,
                fontsize=8,
                color="#777",
            )
        ax.legend(
            fontsize=9,
            title="filled: search log; hollow: re-tokenized responses",
            title_fontsize=9,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            ncol=2,
            frameon=False,
        )
    fig.suptitle("Accuracy vs generated tokens per question", fontsize=14)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- pages -------------------------------------------------------------------------------


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


def _row_cells(row: dict[str, Any]) -> list[str]:
    quoted = row["kind"] == "quoted"
    seconds = _num(row["seconds_per_question"])
    if quoted and row["seconds_per_question"] is not None:  # as published, on its hardware
        seconds = f"{row['seconds_per_question']:g}"
        seconds += f" ({row['hardware']})" if row.get("hardware") else ""
    return [
        row["name"],
        QUOTED if quoted else "measured",
        row.get("decoding") or "—",
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
    out: list[tuple] = [("h1", "svpo report"), ("p", intro + "."), ("h2", "Leaderboard")]
    for task in report["tasks"]:
        task_rows = [r for r in rows if r["task"] == task]
        out.append(("h3", task))
        out.append(
            (
                "table",
                LEADERBOARD,
                [_row_cells(r) for r in task_rows],
                ["quoted" if r["kind"] == "quoted" else "" for r in task_rows],
            )
        )
    titles = {"accuracy": "Accuracy per row", "acc_vs_tokens": "Accuracy vs generated tokens"}
    for key, image in images.items():
        out.append(("img", titles.get(key, key), image))
    out.append(("h2", "Paired significance"))
    out.append(
        (
            "p",
            f"Test: {report['significance']['test']}, on strict correctness, over the "
            "problems (doc_id) both rows answered. b: problems only A got right; c: only B. "
            "Quoted rows are never tested; p-values are not corrected for multiple "
            "comparisons.",
        )
    )
    if pairs:
        cells = [
            [
                p["row_a"],
                p["row_b"],
                str(p["n_common"]),
                str(p["b"]),
                str(p["c"]),
                _pct(p["acc_a"], None),
                _pct(p["acc_b"], None),
                _p(p["p"]),
            ]
            for p in pairs
        ]
        for task in report["tasks"]:
            picked = [c for c, p in zip(cells, pairs, strict=True) if p["task"] == task]
            if picked:
                out += [("h3", task), ("table", PAIRS, picked, [""] * len(picked))]
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
            ", ".join(r.get("search_log") or []) or "—",
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


def _md_cell(text: str) -> str:
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
        elif kind == "table":
            head, body = block[1], block[2]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in body]
            lines.append("")
        elif kind == "img":
            path = Path(block[2])
            link = path.name if path.parent.resolve() == folder.resolve() else str(path)
            lines += [f"![{block[1]}]({link})", ""]
    return "\n".join(lines)


def _inline(text: str) -> str:
    """Escaped text with markdown's `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html_lib.escape(text))


def html(page: list[tuple]) -> str:
    """One self-contained HTML file: inline CSS, PNGs as base64 data URIs."""
    esc = html_lib.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>svpo report</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for block in page:
        kind = block[0]
        if kind in ("h1", "h2", "h3", "p"):
            parts.append(f"<{kind}>{_inline(block[1])}</{kind}>")
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            head, body, classes = block[1], block[2], block[3]
            parts.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>")
            for row, cls in zip(body, classes, strict=True):
                attr = f' class="{cls}"' if cls else ""
                parts.append(
                    f"<tr{attr}>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
                )
            parts.append("</table>")
        elif kind == "img":
            data = base64.b64encode(Path(block[2]).read_bytes()).decode("ascii")
            parts.append(f'<img alt="{esc(block[1])}" src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
