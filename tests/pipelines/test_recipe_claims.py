"""scripts/recipe_claims.py, the numbers BENCHMARKS.md and the README quote: per-seed McNemar
and the pooled test over every seed's (seed, problem) pairs, on a run folder made here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TASK = "svpo_arith_hard"


def _row(run: Path, label: str, decoding: str, right: list[int]) -> dict:
    """One evaluation: lm-eval's results and samples files, right[i] = problem i solved."""
    folder = run / "eval" / f"{label.replace(' ', '-')}-{decoding}"
    (folder / "lm").mkdir(parents=True)
    (folder / "lm" / "results_2026-01-01T00.json").write_text(json.dumps({"results": {TASK: {}}}))
    samples = [{"doc_id": i, "acc": float(r), "filter": "none"} for i, r in enumerate(right)]
    text = "".join(json.dumps(s) + "\n" for s in samples)
    (folder / "lm" / f"samples_{TASK}_2026-01-01T00.jsonl").write_text(text)
    ckpt = run / "ckpt" / label.replace(" ", "-")
    ckpt.mkdir(parents=True, exist_ok=True)
    (ckpt / "svpo.json").write_text(json.dumps({"training": {}}))
    acc = sum(right) / len(right)
    return {"checkpoint": label, "path": str(ckpt), "decoding": decoding, "model_args": {},
            "acc": acc, "folder": str(folder)}  # fmt: skip


def _p(b: int, c: int) -> float:
    """Two-sided exact McNemar p, computed here on its own."""
    n = b + c
    return min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n)


def test_pooled_mcnemar_adds_the_seeds_discordant_pairs(tmp_path):
    # seed 0: svpo alone right on 6 problems, dpo alone on 1; seed 1: 5 and 2
    svpo0, dpo0 = [1] * 6 + [0] + [1] * 3, [0] * 6 + [1] + [1] * 3
    svpo1, dpo1 = [1] * 5 + [0, 0] + [0] * 3, [0] * 5 + [1, 1] + [0] * 3
    rows = [
        _row(tmp_path, "base", "greedy", [0] * 10),
        _row(tmp_path, "svpo s0", "greedy", svpo0),
        _row(tmp_path, "svpo s1", "greedy", svpo1),
        _row(tmp_path, "dpo s0", "greedy", dpo0),
        _row(tmp_path, "dpo s1", "greedy", dpo1),
    ]
    (tmp_path / "results.json").write_text(json.dumps({"out": str(tmp_path), "evaluations": rows}))
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "recipe_claims.py"), str(tmp_path),
         "--compare", "svpo greedy|dpo greedy"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    lines = done.stdout.splitlines()
    assert f"svpo greedy vs dpo greedy, seed 0: 6 / 1, p = {_p(6, 1):.2g}" in lines
    assert f"svpo greedy vs dpo greedy, seed 1: 5 / 2, p = {_p(5, 2):.2g}" in lines
    pooled = f"svpo greedy vs dpo greedy, seeds 0,1 pooled (20 pairs): 11 / 3, p = {_p(11, 3):.2g}"
    assert pooled in lines
    assert "svpo greedy: 0.700 ± 0.283 (0.900, 0.500)" in lines
