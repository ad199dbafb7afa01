"""`svpo value-eval`: flags map one to one onto pipelines.evaluate.ValueEvalConfig.

svpo value-eval --model CKPT --data ANNOTATION_DIR|PAIRS.jsonl --out DIR [--reference REF]
"""

from __future__ import annotations

import sys

import click


@click.command("value-eval")
@click.option("--model", required=True, help="svpo checkpoint with a value head.")
@click.option(
    "--data",
    required=True,
    type=click.Path(exists=True),
    help="An `svpo annotate` folder (pairs.jsonl + trees.jsonl) or a JSONL of pair/step_q "
    "(and tree) records.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option(
    "--reference",
    default=None,
    help="Reference policy (the model given to `svpo train --model`): adds the implicit-reward "
    "preference accuracy and the DPO loss on the pairs.",
)
@click.option(
    "--beta", type=float, default=None, help="Default: the checkpoint's training beta, else 0.1."
)
@click.option("--batch-size", type=int, default=32, show_default=True, help="Records per forward.")
@click.option("--max-length", type=int, default=1024, show_default=True, help="Ids per row.")
@click.option("--bins", type=int, default=10, show_default=True, help="Calibration bins.")
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto: CUDA when present, else CPU; or a torch device (cpu, cuda:1).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16"]),
    default="float32",
    show_default=True,
    help="dtype the policy scores in.",
)
@click.option("--no-plots", "no_plots", is_flag=True, help="Only metrics.json.")
def value_eval(no_plots: bool, **flags: object) -> None:
    """Value ranking accuracy, AUC against final correctness, calibration and Q-vs-V plots.

    \b
    Example: svpo value-eval --model runs/svpo --data runs/ann --out runs/value-eval
    """
    from svpo_harness.engines.checkpoint import CheckpointError
    from svpo_harness.pipelines.evaluate import (
        ValueEvalConfig,
        ValueEvalError,
        run_value_eval,
        summary_line,
    )

    try:
        cfg = ValueEvalConfig(plots=not no_plots, **flags)  # type: ignore[arg-type]
        metrics = run_value_eval(cfg, progress=sys.stderr.isatty())
    except (ValueEvalError, CheckpointError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"{summary_line(metrics)} -> {cfg.out}/metrics.json")
