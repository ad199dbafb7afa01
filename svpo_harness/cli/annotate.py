"""`svpo annotate`: MCTS step-level annotation (flags = pipelines.annotate.AnnotateConfig).

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
@click.option(
    "--simulations",
    type=int,
    default=40,
    show_default=True,
    help="MCTS simulations per tree (method.md section 3: 30-60 by difficulty).",
)
@click.option("--children", type=int, default=5, show_default=True, help="Steps per expansion.")
@click.option(
    "--c-puct",
    type=float,
    default=1.5,
    show_default=True,
    help="Exploration weight of PUCT selection (test-time MCTS uses 1.25).",
)
@click.option(
    "--temperature",
    type=float,
    default=0.6,
    show_default=True,
    help="Sampling temperature of expansions (method.md: 0.6 in round 1, 1.0 in later rounds).",
)
@click.option(
    "--max-depth",
    type=int,
    default=8,
    show_default=True,
    help="Most steps on a path: a step this deep with no answer ends it with reward -1.",
)
@click.option("--max-step-tokens", type=int, default=None, help="Default: the step format's.")
@click.option("--max-new-tokens", type=int, default=None, help="Token budget of one path.")
@click.option(
    "--trees-per-question",
    type=int,
    default=1,
    show_default=True,
    help="Trees grown per question, each with its own random streams.",
)
@click.option(
    "--leaf-value",
    type=click.Choice(["auto", "zero", "head", "rollout"]),
    default="auto",
    show_default=True,
    help="auto: 'head' when the checkpoint's svpo.json says its head was trained, else 'zero'; "
    "'rollout': one sampled completion per leaf, graded (costly).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the sampling: each expansion has a stream from (seed, question, tree, node).",
)
@click.option(
    "--backend",
    type=click.Choice(["hf", "vllm"]),
    default="hf",
    show_default=True,
    help="hf: transformers in this process; vllm: a vLLM engine (needs vllm, docs/vllm.md).",
)
@click.option("--shard", default=None, help="I/N: this process's share of the questions.")
@click.option("--limit", type=int, default=None, help="First N questions (after bad lines).")
@click.option(
    "--question-field",
    default=None,
    help="FILE.jsonl only: the question's field (default: question, else problem).",
)
@click.option(
    "--answer-field",
    default=None,
    help="FILE.jsonl only: the gold's field (default: answer, else the \\boxed{} of solution).",
)
@click.option("--data-dir", default=None, help="Local data folder (default: SVPO_DATA_DIR/hub).")
@click.option("--batch-size", type=int, default=64, show_default=True, help="Rows per call.")
@click.option(
    "--trees-in-flight",
    type=int,
    default=16,
    show_default=True,
    help="Trees grown together (per actor with --ray); their expansions share generation calls.",
)
@click.option(
    "--rule",
    type=click.Choice(["best_vs_rest", "all_pairs"]),
    default="best_vs_rest",
    show_default=True,
    help="Pair rule, as in `svpo pairs`: the best child against each sibling at least "
    "--min-q-gap lower, or every ordered pair with that gap.",
)
@click.option(
    "--min-q-gap",
    type=float,
    default=0.5,
    show_default=True,
    help="Least Q difference of a pair (Q in [-1, 1]).",
)
@click.option(
    "--min-visits",
    type=int,
    default=2,
    show_default=True,
    help="Visits a non-terminal child needs to be paired (terminal children always are).",
)
@click.option("--strict", is_flag=True, help="Refuse questions that match an evaluation set.")
@click.option("--overwrite", is_flag=True, help="Start over in an existing output folder.")
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="hf backend: auto (CUDA when present, else CPU) or a torch device (cpu, cuda:1).",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16"]),
    default="auto",
    show_default=True,
    help="dtype of the policy weights (auto: as stored).",
)
@click.option(
    "--grade-timeout",
    type=float,
    default=5.0,
    show_default=True,
    help="Seconds per check of a final answer against the gold.",
)
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
    """Grow MCTS trees on questions with gold answers; write trees, step-level pairs, stats.

    Re-running the same command continues an interrupted annotation.

    \b
    Example: svpo annotate --model runs/sft --data arith:train --out runs/ann --limit 200
    """
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
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Folder to write the merge to."
)
@click.option("--overwrite", is_flag=True, help="Replace a run already in OUT.")
def merge(dirs: tuple[str, ...], out: str, overwrite: bool) -> None:
    """Join shards made with the same settings and tokenizer into one folder.

    \b
    Example: svpo annotate merge runs/ann.s0 runs/ann.s1 --out runs/ann
    """
    from svpo_harness.pipelines.annotate import AnnotateError, merge_shards

    try:
        click.echo(merge_shards(list(dirs), out, overwrite=overwrite))
    except (AnnotateError, ValueError) as err:
        raise click.ClickException(str(err)) from None
