"""`svpo convert`: the released SVPO/AlphaMath layout (Super_MARIO) to our checkpoint and back.

Thin on purpose: parse flags, call ``engines.mario_format``, print its notes and one summary
line. torch/transformers are imported inside the command body so `svpo --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("convert")
@click.option(
    "--from-mario",
    "from_mario",
    type=click.Path(path_type=Path),
    default=None,
    help='A MARIO model folder (config.json with "value_model": true, weights, tokenizer, '
    "value_head.pth) to import.",
)
@click.option(
    "--to-mario",
    "to_mario",
    default=None,
    help="An svpo checkpoint (folder or hub id) to export; a LoRA one is merged first.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write (must not exist unless --force).",
)
@click.option(
    "--step-format",
    type=click.Choice(["tool", "cot", "arith"]),
    default=None,
    help="--from-mario: step format to record (default tool, the released models' "
    "tool-integrated format).",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="dtype the policy weights are written in (auto: as stored).",
)
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
def convert(
    from_mario: Path | None,
    to_mario: str | None,
    out_dir: Path,
    step_format: str | None,
    dtype: str,
    force: bool,
) -> None:
    """Import a released SVPO/AlphaMath model (--from-mario) or export one (--to-mario).

    \b
    Example: svpo convert --from-mario models/AlphaMath-7B --out runs/alphamath
    """
    if (from_mario is None) == (to_mario is None):
        raise click.UsageError("give exactly one of --from-mario DIR or --to-mario CKPT")
    if to_mario is not None and step_format is not None:
        raise click.UsageError("--step-format applies to --from-mario only")
    from svpo_harness.engines.checkpoint import CheckpointError
    from svpo_harness.engines.mario_format import export_mario, import_mario

    try:
        if from_mario is not None:
            result = import_mario(
                from_mario, out_dir, step_format=step_format, dtype=dtype, overwrite=force
            )
            summary = f"svpo checkpoint from MARIO folder {from_mario}, value head in fp32"
        else:
            result = export_mario(to_mario, out_dir, dtype=dtype, overwrite=force)
            summary = f"MARIO folder from {to_mario}, value_head.pth in bf16"
    except CheckpointError as err:
        raise click.ClickException(str(err)) from None
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"wrote {result.out} ({summary})")
