"""The `svpo` command. Each subcommand lives in its own module and stays thin: parse flags, build
one config, call one pipeline function. Heavy imports (torch, transformers, lm_eval) happen inside
command bodies, so `svpo --help`, `svpo grade` and `svpo data` start fast and need no torch.
"""

from __future__ import annotations

import importlib

import click

from svpo_harness import __version__

# command name -> "module:attribute"; imported at start-up, which is cheap (click only).
COMMANDS = {
    "grade": "svpo_harness.cli.grade:grade",
    "data": "svpo_harness.cli.data:data",
    "eval": "svpo_harness.cli.eval:eval_command",
    "value-head": "svpo_harness.cli.value_head:value_head",
    "train": "svpo_harness.cli.train:train",
    "demo-model": "svpo_harness.cli.demo_model:demo_model",
    "pairs": "svpo_harness.cli.pairs:pairs",
    "annotate": "svpo_harness.cli.annotate:annotate",
    "value-eval": "svpo_harness.cli.value_eval:value_eval",
    "run": "svpo_harness.cli.run:run",
    "quickstart": "svpo_harness.cli.run:quickstart",
    "report": "svpo_harness.cli.report:report",
    "convert": "svpo_harness.cli.convert:convert",
    "view": "svpo_harness.cli.view:view",
}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="svpo")
def main() -> None:
    """SVPO: MCTS step annotation, step-level DPO with a value head, value-guided beam search.

    `svpo COMMAND --help` describes each command and its options.

    \b
    Example: svpo quickstart --out runs/quickstart
    """


for _name, _target in COMMANDS.items():
    _module, _attr = _target.split(":")
    main.add_command(getattr(importlib.import_module(_module), _attr), _name)
