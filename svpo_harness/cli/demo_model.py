"""`svpo demo-model --out DIR`: the tiny offline demo policy (see pipelines/demo/demo_model.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("demo-model")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Checkpoint folder to write (refused if it exists, unless --overwrite).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the build: initial weights, SFT data order, value head (unused with --shipped).",
)
@click.option(
    "--steps", default=None, type=int, help="SFT steps (default: the tuned demo setting)."
)
@click.option(
    "--threads",
    default=None,
    type=click.IntRange(min=1),
    help="Torch threads for the build (default: OMP_NUM_THREADS if set, else 2). The thread "
    "count is fixed so a build is deterministic on one machine.",
)
@click.option(
    "--shipped",
    is_flag=True,
    help="Copy the model shipped inside the package instead of building one (no training).",
)
@click.option(
    "--step-format",
    "step_format",
    type=click.Choice(["arith", "tool"]),
    default="arith",
    show_default=True,
    help="arith: one step per line, the model does the arithmetic. tool: tool-integrated steps "
    "(<step><p>..</p><code>print(a + b)</code><output>..</output></step>), Python does it.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
def demo_model(
    out: Path,
    seed: int,
    steps: int | None,
    threads: int | None,
    shipped: bool,
    step_format: str,
    overwrite: bool,
) -> None:
    """Build the tiny arithmetic-world policy (+ fresh value head) from scratch, offline.

    \b
    Example: svpo demo-model --out runs/demo --threads 2
    """
    from svpo_harness.pipelines.demo import (
        DEMO_STEPS,
        build_demo_model,
        copy_shipped_demo_model,
    )

    try:
        if shipped:
            folder = copy_shipped_demo_model(out, overwrite=overwrite, step_format=step_format)
            click.echo(
                json.dumps({"out": str(folder), "shipped": True, "step_format": step_format})
            )
            return
        result = build_demo_model(
            out,
            seed=seed,
            steps=steps or DEMO_STEPS,
            threads=threads,
            overwrite=overwrite,
            step_format=step_format,
        )
    except (FileExistsError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(
        json.dumps(
            {
                "out": str(result.out),
                "final_loss": round(result.final_loss, 4),
                "seconds": round(result.seconds, 1),
                "parameters": result.parameters,
                "threads": result.threads,
                "step_format": step_format,
            }
        )
    )
