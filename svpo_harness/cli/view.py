"""`svpo view`: annotation trees or search logs as one offline HTML page.

svpo view PATH... [--out trees.html] [--samples FILE]...
"""

from __future__ import annotations

import click


@click.command("view")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--out",
    default="trees.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The page: one self-contained HTML file that loads nothing from the network.",
)
@click.option(
    "--samples",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="lm-eval samples_*.jsonl of the search log's run (extracted vs gold answer per "
    "question). Default: the samples files beside the log (its folder and one level below).",
)
def view(paths: tuple[str, ...], out: str, samples: tuple[str, ...]) -> None:
    """See what the search did: trees and pairs of an annotation, or SBS / MCTS search logs.

    PATH: an `svpo annotate` folder, a trees.jsonl (its pairs.jsonl beside it is read too), or
    `lm_eval --model svpo` search_log files (a log.jsonl of several ranks is read as its
    log.rank<N>.jsonl files). Open OUT#q=<question_id> for one tree fully expanded.

    \b
    Example: svpo view runs/ann --out trees.html
    """
    from pathlib import Path

    from svpo_harness.pipelines.view import ViewError
    from svpo_harness.pipelines.view import view as write_view

    try:
        made = write_view(list(paths), out, [Path(s) for s in samples] if samples else None)
    except ViewError as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        f"{made['questions']} {'trees' if made['kind'] == 'trees' else 'searches'}, "
        f"{made['nodes']} nodes, {made['pairs']} pairs -> {made['out']} "
        f"({made['bytes'] / 1e6:.2f} MB)"
    )
