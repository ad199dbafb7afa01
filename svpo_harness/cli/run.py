"""`svpo run RECIPE` and `svpo quickstart`: the method end to end (pipelines/recipes/)."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _run(recipe_name: str, out: str | None, overrides: tuple[str, ...]) -> dict:
    from svpo_harness.pipelines.recipes import RecipeError, load_recipe, run_recipe

    try:
        recipe = load_recipe(recipe_name, list(overrides))
        return run_recipe(recipe, out or f"runs/{recipe['name']}")
    except (RecipeError, FileExistsError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from None


@click.command("run")
@click.argument("recipe")
@click.option("--out", help="Output folder (default: runs/<recipe name>).")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe key by its dotted name, e.g. --set train.common.max_steps=20.",
)
def run(recipe: str, out: str | None, overrides: tuple[str, ...]) -> None:
    """Run RECIPE (a YAML file or a built-in name: arith-quick, arith-full, arith-ablations,
    arith-tool-quick, gsm8k-math-7b).

    Stages are cached by a hash of their inputs and settings: the same command again skips
    what is done and continues what was interrupted.

    \b
    Example: svpo run arith-quick --out runs/arith-quick --set train.common.max_steps=20
    """
    summary = _run(recipe, out, overrides)
    click.echo(json.dumps({"out": summary["out"], "evaluations": len(summary["evaluations"])}))


@click.command("quickstart")
@click.option(
    "--out",
    default="runs/quickstart",
    show_default=True,
    help="Output folder; the same command again continues the run there.",
)
@click.option(
    "--full",
    is_flag=True,
    help="arith-full: 3 seeds, a learning-rate grid chosen on dev, 300 test problems, the "
    "teacher-data SFT row and the tool variant (an hour or more on 2 cores).",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="As for `svpo run`.")
def quickstart(out: str, full: bool, overrides: tuple[str, ...]) -> None:
    """RFT vs DPO vs AlphaMath vs SVPO on the arithmetic world's hard split (svpo_arith_hard),
    offline on a CPU.

    The same trees for every method, each selected on held-out dev problems (method.md 7.2),
    each evaluated with greedy, SBS(3,5) and maj@k at SBS's token budget, then a report.

    \b
    Example: svpo quickstart --out runs/quickstart
    """
    summary = _run("arith-full" if full else "arith-quick", out, overrides)
    click.echo((Path(summary["out"]) / "summary.md").read_text(encoding="utf-8"))
