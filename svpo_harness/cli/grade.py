"""``svpo grade``: re-score saved outputs with the project's answer checker.

Reads any JSON Lines file: our eval outputs, lm-eval ``samples_*.jsonl`` (``resps``,
``filtered_resps``, ``doc``, ``target``) or another framework's records. Fields are dotted
paths (``doc.answer``, ``resps.0.0``, ``6b_finetuning.solution``). Heavy imports (sympy, the
worker pool) happen inside the command, so ``svpo --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from svpo_harness.grading.extract import STYLES

# Pairs graded per pool call: small enough for a live progress bar, big enough to amortise.
_BATCH = 512


class GradeInputError(click.ClickException):
    """A user mistake in the input file: message names file, line and field; exit code 2."""

    exit_code = 2


def resolve_field(record: Any, path: str) -> Any:
    """Follow a dotted path through dicts (keys) and lists (integer indices)."""
    cur = record
    for part in path.split("."):
        if isinstance(cur, dict):
            if part not in cur:
                raise KeyError(f"no key {part!r}")
            cur = cur[part]
        elif isinstance(cur, list):
            if not part.lstrip("-").isdigit() or not -len(cur) <= int(part) < len(cur):
                raise KeyError(f"no index {part!r} in a list of {len(cur)}")
            cur = cur[int(part)]
        else:
            raise KeyError(f"cannot take {part!r} of a {type(cur).__name__}")
    return cur


# A serialised ``ExtractedAnswer`` (``dataclasses.asdict``): its ``answer`` is the answer.
_EXTRACTED_KEYS = frozenset({"answer", "kind", "start", "is_fallback"})


def _as_answer_text(value: Any, where: str, field: str) -> str:
    if isinstance(value, dict) and "answer" in value and set(value) <= _EXTRACTED_KEYS:
        value = value["answer"]
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        kind = "null" if value is None else type(value).__name__
        raise GradeInputError(f"{where}: field {field!r} is a {kind}, expected a string or number")
    if isinstance(value, (int, float)):
        return repr(value)
    if not isinstance(value, str):
        raise GradeInputError(f"{where}: field {field!r} has an unsupported type")
    return value


def read_records(path: Path, pred_field: str, gold_field: str) -> list[tuple[int, str, str]]:
    """(line number, pred text, gold text) for every non-empty line; errors name file:line."""
    out = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                msg = f"{where}: invalid JSON ({exc.msg} at column {exc.colno})"
                raise GradeInputError(msg) from None
            texts = []
            for field in (pred_field, gold_field):
                try:
                    value = resolve_field(rec, field)
                except KeyError as exc:
                    msg = f"{where}: field {field!r} not found ({exc.args[0]})"
                    raise GradeInputError(msg) from None
                texts.append(_as_answer_text(value, where, field))
            out.append((lineno, texts[0], texts[1]))
    return out


@click.command("grade")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pred-field", required=True, help="Dotted path to the model output, e.g. resps.0.0")
@click.option("--gold-field", required=True, help="Dotted path to the gold, e.g. doc.answer")
@click.option(
    "--gold-extract/--no-gold-extract", default=None,
    help="Reduce the gold to its final answer (GSM8K `#### x`, MATH `\\boxed{}`). "
    "Default: when the gold has such a marker.",
)  # fmt: skip
@click.option(
    "--gold-style", type=click.Choice(STYLES), default="strict", show_default=True,
    help="Extraction style for the gold when it is extracted.",
)  # fmt: skip
@click.option(
    "--pred-extract/--no-pred-extract", default=True, show_default=True,
    help="Extract the answer from the prediction; off when the field already holds answers.",
)  # fmt: skip
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds per check.")
@click.option(
    "--processes", type=int, default=None,
    help="Grading worker processes (default: CPU count, max 8; 0 = in this process).",
)  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Per-line verdicts.")
def grade(
    file: Path, pred_field: str, gold_field: str, gold_extract: bool | None, gold_style: str,
    pred_extract: bool, timeout: float, processes: int | None, out: Path | None,
) -> None:  # fmt: skip
    """Re-score FILE (JSON Lines): accuracy in strict and flexible mode.

    Strict counts only marked answers (\\boxed{}, ####, "The answer is", "Final Answer:");
    flexible falls back to the last math span or number. n_missing_answer counts outputs
    without a marked answer.

    \b
    Example: svpo grade samples_svpo_gsm8k.jsonl --pred-field resps.0.0 --gold-field doc.answer
    """
    from tqdm import tqdm

    from svpo_harness.grading import extract_answer, grade_many, has_marked_answer

    records = read_records(file, pred_field, gold_field)
    if not records:
        raise GradeInputError(f"{file}: no records")
    rows = []
    for lineno, pred, gold in records:
        if gold_extract or (gold_extract is None and has_marked_answer(gold)):
            got = extract_answer(gold, gold_style)
            if got is None:
                raise GradeInputError(
                    f"{file}:{lineno}: field {gold_field!r}: no gold answer found ({gold_style})"
                )
            gold = got.answer
        if pred_extract:
            strict = extract_answer(pred, "strict")
            flex = strict or extract_answer(pred, "flexible")
        else:
            strict = flex = None
        rows.append((lineno, gold, strict, flex, pred))

    # One job per distinct (answer, gold): strict and flexible answers are usually the same.
    jobs: dict[tuple[str, str], int] = {}
    for _, gold, strict, flex, pred in rows:
        for ans in {a.answer for a in (strict, flex) if a} if pred_extract else {pred}:
            jobs.setdefault((ans, gold), len(jobs))
    keys = list(jobs)
    verdicts: list[bool] = []
    with tqdm(total=len(keys), desc="grading", unit="pair", disable=len(keys) < 2000) as bar:
        for i in range(0, len(keys), _BATCH):
            batch = keys[i : i + _BATCH]
            verdicts += grade_many(batch, timeout=timeout, processes=processes)
            bar.update(len(batch))

    def ok(ans: str | None, gold: str) -> bool:
        return ans is not None and verdicts[jobs[(ans, gold)]]

    n = len(rows)
    n_strict = n_flex = n_missing = 0
    out_f = out.open("w", encoding="utf-8") if out else None
    try:
        for lineno, gold, strict, flex, pred in rows:
            if pred_extract:
                s_ok = ok(strict.answer if strict else None, gold)
                f_ok = ok(flex.answer if flex else None, gold)
                n_missing += strict is None
            else:
                s_ok = f_ok = ok(pred, gold)
            n_strict += s_ok
            n_flex += f_ok
            if out_f:
                rec = {
                    "line": lineno, "gold": gold,
                    "pred_answer": (flex.answer if flex else None) if pred_extract else pred,
                    "pred_kind": (flex.kind if flex else None) if pred_extract else "given",
                    "strict": s_ok, "flexible": f_ok,
                }  # fmt: skip
                out_f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    finally:
        if out_f:
            out_f.close()
    click.echo(f"file: {file}")
    click.echo(f"records: {n}")
    click.echo(f"accuracy_strict: {n_strict / n:.4f} ({n_strict}/{n})")
    click.echo(f"accuracy_flexible: {n_flex / n:.4f} ({n_flex}/{n})")
    click.echo(f"n_missing_answer: {n_missing}")
    if out:
        click.echo(f"verdicts: {out}")
