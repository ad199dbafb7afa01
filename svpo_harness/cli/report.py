"""`svpo report`: flags map one to one onto pipelines.report.ReportConfig.

svpo report RESULTS... [--out report.md] [--html report.html] [--reference refs.yaml|alphamath]
"""

from __future__ import annotations

import click


@click.command("report")
@click.argument("results", nargs=-1, required=True)
@click.option(
    "--out",
    default="report.md",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Markdown report; report.json and the PNGs are written next to it.",
)
@click.option(
    "--html",
    default=None,
    type=click.Path(dir_okay=False),
    help="Self-contained HTML report (PNGs embedded). Default: --out with .html.",
)
@click.option(
    "--reference",
    default=None,
    help="Quoted rows: a YAML list of {name, task, acc, seconds_per_question, source, ...}, or "
    "`alphamath` (the shipped method.md section 8 table). Never tested, marked quoted.",
)
@click.option(
    "--tokenizer",
    default=None,
    help="Tokenizer (local folder or cached hub id) for re-tokenizing responses. "
    "Default: each run's model_args pretrained.",
)
@click.option(
    "--pairs",
    type=click.Choice(["auto", "matched", "all"]),
    default="auto",
    show_default=True,
    help="Which rows the McNemar test pairs: all (every two rows of a task), matched (rows on "
    "one checkpoint, or with one decoding and seed), auto (all up to 12 rows a task, else "
    "matched).",
)
@click.option("--no-plots", "no_plots", is_flag=True, help="Tables only, no PNGs.")
@click.option(
    "--no-trees",
    "no_trees",
    is_flag=True,
    help="No search tree pages. Default: each row with a search log gets an `svpo view` page "
    "in <out stem>_trees/, linked from its name.",
)
def report(
    results: tuple[str, ...],
    out: str,
    html: str | None,
    reference: str | None,
    tokenizer: str | None,
    pairs: str,
    no_plots: bool,
    no_trees: bool,
) -> None:
    """Leaderboard, paired significance and plots from lm-eval results.

    RESULTS: lm-eval results_*.json files or folders (searched recursively); the
    --log_samples files beside them are read too. Write LABEL=PATH to name a row.

    \b
    Example: svpo report base=runs/eval/base svpo=runs/eval/svpo --out report.md
    """
    from svpo_harness.pipelines.report import ReportConfig, ReportError, run_report

    cfg = ReportConfig(
        results=list(results),
        out=out,
        html=html,
        reference=reference,
        tokenizer=tokenizer,
        plots=not no_plots,
        pairs=pairs,
        trees=not no_trees,
    )
    try:
        made = run_report(cfg)
    except ReportError as err:
        raise click.ClickException(str(err)) from None
    rows = made["rows"]
    measured = sum(r["kind"] == "measured" for r in rows)
    tested = sum(p["comparable"] for p in made["significance"]["pairs"])
    apart = len(made["significance"]["pairs"]) - tested
    click.echo(
        f"{measured} measured, {len(rows) - measured} quoted rows, {tested} tested pairs"
        + (f" ({apart} not comparable: no shared problems)" if apart else "")
        + " -> "
        + ", ".join(made["files"].values())
    )
