"""`svpo annotate`: MCTS step-level annotation (flags = pipelines.annotate_run.AnnotateConfig).

svpo annotate --model CKPT --data arith:train --out DIR [--simulations 40 ...]
svpo annotate ... --ray ADDRESS|local [--workers N] [--gpus-per-worker G]   (docs/ray.md)
svpo annotate merge DIR1 DIR2 ... --out DIR
"""

from __future__ import annotations

import sys

import click


@click.group("annotate", invoke_without_command=True)
@click.option("--model", help="Policy: svpo checkpoint, HF model folder or hub id.")
@click.option(
    "--data",
    help="arith:train | gsm8k:train | math:train | FILE.jsonl (GSM8K-, MATH- or "
    "{question, answer}-style fields, detected).",
)
@click.option("--out", type=click.Path(file_okay=False), help="Output folder.")
@click.option("--simulations", type=int, default=40, show_default=True)
@click.option("--children", type=int, default=5, show_default=True, help="Steps per expansion.")
@click.option("--c-puct", type=float, default=1.5, show_default=True)
@click.option("--temperature", type=float, default=0.6, show_default=True)
@click.option("--max-depth", type=int, default=8, show_default=True)
@click.option("--max-step-tokens", type=int, default=None, help="Default: the step format's.")
@click.option("--max-new-tokens", type=int, default=None, help="Token budget of one path.")
@click.option("--trees-per-question", type=int, default=1, show_default=True)
@click.option(
    "--leaf-value",
    type=click.Choice(["auto", "zero", "head", "rollout"]),
    default="auto",
    show_default=True,
    help="auto: 'head' when the checkpoint's svpo.json says its head was trained, else 'zero'; "
    "'rollout': one sampled completion per leaf, graded (costly).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True)
@click.option("--shard", default=None, help="I/N: this process's share of the questions.")
@click.option("--limit", type=int, default=None, help="First N questions (after bad lines).")
@click.option("--question-field", default=None)
@click.option("--answer-field", default=None)
@click.option("--data-dir", default=None, help="Local data folder (default: SVPO_DATA_DIR/hub).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Rows per call.")
@click.option("--trees-in-flight", type=int, default=16, show_default=True)
@click.option("--rule", type=click.Choice(["best_vs_rest", "all_pairs"]), default="best_vs_rest")
@click.option("--min-q-gap", type=float, default=0.5, show_default=True)
@click.option("--min-visits", type=int, default=2, show_default=True)
@click.option("--strict", is_flag=True, help="Refuse questions that match an evaluation set.")
@click.option("--overwrite", is_flag=True, help="Start over in an existing output folder.")
@click.option("--device", default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16"]), default="auto")
@click.option("--grade-timeout", type=float, default=5.0, show_default=True)
@click.option(
    "--ray",
    metavar="ADDRESS|local",
    default=None,
    help="Grow the trees on Ray actors: a cluster's address (host:port, auto) or 'local' (a Ray "
    "instance on this machine); needs svpo-harness[ray]. See docs/ray.md.",
)
@click.option(
    "--workers", type=int, default=None, help="--ray: actors (default: one per GPU, else per CPU)."
)
@click.option(
    "--gpus-per-worker",
    type=float,
    default=None,
    help="--ray: GPUs of each actor (default: 1 if the cluster has GPUs, else 0: CPU, 1 thread).",
)
@click.pass_context
def annotate(ctx: click.Context, **flags: object) -> None:
    """Grow MCTS trees on questions with gold answers; write trees, step-level pairs, stats."""
    if ctx.invoked_subcommand is not None:  # `svpo annotate merge ...`
        return
    missing = [f"--{name}" for name in ("model", "data", "out") if not flags.get(name)]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)}")
    from svpo_harness.pipelines.annotate import AnnotateConfig, AnnotateError, run_annotate

    try:
        config = AnnotateConfig(**flags)  # type: ignore[arg-type]
        summary = run_annotate(config, progress=sys.stderr.isatty())
    except (AnnotateError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    click.echo(summary)


@annotate.command("merge")
@click.argument("dirs", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True)
def merge(dirs: tuple[str, ...], out: str, overwrite: bool) -> None:
    """Join shards made with the same settings and tokenizer into one folder."""
    from svpo_harness.pipelines.annotate import AnnotateError, merge_shards

    try:
        click.echo(merge_shards(list(dirs), out, overwrite=overwrite))
    except (AnnotateError, ValueError) as err:
        raise click.ClickException(str(err)) from None
