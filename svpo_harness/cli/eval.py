"""`svpo eval ...`: lm-eval's own CLI with the svpo model and tasks registered.

The path that always works, whatever the start-up hook does (SVPO_LM_EVAL_PLUGIN=0, a Python
without the hook's .pth file, an lm-eval version with different internals). Every argument goes
to lm-eval unchanged: `svpo eval --model svpo --model_args pretrained=CKPT --tasks svpo_gsm8k`,
`svpo eval ls tasks`.
"""

from __future__ import annotations

import sys

import click


@click.command(
    "eval",
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    },
    add_help_option=False,
)
@click.argument("lm_eval_args", nargs=-1, type=click.UNPROCESSED)
def eval_command(lm_eval_args: tuple[str, ...]) -> None:
    """Run lm-eval's CLI (all arguments passed through) with svpo registered.

    `svpo eval --help` is lm-eval's own help.

    \b
    Example: svpo eval --model svpo --model_args pretrained=runs/svpo --tasks svpo_arith
    """
    from svpo_harness.lm_eval_plugin import register_all

    register_all()
    from lm_eval.__main__ import cli_evaluate

    sys.argv = ["lm_eval", *lm_eval_args]
    cli_evaluate()
