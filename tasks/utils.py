"""The one scoring module every svpo task points at (``!function utils.*``), plus data loaders.

Scoring reads the gold answer from the doc (``doc["answer"]``), never through ``doc_to_target``,
which lm-eval may ``literal_eval`` into a list. Metrics:
- ``acc``: strict, marked answers only (``\\boxed{}``, ``The answer is``, ``Final Answer:``,
  ``####``);
- ``acc_flexible``: a marked answer, else the last number in the text;
- ``math_verify``: math-verify's verdict on the same text, for comparison with other harnesses.
Grading policy and its version live in ``svpo_harness.grading``; ``metadata.grading_version`` in
each YAML must equal ``GRADING_VERSION`` (a test checks it).
"""

from __future__ import annotations

from typing import Any

GRADING_VERSION = 1


def _step_format(doc: dict[str, Any]):
    from svpo_harness.core.step_format import get_step_format

    return get_step_format(doc.get("step_format") or "cot")


def doc_to_text(doc: dict[str, Any]) -> str:
    return _step_format(doc).prompt(doc["question"])


def _math_verify(response: str, gold: str) -> bool:
    try:
        from math_verify import parse, verify

        gold_parsed = parse(f"${gold}$")
        return bool(gold_parsed) and bool(verify(gold_parsed, parse(response)))
    except Exception:  # noqa: BLE001 - a comparison metric must never stop an evaluation
        return False


def score_response(response: str, gold: str) -> dict[str, float]:
    """Score one generated solution against the gold final answer."""
    from svpo_harness.grading import extract_answer, grade_many

    strict = extract_answer(response, style="strict")
    flexible = extract_answer(response, style="flexible")
    pairs = [(found.answer, gold) for found in (strict, flexible) if found is not None]
    # grade_many runs the checks in worker processes with a hard time limit (method.md s7).
    verdicts = iter(grade_many(pairs)) if pairs else iter(())
    acc = next(verdicts) if strict is not None else False
    if flexible is None:
        acc_flexible = False
    elif strict is not None and flexible.answer == strict.answer:
        acc_flexible = acc
        next(verdicts, None)
    else:
        acc_flexible = next(verdicts)
    return {
        "acc": float(acc),
        "acc_flexible": float(acc_flexible),
        "math_verify": float(_math_verify(response, gold)),
    }


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    return score_response(results[0] if results else "", str(doc["answer"]))


# -- data: lm-eval calls custom_dataset(**metadata, **dataset_kwargs); model_args land in metadata
# (over the YAML's own), so `step_format=tool` and `pretrained` reach the loaders.
def _load(name: str, split: str = "test", data_dir: str | None = None, step_format: str = "cot"):
    import datasets

    from svpo_harness.data.problems import load_problems

    rows = load_problems(name, split, data_dir=data_dir)
    for row in rows:
        row["step_format"] = step_format
    return datasets.DatasetDict({split: datasets.Dataset.from_list(rows)})


def _checkpoint_format(pretrained: Any) -> str | None:
    """The step format name in a local checkpoint's svpo.json (``pretrained`` model arg)."""
    import json
    from pathlib import Path

    try:
        meta = json.loads((Path(str(pretrained)) / "svpo.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None
    fmt = meta.get("step_format") if isinstance(meta, dict) else None
    return fmt.get("name") if isinstance(fmt, dict) else None


def prompt_format(step_format: str = "cot", pretrained: Any = None, default: str = "cot") -> str:
    """The format a task prompts with: ``step_format`` (the YAML's ``default``, overridden by
    ``--model_args step_format=tool``), or ``tool`` when the checkpoint records the tool format
    (tool steps are prompted with their own template, never the ``cot`` or ``arith`` one)."""
    if step_format == default and pretrained and _checkpoint_format(pretrained) == "tool":
        return "tool"
    return step_format


def _loader(name: str):
    def load(
        data_dir: str | None = None,
        split: str = "test",
        step_format: str = "cot",
        pretrained: Any = None,
        **_: Any,
    ):
        fmt = prompt_format(step_format, pretrained)
        return _load(name, split=split, data_dir=data_dir, step_format=fmt)

    load.__name__ = f"load_{name}"
    return load


load_gsm8k = _loader("gsm8k")
load_math = _loader("math")
load_math500 = _loader("math500")
load_gaokao2023en = _loader("gaokao2023en")
load_ocw = _loader("ocw")
load_svamp = _loader("svamp")
load_asdiv = _loader("asdiv")
load_mawps = _loader("mawps")
load_tabmwp = _loader("tabmwp")
load_gsm_hard = _loader("gsm_hard")
load_college_math = _loader("college_math")


def load_arith(
    split: str = "test",
    n: int | None = None,
    step_format: str = "arith",
    pretrained: Any = None,
    **_: Any,
):
    """The built-in synthetic arithmetic world (no download); prompts use the `arith` format, or
    `tool` for a tool checkpoint (the demo model's tool variant) or `step_format=tool`."""
    from svpo_harness.core.arith import arith_split

    return _world_rows(arith_split, "arith", split, n, step_format, pretrained)


def load_arith_hard(
    split: str = "test",
    n: int | None = None,
    step_format: str = "arith",
    pretrained: Any = None,
    **_: Any,
):
    """The arithmetic world's hard split (svpo_harness.core.arith_hard: longer chains, at least
    two divisions), prompted as `load_arith` prompts."""
    from svpo_harness.core.arith_hard import arith_hard_split

    return _world_rows(arith_hard_split, "arith_hard", split, n, step_format, pretrained)


def _world_rows(
    make: Any, dataset: str, split: str, n: int | None, step_format: str, pretrained: Any
):
    import datasets

    from svpo_harness.core.arith import to_record

    fmt = prompt_format(step_format, pretrained, default="arith")
    rows = []
    for problem in make("dev" if split == "validation" else split, n=n):
        record = to_record(problem)
        rows.append(
            {
                "question_id": record["question_id"],
                "question": record["question"],
                "answer": str(record["answer"]),
                "solution": record["solution"],
                "dataset": dataset,
                "step_format": fmt,
            }
        )
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
