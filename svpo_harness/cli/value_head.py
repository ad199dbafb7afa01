"""`svpo value-head init`: give a base model a fresh value head (method.md section 5).

Thin on purpose: parse flags, call ``engines.checkpoint.init_value_head_checkpoint``, print one
summary line. torch/transformers are imported inside the command body so `svpo --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.group("value-head")
def value_head() -> None:
    """Create and manage the value head stored next to a policy.

    \b
    Example: svpo value-head init --model HuggingFaceTB/SmolLM2-135M --out runs/base
    """


@value_head.command("init")
@click.option("--model", "base", required=True, help="Base model: a folder, checkpoint or hub id.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Checkpoint folder to write (must not exist unless --force).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the head's init.")
@click.option(
    "--step-format",
    type=click.Choice(["cot", "arith"]),
    default=None,
    help="Step format to record (default: BASE's own, else cot).",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="dtype the policy weights are saved in (the head is always fp32).",
)
@click.option("--dropout", default=0.1, show_default=True, type=float, help="Value head dropout.")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def init(
    base: str,
    out_dir: Path,
    seed: int,
    step_format: str | None,
    dtype: str,
    dropout: float,
    force: bool,
) -> None:
    """Write OUT = BASE's policy (full weights) + a fresh value head + svpo.json.

    \b
    Example: svpo value-head init --model HuggingFaceTB/SmolLM2-135M --out runs/base
    """
    from svpo_harness.engines.checkpoint import CheckpointError, init_value_head_checkpoint

    try:
        out = init_value_head_checkpoint(
            base, out_dir, seed, step_format, dtype=dtype, dropout=dropout, overwrite=force
        )
    except CheckpointError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"wrote {out} (policy from {base}, fresh value head, seed {seed})")
