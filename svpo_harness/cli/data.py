"""`svpo data fetch|import|list`: write the local data layout that `SVPO_DATA_DIR` points at."""

from __future__ import annotations

import json
from pathlib import Path

import click


def _names() -> list[str]:
    from svpo_harness.data.problems import DATASETS

    return sorted(DATASETS)


# Both fetch and import write into this folder.
_TO_HELP = "Data folder to write NAME/SPLIT.jsonl into (what SVPO_DATA_DIR points at)."


@click.group("data")
def data() -> None:
    """Fetch or import benchmark data into a folder laid out as <name>/<split>.jsonl.

    With SVPO_DATA_DIR set to the folder, a set found there is read from it, not the hub.

    \b
    Example: svpo data fetch gsm8k --to data
    """


@data.command("list")
def list_datasets() -> None:
    """List the known data sets, their splits and hub ids.

    \b
    Example: svpo data list
    """
    from svpo_harness.data.problems import DATASETS

    for name in sorted(DATASETS):
        spec = DATASETS[name]
        click.echo(f"{name:14s} splits={','.join(spec.splits):11s} hub={spec.hub.path}")


@data.command("fetch")
@click.argument("name")
@click.option(
    "--to",
    "to_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=_TO_HELP,
)
@click.option("--split", default=None, help="One split (default: every split the set has).")
def fetch(name: str, to_dir: Path, split: str | None) -> None:
    """Download NAME from its public hub dataset and write TO/NAME/SPLIT.jsonl.

    \b
    Example: svpo data fetch math500 --to data --split test
    """
    from svpo_harness.data.problems import get_spec, load_hub, write_problems

    spec = _spec_or_fail(name, get_spec)
    for one in [split] if split else list(spec.splits):
        try:
            rows = load_hub(spec, one)
        except Exception as err:  # noqa: BLE001 - offline or unknown id: say so, no traceback
            raise click.ClickException(
                f"cannot fetch {name}/{one} from {spec.hub.path}: {type(err).__name__}: {err}"
            ) from None
        out = to_dir / name / f"{one}.jsonl"
        click.echo(f"wrote {write_problems(rows, out)} problems to {out}")


@data.command("import")
@click.argument("name")
@click.option(
    "--from",
    "from_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File to read: JSON Lines, or (named *.json) a JSON list or an object of id -> record.",
)
@click.option(
    "--to",
    "to_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=_TO_HELP,
)
@click.option("--split", default="test", show_default=True, help="Split to write the problems as.")
def import_file(name: str, from_file: Path, to_dir: Path, split: str) -> None:
    """Normalise a local JSONL (or JSON list/dict) file of NAME and write TO/NAME/SPLIT.jsonl.

    \b
    Example: svpo data import gsm8k --from gsm8k_test.jsonl --to data --split test
    """
    from svpo_harness.data.problems import (
        ProblemFormatError,
        get_spec,
        normalise_record,
        write_problems,
    )

    spec = _spec_or_fail(name, get_spec)
    try:
        records = list(_read_any(from_file))
        rows = [
            normalise_record(spec, rec, i, split, where=f"{from_file}:{line}")
            for i, (line, rec) in enumerate(records)
        ]
    except ProblemFormatError as err:
        raise click.ClickException(str(err)) from None
    out = to_dir / name / f"{split}.jsonl"
    click.echo(f"wrote {write_problems(rows, out)} problems to {out}")


def _spec_or_fail(name, get_spec):
    try:
        return get_spec(name)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="NAME") from None


def _read_any(path: Path):
    """(line, record) pairs from JSONL, a JSON list, or a JSON object of id -> record."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as err:
            raise click.ClickException(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        items = loaded.items() if isinstance(loaded, dict) else enumerate(loaded)
        for key, rec in items:
            if isinstance(rec, dict) and isinstance(key, str):
                rec = {"pid": key, **rec}
            yield 1, rec
        return
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as err:
            raise click.ClickException(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
