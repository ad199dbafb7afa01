"""`svpo train`: flags map one to one onto TrainConfig fields (pipelines/train/train_config.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from svpo_harness.pipelines.train import OBJECTIVES


def _load_yaml(path: str | None) -> dict:
    if not path:
        return {}
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise click.BadParameter(
            f"{path}: expected a mapping of training settings", param_hint="--config"
        )
    return data


@click.command("train")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML of settings (same names as the flags); flags given here win.",
)
@click.option(
    "--objective",
    type=click.Choice(list(OBJECTIVES)),
    help="sft: SFT on --data; rft: SFT on an annotation's unique correct paths; dpo: "
    "solution-level DPO; svpo: step-level DPO + value ranking + Q regression; alphamath: "
    "CE on correct paths + value MSE; value: value ranking + Q regression training the value "
    "head alone on a frozen policy (saved unchanged; --full is refused).",
)
@click.option("--model", help="Base: svpo checkpoint, HF model folder or hub id.")
@click.option(
    "--data",
    help="sft: JSONL of sft/path records or 'arith'; the others: an `svpo annotate` folder "
    "or its pairs.jsonl.",
)
@click.option("--out", help="Checkpoint folder to write; resumable steps go to OUT.run/.")
@click.option("--step-format", help="Step format name (default: the base checkpoint's).")
@click.option(
    "--full/--lora",
    default=None,
    help="Train all weights, or a LoRA adapter (default); neither for --objective value.",
)
@click.option("--lora-r", type=int, help="LoRA rank (default 16).")
@click.option("--lora-alpha", type=int, help="LoRA alpha (default: 2 x --lora-r).")
@click.option("--lr", type=float, help="Peak AdamW learning rate (default 2e-4).")
@click.option("--value-head-dropout", type=float, help="Dropout before the value head's linear.")
@click.option("--value-head-lr", type=float, help="The value head's learning rate (default: --lr).")
@click.option("--epochs", type=int, help="Passes over the data (default 1); --max-steps overrides.")
@click.option(
    "--max-steps", type=int, help="Optimizer steps in all; overrides --epochs (default: unset)."
)
@click.option(
    "--batch-size",
    type=int,
    help="Examples per micro-batch per process (default 8; a pair is one example). One "
    "optimizer step takes batch size x --grad-accum x processes examples.",
)
@click.option("--grad-accum", type=int, help="Micro-batches per optimizer step (default 1).")
@click.option(
    "--max-length",
    type=int,
    help="Tokens per row (default 512). sft cuts a longer row's end; the other objectives cut "
    "the prefix from the left and drop a step that cannot fit.",
)
@click.option(
    "--warmup-steps",
    type=int,
    help="Optimizer steps of linear learning-rate warm-up (default 0); the rate is also scaled "
    "by sqrt(1 - step / total steps).",
)
@click.option(
    "--seed",
    type=int,
    help="Seed of the new adapter's and head's weights, the data order and the dev search "
    "(default 0).",
)
@click.option(
    "--beta", type=float, help="DPO beta: scale of the log-ratio margin (default 0.1; dpo, svpo)."
)
@click.option(
    "--lambda-rank",
    type=float,
    help="Weight of the value ranking loss (default 1.0; svpo, value).",
)
@click.option(
    "--lambda-mse",
    type=float,
    help="Weight of the value regression (V - Q)^2 (default 0.1; svpo, alphamath, value).",
)
@click.option(
    "--rank-loss",
    type=click.Choice(["hinge", "logistic"]),
    help="Value ranking loss on each pair (margin 0.1, YAML rank_margin): hinge (default) or "
    "logistic.",
)
@click.option(
    "--pack/--no-pack",
    default=None,
    help="Shared-prefix packing: a pair's prefix is forwarded once for both steps.",
)
@click.option("--pack-length", type=int, help="Tokens per packed row (default: --max-length).")
@click.option(
    "--precompute-ref/--no-precompute-ref",
    default=None,
    help="Reference log-probs once before training, cached on disk (default), or live.",
)
@click.option("--ref-cache", help="Folder of cached reference log-probs ('none': no cache).")
@click.option(
    "--select-on",
    help="Model selection on held-out data: a dev split (arith:dev, NAME:SPLIT) or FILE.jsonl, "
    "disjoint from the training questions and every eval set; the best step is saved.",
)
@click.option("--eval-every", type=int, help="Optimizer steps between dev evaluations (25).")
@click.option("--eval-limit", type=int, help="Dev problems used, the first N (100).")
@click.option(
    "--select-metric",
    type=click.Choice(["auto", "greedy", "sbs"]),
    help="Dev metric; auto: SBS(3,5) when the run trains a value head, else greedy.",
)
@click.option(
    "--device",
    help="auto (default): CUDA when present, else CPU; or a torch device (cpu, cuda:1). With "
    "several processes (accelerate launch), each process's own device.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16"]),
    help="dtype the policy is loaded and trained in (default float32).",
)
@click.option(
    "--save-every",
    type=int,
    help="Optimizer steps between resumable checkpoints in OUT.run/ (default 200; 0: only "
    "the end).",
)
@click.option(
    "--arith-n",
    type=int,
    help="--data arith: problems taken from the arithmetic train split (default 20000).",
)
@click.option(
    "--resume", is_flag=True, default=None, help="Continue from the newest OUT.run/step_N."
)
@click.option("--keep-run", is_flag=True, default=None, help="Keep OUT.run/ after success.")
@click.option(
    "--overwrite",
    is_flag=True,
    default=None,
    help="Start over instead of continuing the run in OUT.run/.",
)
def train(config_file: str | None, **flags: object) -> None:
    """Fine-tune a policy: SFT, RFT, solution-level DPO, AlphaMath or SVPO, or the value head
    alone (value), on one loop.

    With --select-on, the run is evaluated on held-out problems at step 0 and every
    --eval-every steps and the best step is the checkpoint written (svpo.json records the
    curve). Re-running the same command continues after a kill.

    \b
    Example: svpo train --objective svpo --model runs/sft --data runs/ann --out runs/svpo
    """
    from svpo_harness.pipelines.train import TrainConfig

    settings = _load_yaml(config_file)
    settings.update({k: v for k, v in flags.items() if v is not None})
    try:
        cfg = TrainConfig.from_dict(settings)
    except (TypeError, ValueError) as err:
        raise click.UsageError(str(err)) from None

    from svpo_harness.engines.checkpoint import CheckpointError
    from svpo_harness.pipelines.train import run_training

    try:
        result = run_training(cfg)
    except (CheckpointError, FileExistsError, FileNotFoundError, ValueError) as err:
        raise click.ClickException(str(err)) from None
    last = result.losses[-1] if result.losses else float("nan")
    click.echo(
        json.dumps(
            {
                "out": str(result.out),
                "steps": result.steps,
                "final_loss": round(last, 4),
                "tokens": result.tokens,
                "seconds": round(result.seconds, 1),
                "resumed_from": result.resumed_from,
                **result.summary,
            }
        )
    )
