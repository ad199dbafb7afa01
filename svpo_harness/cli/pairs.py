"""`svpo pairs`: re-extract step-level pairs, step Q-values and paths from saved MCTS trees.

No search and no model: reads ``trees.jsonl`` files (``svpo annotate``'s output), applies a pair
rule (core/pairs.py, method.md section 4) and writes one JSON Lines file of typed records
(``pair``, ``step_q``, ``path``). The output is written to a temporary file next to it and
renamed at the end, so a killed or failed run never leaves a half file (nor touches an old one).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import click

from svpo_harness.core.pairs import RULES, PairStats, extract_records
from svpo_harness.core.schemas import RecordError, TreeRecord, record_from_dict, to_dict


class PairsInputError(click.ClickException):
    """A user mistake in an input file: the message names file, line and field; exit code 2."""

    exit_code = 2


def read_trees(path: Path, bad: list[str] | None) -> Iterator[TreeRecord]:
    """Validated trees of ``path``, one per line, as ``read_jsonl_records`` reads them.

    Blank lines are skipped and a torn last line (no newline, not JSON: a killed writer) is
    ignored with a warning. A bad line raises a RecordError (``FILE:LINE: field 'x': ...``);
    with ``bad`` given it is skipped and its message appended there instead. Unlike
    ``read_jsonl_records``, records of other kinds are errors: the input is meant to be trees,
    and a pairs file given by mistake must not read as zero trees.
    """
    with open(path, encoding="utf-8", newline="\n") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                if not text.endswith("\n"):
                    click.echo(f"warning: {path}:{number}: ignoring a torn last line", err=True)
                    return
                error = RecordError(
                    path, number, "(line)", f"expected valid JSON, got error: {exc.msg}"
                )
            else:
                try:
                    yield record_from_dict(data, "tree", path=path, line=number)  # type: ignore[misc]
                    continue
                except RecordError as exc:
                    error = exc
            if bad is None:
                raise error
            bad.append(str(error))


def _write_line(fh: IO[bytes], record: object) -> None:
    data = to_dict(record)  # type: ignore[arg-type]
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    fh.write(line.encode("utf-8") + b"\n")


@click.command("pairs")
@click.argument(
    "trees", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="JSON Lines file to write (pair, step_q and path records).",
)  # fmt: skip
@click.option(
    "--rule", type=click.Choice(RULES), default="best_vs_rest", show_default=True,
    help="best_vs_rest: the best child against each sibling at least --min-q-gap lower; "
    "all_pairs: every ordered pair with that gap.",
)  # fmt: skip
@click.option(
    "--min-q-gap", type=click.FloatRange(0.0, 2.0), default=0.5, show_default=True,
    help="Least Q difference of a pair (Q in [-1, 1]); a gap exactly this large counts.",
)  # fmt: skip
@click.option(
    "--min-visits", type=click.IntRange(min=1), default=2, show_default=True,
    help="Visits a non-terminal child needs to be compared (terminal children always are).",
)  # fmt: skip
@click.option("--skip-bad", is_flag=True, help="Skip and count malformed tree lines.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def pairs(
    trees: tuple[Path, ...], out: Path, rule: str, min_q_gap: float, min_visits: int,
    skip_bad: bool, overwrite: bool,
) -> None:  # fmt: skip
    """Extract preference pairs from TREES (trees.jsonl files) without searching again.

    \b
    Example: svpo pairs runs/ann/trees.jsonl -o runs/pairs-all.jsonl --rule all_pairs
    """
    from tqdm import tqdm

    if out.exists() and not overwrite:
        raise click.ClickException(f"{out} exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    stats, bad = PairStats(), [] if skip_bad else None
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    path = trees[0]
    try:
        with os.fdopen(fd, "wb") as fh, tqdm(desc="pairs", unit="tree", disable=None) as bar:
            for path in trees:  # noqa: B007 (named in the UnicodeDecodeError message)
                for tree in read_trees(path, bad):
                    for record in extract_records(
                        tree, rule=rule, min_q_gap=min_q_gap, min_visits=min_visits, stats=stats
                    ):
                        _write_line(fh, record)
                    bar.update()
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except RecordError as err:
        raise PairsInputError(f"{err} (--skip-bad skips such lines)") from None
    except UnicodeDecodeError as err:
        raise PairsInputError(f"{path}: not UTF-8 text ({err.reason}); expected trees") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    for message in (bad or [])[:5]:
        click.echo(f"skipped: {message}", err=True)
    n_bad = f" bad_lines_skipped={len(bad)}" if bad is not None else ""
    click.echo(f"wrote {out}: {stats.summary()}{n_bad} (rule {rule}, min_q_gap {min_q_gap}, "
               f"min_visits {min_visits})")  # fmt: skip
