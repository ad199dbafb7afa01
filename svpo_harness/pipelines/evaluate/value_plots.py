"""The two PNGs of `svpo value-eval` (matplotlib, Agg backend: no display needed).

- ``calibration.png``: per V bin, the mean MCTS Q of the step_q records (left) and the fraction of
  correct final steps (right), each bin's count written over its point; the diagonal is a
  perfectly calibrated head (Q = V; fraction correct = (V + 1) / 2).
- ``q_vs_v.png``: every step_q record as a point, Q on x, V on y, with the diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window (servers, CI, test runs)
    import matplotlib.pyplot as plt

    return plt


def _panel(ax: Any, bins: list[dict[str, Any]], ideal: Any, ylabel: str, title: str) -> None:
    xs = [b["mean_value"] for b in bins if b["count"]]
    ys = [b["mean_target"] for b in bins if b["count"]]
    ax.plot([-1, 1], [ideal(-1), ideal(1)], linestyle="--", color="grey", label="calibrated")
    ax.plot(xs, ys, marker="o", label="observed")
    for b in bins:
        if b["count"]:
            ax.annotate(
                f"n={b['count']}",
                (b["mean_value"], b["mean_target"]),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=7,
            )
    ax.set_xlim(-1.05, 1.05)
    ax.set_xlabel("value head V (bin mean)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    if not xs:
        ax.text(0.5, 0.5, "no records", transform=ax.transAxes, ha="center")


def plot_calibration(metrics: dict[str, Any], path: str | Path) -> str:
    """Both calibration panels from ``metrics`` (compute_metrics' output); returns the path."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    steps, finals = metrics["value_vs_q"], metrics["final_correctness"]
    _panel(
        left,
        steps["calibration"],
        lambda v: v,
        "mean MCTS Q",
        f"V vs Q ({steps['n']} annotated steps)",
    )
    _panel(
        right,
        finals["calibration"],
        lambda v: (v + 1) / 2,
        "fraction correct",
        f"V vs final correctness ({finals['n']} final steps)",
    )
    right.set_ylim(-0.05, 1.1)
    left.set_ylim(-1.1, 1.15)
    fig.suptitle("Value head calibration")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def plot_q_vs_v(
    values: Sequence[float], qs: Sequence[float], pearson: float | None, path: str | Path
) -> str:
    """Scatter of (Q, V) per annotated step; returns the path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([-1, 1], [-1, 1], linestyle="--", color="grey", label="V = Q")
    ax.scatter(list(qs), list(values), s=8, alpha=0.4, label="steps")
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("MCTS Q of the step")
    ax.set_ylabel("value head V after the step")
    r = "n/a" if pearson is None else f"{pearson:.3f}"
    ax.set_title(f"Q vs V ({len(values)} steps, Pearson r {r})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


__all__ = ["plot_calibration", "plot_q_vs_v"]
