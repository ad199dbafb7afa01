"""Every `svpo` command and option has help; each command's help ends with an example line.

The tree is walked the way click itself resolves commands (``list_commands`` then
``get_command``, recursively into groups), so a command loaded lazily is checked too.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from svpo_harness.cli import main

Path_ = tuple[str, ...]  # command names below the root: () is `svpo`, ("annotate", "merge")


def _context(cmd: click.Command, name: str, parent: click.Context | None) -> click.Context:
    # As Command.make_context does: the command's context_settings (help names, pass-through).
    return click.Context(cmd, info_name=name, parent=parent, **cmd.context_settings)


def walk(
    cmd: click.Command, ctx: click.Context, path: Path_ = ()
) -> Iterator[tuple[Path_, click.Command, click.Context]]:
    yield path, cmd, ctx
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, f"{ctx.command_path}: {name!r} is listed but not found"
            yield from walk(sub, _context(sub, name, ctx), (*path, name))


def example_line(help_text: str | None) -> str | None:
    """The help's last non-blank line when it is an example ("Example: ...")."""
    lines = [line.strip() for line in (help_text or "").splitlines() if line.strip()]
    if lines and lines[-1].startswith("Example: "):
        return lines[-1].removeprefix("Example: ")
    return None


def _option_names(cmd: click.Command, ctx: click.Context) -> set[str]:
    params = cmd.get_params(ctx)
    return {n for p in params if isinstance(p, click.Option) for n in p.opts + p.secondary_opts}


def _example_problems(
    path: Path_, cmd: click.Command, ctx: click.Context, example: str
) -> list[str]:
    """The example must name this command and only options that exist (through subcommands)."""
    words, prefix = shlex.split(example), [ctx.find_root().info_name, *path]
    if words[: len(prefix)] != prefix:
        return [f"{ctx.command_path}: the example does not start with {' '.join(prefix)!r}"]
    problems = []
    for word in words[len(prefix) :]:
        if word == "--":
            break
        sub = cmd.get_command(ctx, word) if isinstance(cmd, click.Group) else None
        if sub is not None:  # e.g. the root's example runs a subcommand
            cmd, ctx = sub, _context(sub, word, ctx)
        elif word.startswith("-") and not ctx.ignore_unknown_options:
            if word.split("=", 1)[0] not in _option_names(cmd, ctx):
                problems.append(f"{ctx.command_path}: the example's {word} is no option of it")
    return problems


def help_problems(root: click.Command, name: str = "svpo") -> list[str]:
    """One line per command without help or example, and per option without help."""
    problems = []
    for path, cmd, ctx in walk(root, _context(root, name, None)):
        where = ctx.command_path
        if not (cmd.help or "").strip():
            problems.append(f"{where}: the command has no help text")
        example = example_line(cmd.help)
        if example is None:
            problems.append(f"{where}: the help does not end with an 'Example: ...' line")
        else:
            problems += _example_problems(path, cmd, ctx, example)
        for param in cmd.get_params(ctx):
            if isinstance(param, click.Option) and not (param.help or "").strip():
                names = "/".join(param.opts + param.secondary_opts)
                problems.append(f"{where}: option {names} has no help text")
    return problems


COMMANDS = [path for path, _, _ in walk(main, _context(main, "svpo", None))]


def test_every_command_and_option_has_help():
    assert len(COMMANDS) >= 15  # the root, 13 commands and their subcommands: the walk works
    problems = help_problems(main)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(("svpo", *p)))
def test_help_option_exits_zero(path: Path_, monkeypatch: pytest.MonkeyPatch):
    cmd = main
    for name in path:
        cmd = cmd.get_command(click.Context(cmd), name)
    if cmd.context_settings.get("ignore_unknown_options"):
        # `svpo eval` passes --help on to lm-eval's own CLI, which rewrites sys.argv
        monkeypatch.setattr(sys, "argv", list(sys.argv))
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, result.output
        assert "lm-eval" in result.output
        return
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    example = example_line(cmd.help)
    assert example and f"Example: {example}" in result.output  # shown whole, not re-wrapped


def _fake_tree() -> click.Group:
    """A root with one good command, and a lazily loaded one missing help and an example."""

    @click.command("good")
    @click.option("--n", help="How many.")
    def good(n: str) -> None:
        """Fine.

        Example: svpo good --n 3"""

    @click.command("bad")
    @click.argument("thing")  # arguments need no help
    @click.option("--quiet", is_flag=True)
    def bad(thing: str, quiet: bool) -> None:
        """No example here."""

    class Lazy(click.Group):
        def list_commands(self, ctx: click.Context) -> list[str]:
            return ["bad", "good"]

        def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
            return {"bad": bad, "good": good}.get(name)

    @click.group(cls=Lazy)
    def root() -> None:
        """Root.

        Example: svpo good --m 1"""

    return root


def test_checker_names_the_command_and_the_option():
    assert help_problems(_fake_tree()) == [
        "svpo good: the example's --m is no option of it",
        "svpo bad: the help does not end with an 'Example: ...' line",
        "svpo bad: option --quiet has no help text",
    ]
