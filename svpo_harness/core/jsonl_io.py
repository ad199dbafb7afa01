"""JSON Lines files of typed records: validated reads, append-only durable writes, atomic JSON.

Split from ``core/schemas.py`` (the record types). A killed writer loses at most the record in
flight: every append is ``write + flush + fsync``, and the torn last line it may leave is ignored
by readers and cut off by the next append (design.md, "Contracts that outlive refactors").
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from svpo_harness.core.schemas import (
    RECORD_TYPES,
    Record,
    RecordError,
    record_from_dict,
    to_dict,
)


def json_objects(
    path: str | Path, *, error: type[Exception] = ValueError
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line of a JSON Lines file of untyped objects
    (lm-eval samples files, search logs). A line that is not a JSON object raises ``error``
    naming the file and line; an unreadable file raises ``error`` naming the file."""
    try:
        with open(path, encoding="utf-8") as fh:
            for number, text in enumerate(fh, start=1):
                if not text.strip():
                    continue
                try:
                    data = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise error(f"{path} line {number}: not valid JSON ({exc})") from None
                if not isinstance(data, dict):
                    raise error(f"{path} line {number}: expected a JSON object")
                yield number, data
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: not readable ({exc})") from None


def read_jsonl_records(path: str | Path, kind: str | tuple[str, ...] | None) -> Iterator[Record]:
    """Validate and yield the records of ``kind`` (a name, a tuple of names, or None = all).

    A file may mix kinds (pairs, step_q and path records from one annotation run); lines of
    other known kinds are skipped, unknown kinds are errors. Blank lines are skipped. A torn
    last line (no newline, not valid JSON: a killed writer) is ignored with a warning.
    """
    wanted = (kind,) if isinstance(kind, str) else kind
    for k in wanted or ():
        if k not in RECORD_TYPES:
            raise ValueError(f"unknown record kind {k!r}; known: {', '.join(RECORD_TYPES)}")
    with open(path, encoding="utf-8", newline="\n") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                if not text.endswith("\n"):  # the last line, cut short by a killed writer
                    warnings.warn(
                        f"{path}:{number}: ignoring a torn last line (killed writer?)", stacklevel=2
                    )
                    return
                raise RecordError(
                    path,
                    number,
                    "(line)",
                    f"expected valid JSON, got error: {exc.msg} at column {exc.colno}",
                ) from None
            record_kind = data.get("type") if isinstance(data, dict) else None
            if wanted is not None and record_kind in RECORD_TYPES and record_kind not in wanted:
                continue
            yield record_from_dict(data, path=path, line=number)


def repair_jsonl_tail(path: str | Path) -> int:
    """Cut a torn last line left by a killed writer; returns the bytes removed (warns if any).

    A complete JSON line that only lacks its newline gets the newline instead (nothing lost).
    """
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return 0
    with open(p, "r+b") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return 0
        size = fh.seek(0, os.SEEK_END)
        line_start, end = 0, size
        while end > 0:  # scan back in 64 KiB chunks for the last newline
            start = max(0, end - (1 << 16))
            fh.seek(start)
            cut = fh.read(end - start).rfind(b"\n")
            if cut >= 0:
                line_start = start + cut + 1
                break
            end = start
        fh.seek(line_start)
        tail = fh.read()
        try:
            json.loads(tail.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            fh.truncate(line_start)
            os.fsync(fh.fileno())
            warnings.warn(
                f"{p}: dropped a torn last line ({len(tail)} bytes) left by a killed "
                "run; earlier records are intact",
                stacklevel=2,
            )
            return len(tail)
        fh.write(b"\n")
        os.fsync(fh.fileno())
        return 0


def append_jsonl(path: str | Path, record: Record | dict[str, Any]) -> None:
    """Append one record as one line: write, flush, fsync (a kill loses at most this record).

    A dict is validated first, so a writer can never leave a line its reader would reject.
    """
    data = to_dict(record if dataclasses.is_dataclass(record) else record_from_dict(record))
    line = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
    repair_jsonl_tail(path)
    with open(path, "ab") as fh:
        fh.write(line.encode("utf-8"))
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    """Write a whole JSON file atomically: temp file in the same folder, fsync, os.replace."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, ensure_ascii=False, indent=2, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable (not possible on every platform)
        dir_fd = os.open(p.parent, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    except OSError:
        pass
