"""Numbers of `svpo report` that come from per-question records rather than lm-eval's totals.

- Paired significance: the exact McNemar test (a two-sided binomial test on the discordant
  pairs) on strict correctness, over the problems two rows share.
- Cost per question: generated tokens from an `--model svpo` search log (every token the search
  generated, its real cost) or from re-tokenizing the logged responses (what the answer itself
  took; a lower bound for `hf`, whose stop string and EOS tokens are not in the text).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

from svpo_harness.core.jsonl_io import json_objects

Correct = dict[int, tuple[bool, str | None]]  # doc_id -> (strictly correct, doc_hash)
MCNEMAR = "exact McNemar test (two-sided binomial test on the discordant pairs, p = 0.5)"


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (1.0 when there are none).

    p = min(1, 2 * P(X <= min(b, c))), X ~ Binomial(b + c, 1/2); exact rational arithmetic.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2**n)))


def mean_stderr(values: Sequence[float]) -> float | None:
    """Standard error of a mean as lm-eval computes it: sample std (n - 1) / sqrt(n)."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return math.sqrt(var / n)


def correct_by_doc(samples: Iterable[dict[str, Any]]) -> Correct:
    """doc_id -> (strict correctness, doc_hash) from lm-eval sample records."""
    return {int(s["doc_id"]): (float(s["acc"]) >= 0.5, s.get("doc_hash")) for s in samples}


def paired_test(a: Correct, b: Correct) -> dict[str, Any]:
    """McNemar over the doc_ids both rows have (and whose doc_hash agrees where both give one).

    Two rows with no problem in common are not comparable: ``comparable`` False, ``p`` None (no
    test, rather than the p = 1 of zero discordant pairs)."""
    common, differ = [], 0
    for doc_id in sorted(a.keys() & b.keys()):
        hash_a, hash_b = a[doc_id][1], b[doc_id][1]
        if hash_a and hash_b and hash_a != hash_b:
            differ += 1  # same position, another problem: not a pair
            continue
        common.append(doc_id)
    only_a = sum(1 for d in common if a[d][0] and not b[d][0])
    only_b = sum(1 for d in common if b[d][0] and not a[d][0])
    n = len(common)
    return {
        "test": MCNEMAR,
        "comparable": n > 0,
        "n_common": n,
        "n_other_problem": differ,
        "acc_a": sum(a[d][0] for d in common) / n if n else None,
        "acc_b": sum(b[d][0] for d in common) / n if n else None,
        "b": only_a,  # A right, B wrong
        "c": only_b,  # A wrong, B right
        "p": mcnemar_exact(only_a, only_b) if n else None,
    }


# ---- generated tokens per question ------------------------------------------------------


def context_of(sample: dict[str, Any]) -> str | None:
    """The prompt lm-eval sent for a logged sample (arguments.gen_args_0.arg_0)."""
    args = sample.get("arguments")
    if isinstance(args, dict):
        first = args.get("gen_args_0")
        if isinstance(first, dict):
            return first.get("arg_0")
    elif isinstance(args, list) and args and isinstance(args[0], list) and args[0]:
        return args[0][0]  # the in-memory form, before lm-eval's sanitising
    return None


def read_search_log(paths: Sequence[Path], decoding: str | None) -> dict[str, int]:
    """context -> tokens_generated summed over its searches (repeats); the last record per key.

    Records of another decoding (an appended log of another run) are skipped.
    """
    by_key: dict[str, tuple[str, int]] = {}
    for path in paths:
        for number, record in json_objects(path):
            try:
                context, tokens = record["context"], int(record["tokens_generated"])
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path} line {number}: not a search log record ({err})") from None
            if decoding and record.get("decoding") not in (None, decoding):
                continue
            by_key[record.get("key", context)] = (context, tokens)
    totals: dict[str, int] = {}
    for context, tokens in by_key.values():
        totals[context] = totals.get(context, 0) + tokens
    return totals


def tokens_from_log(
    samples: Sequence[dict[str, Any]] | None, log: dict[str, int]
) -> tuple[list[int], str]:
    """Per-question token counts of the search log matched to the samples, and a note."""
    if not samples:
        return list(log.values()), f"no samples file: mean over the log's {len(log)} questions"
    found = [log[c] for c in (context_of(s) for s in samples) if c is not None and c in log]
    note = "" if len(found) == len(samples) else f"{len(found)} of {len(samples)} in the log"
    return found, note


def tokens_from_text(samples: Sequence[dict[str, Any]], tokenizer: Any) -> list[int]:
    """Re-tokenized length of every logged response (all repeats of a question summed)."""
    counts = []
    for sample in samples:
        resps = sample.get("resps") or [[]]
        texts = resps[0] if isinstance(resps[0], list) else resps
        counts.append(sum(len(tokenizer.encode(str(t), add_special_tokens=False)) for t in texts))
    return counts


def load_tokenizer(spec: str) -> Any:
    """A tokenizer from a local folder or the offline hub cache (never a download)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(spec, local_files_only=True)
