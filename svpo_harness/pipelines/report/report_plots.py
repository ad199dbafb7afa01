"""The PNGs of `svpo report` (matplotlib, Agg backend); the pages are in report_pages.

- ``<out>_accuracy.png``: per task, a horizontal bar per row, strict and flexible accuracy with
  one-standard-error bars; quoted rows hatched grey (no error bars: none were published).
- ``<out>_acc_vs_tokens.png``: per task, strict accuracy against generated tokens per question
  (log x): colour = checkpoint (seeds pooled: mean, bars = s.d. over seeds), marker = decoding
  (report_groups); filled markers count from the search log, hollow ones from re-tokenized
  responses; quoted rows grey stars; a point that would hide an earlier one is nudged right.
- ``<out>_dev_curves.png`` (only when a trained checkpoint records one): dev accuracy against
  optimizer step per checkpoint, the chosen step ringed.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from svpo_harness.pipelines.report.report_groups import pooled_points

MARKERS = "osD^vP*Xh<>p"


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


def _points(report: dict[str, Any], task: str) -> list[dict[str, Any]]:
    """Pooled measured points plus quoted rows, all with a token count."""
    rows = [r for r in report["rows"] if r["task"] == task]
    points = [p for p in pooled_points(rows) if p["tokens_per_question"]]
    for row in rows:
        if row["kind"] == "quoted" and row["tokens_per_question"]:
            points.append(
                {
                    "setting": row["name"] + " (quoted)",
                    "decoding": "quoted",
                    "seeds": 0,
                    "acc": row["acc"],
                    "spread": None,
                    "tokens_per_question": row["tokens_per_question"],
                    "from_log": True,
                }
            )
    return points


def _draw_task(ax: Any, points: list[dict[str, Any]], missing: list[str]) -> bool:
    """Draw one task's panel; True when a point was nudged off another."""
    from matplotlib import ticker
    from matplotlib.lines import Line2D

    settings = list(dict.fromkeys(p["setting"] for p in points if p["decoding"] != "quoted"))
    decodings = list(dict.fromkeys(p["decoding"] for p in points if p["decoding"] != "quoted"))
    colour = {s: f"C{i % 10}" for i, s in enumerate(settings)}
    marker = {d: MARKERS[i % len(MARKERS)] for i, d in enumerate(decodings)}
    placed: list[tuple[float, float]] = []
    nudged = False
    for p in points:
        quoted = p["decoding"] == "quoted"
        x = p["tokens_per_question"]
        # a point on top of an earlier one (same accuracy, tokens within 3%) would hide it:
        # nudge it right by 4% per point already there
        under = sum(abs(a - p["acc"]) < 0.004 and abs(math.log(t / x)) < 0.03 for t, a in placed)
        placed.append((x, p["acc"]))
        x *= 1.04**under
        nudged = nudged or under > 0
        c = "#888" if quoted else colour[p["setting"]]
        ax.errorbar(
            x,
            p["acc"],
            yerr=p["spread"],
            fmt="*" if quoted else marker[p["decoding"]],
            ms=13 if quoted else 10,
            capsize=4,
            color=c,
            mfc=c if p["from_log"] else "white",
            mew=2,
            alpha=0.9,
        )
        if len(points) <= 8 or quoted:  # few points: name each; many: the legends do it
            ax.annotate(
                _wrap(p["setting"] + ("" if quoted else f", {p['decoding']}"), 28),
                (x, p["acc"]),
                fontsize=8,
                textcoords="offset points",
                xytext=(9, 5),
                color=c,
            )
    xs = [p["tokens_per_question"] for p in points]
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))  # not 10^2
    ax.xaxis.set_minor_formatter(ticker.FuncFormatter(_minor_label))
    ax.tick_params(axis="x", which="minor", labelsize=8)
    ax.set_xlim(min(xs) / 2, max(xs) * 2)
    low = min(p["acc"] - (p["spread"] or 0) for p in points)
    high = max(p["acc"] + (p["spread"] or 0) for p in points)
    ax.set_ylim(max(0.0, low - 0.06), min(1.05, high + 0.06))
    ax.set_xlabel("generated tokens per question (log scale)", fontsize=11)
    ax.set_ylabel("strict accuracy", fontsize=11)
    ax.grid(True, which="both", alpha=0.3)
    if missing:
        ax.text(
            0.01,
            0.01,
            _wrap("no token count: " + ", ".join(missing), 90),
            transform=ax.transAxes,
            fontsize=8,
            color="#777",
        )
    pooled = max(p["seeds"] for p in points) > 1
    by_colour = [Line2D([], [], color=colour[s], marker="o", ls="", ms=9) for s in settings]
    first = ax.legend(
        by_colour,
        [_wrap(s, 30) for s in settings],
        title="checkpoint (colour)" + ("\nseeds pooled: mean" if pooled else ""),
        fontsize=9,
        title_fontsize=9,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    ax.add_artist(first)
    by_marker = [Line2D([], [], color="#333", marker=marker[d], ls="", ms=9) for d in decodings]
    ax.legend(
        by_marker,
        [_wrap(d, 30) for d in decodings],
        title="decoding (marker)",
        fontsize=9,
        title_fontsize=9,
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        frameon=False,
    )
    return nudged


def plot_acc_vs_tokens(report: dict[str, Any], path: Path) -> Path:
    """Strict accuracy against generated tokens per question, one panel per task."""
    plt = _pyplot()
    tasks = [t for t in report["tasks"] if _points(report, t)]
    fig, axes = plt.subplots(
        max(len(tasks), 1), 1, figsize=(11, 5.8 * max(len(tasks), 1)), squeeze=False
    )
    if not tasks:
        axes[0, 0].text(0.5, 0.5, "no row has a token count", ha="center", fontsize=12)
    pooled = nudged = False
    for ax, task in zip(axes[:, 0], tasks, strict=False):
        points = _points(report, task)
        pooled = pooled or max(p["seeds"] for p in points) > 1
        missing = [
            r["name"]
            for r in report["rows"]
            if r["task"] == task and r["kind"] == "measured" and not r["tokens_per_question"]
        ]
        nudged = _draw_task(ax, points, missing) or nudged
        ax.set_title(task, fontsize=12, loc="left")
    note = "error bars: s.d. over seeds (one seed: ±1 s.e.)" if pooled else "error bars: ±1 s.e."
    if nudged:
        note += "\npoints that would hide one another are nudged right (4% of tokens each)"
    fig.suptitle(
        "Accuracy vs generated tokens per question\n"
        f"filled: counted in the search log; hollow: re-tokenized responses; {note}",
        fontsize=12,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legends sit right of the axes
    plt.close(fig)
    return path


def plot_dev_curves(curves: list[dict[str, Any]], path: Path) -> Path:
    """Dev accuracy against optimizer step, one line per trained checkpoint (report_training
    .dev_curves), the chosen step ringed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.8))
    for i, curve in enumerate(curves):
        steps, accs = zip(*curve["curve"], strict=True)
        colour = f"C{i % 10}"
        label = f"{curve['label']}: {curve['metric']} on {curve['on']}"
        ax.plot(steps, accs, marker="o", ms=4, color=colour, label=_wrap(label, 40))
        chosen = dict(curve["curve"]).get(curve["chosen_step"])
        if chosen is not None:
            ax.plot(curve["chosen_step"], chosen, "o", ms=14, mfc="none", mew=2, color=colour)
    ax.set_xlabel("optimizer step", fontsize=11)
    ax.set_ylabel("dev accuracy (the selection metric, per line)", fontsize=11)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle("Model selection: dev accuracy vs optimizer step (ringed: the chosen step)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
