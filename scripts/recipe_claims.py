"""The numbers BENCHMARKS.md and the README quote from an `svpo run` folder, recomputed.

    python scripts/recipe_claims.py runs/full \\
        --compare "svpo greedy|dpo greedy" "svpo sbs-3-5|alphamath sbs-3-5"

Prints (1) accuracy per checkpoint x decoding, mean ± s.d. over seeds with each seed's value;
(2) for every ``A|B`` comparison (checkpoint and decoding names without the seed suffix), the
exact McNemar test per seed on the problems both rows answered (b = only A right, c = only B
right), from the lm-eval samples files, and over all seeds' (seed, problem) pairs pooled;
(3) each trained checkpoint's learning rate, chosen step, passes over its records and dev
curve (its svpo.json); (4) every trained row whose
greedy accuracy is below the base's greedy with p < 0.01 (method.md 7.2: none should be).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from svpo_harness.pipelines.report import (
    correct_by_doc,
    find_results,
    paired_test,
    read_results,
    read_samples,
    samples_file,
)

SEED = re.compile(r"^(.*?)(?: s(\d+))?$")


def _local(run: Path, path: str) -> Path:
    """A path the run wrote relative to where it was started, found under ``run`` itself."""
    found = Path(path)
    if found.is_absolute() or found.exists():
        return found
    written_out = json.loads((run / "results.json").read_text())["out"]
    return run / found.relative_to(written_out)


def _rows(run: Path) -> list[dict]:
    evaluations = json.loads((run / "results.json").read_text())["evaluations"]
    rows = []
    for ev in evaluations:
        name, seed = SEED.match(ev["checkpoint"]).groups()
        _, files = find_results(str(_local(run, ev["folder"])))
        results = read_results(files[0])
        task = next(iter(results["results"]))
        samples = samples_file(files[0], task)
        correct = correct_by_doc(read_samples(samples)) if samples else {}
        rows.append({**ev, "name": name, "seed": int(seed or 0), "correct": correct})
    return rows


def _key(row: dict) -> str:
    return f"{row['name']} {row['decoding']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--compare", nargs="*", default=[], metavar="A|B")
    args = parser.parse_args()
    rows = _rows(args.run)

    print("## accuracy (mean ± s.d. over seeds; per seed)")
    by_key: dict[str, list[dict]] = {}
    for row in rows:
        by_key.setdefault(_key(row), []).append(row)
    for key, group in by_key.items():
        accs = [r["acc"] for r in sorted(group, key=lambda r: r["seed"])]
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        ks = sorted({r["model_args"].get("num_samples") for r in group} - {None})
        extra = f" k={','.join(str(k) for k in ks)}" if ks and "maj" in key else ""
        each = ", ".join(f"{a:.3f}" for a in accs)
        print(f"{key}: {statistics.mean(accs):.3f} ± {sd:.3f} ({each}){extra}")

    print("\n## McNemar per seed (b = only A right, c = only B right)")
    for spec in args.compare:
        a_key, b_key = (s.strip() for s in spec.split("|"))
        pooled_a: dict = {}
        pooled_b: dict = {}
        seeds = []
        for a in sorted(by_key.get(a_key, []), key=lambda r: r["seed"]):
            b = next((r for r in by_key.get(b_key, []) if r["seed"] == a["seed"]), None)
            b = b or (by_key.get(b_key) or [None])[0]  # an unseeded row (the base)
            if b is None:
                continue
            t = paired_test(a["correct"], b["correct"])
            p = "n/a" if t["p"] is None else f"{t['p']:.2g}"
            print(f"{a_key} vs {b_key}, seed {a['seed']}: {t['b']} / {t['c']}, p = {p}")
            seeds.append(a["seed"])
            pooled_a.update({(a["seed"], d): v for d, v in a["correct"].items()})
            pooled_b.update({(a["seed"], d): v for d, v in b["correct"].items()})
        if len(seeds) > 1:
            # every (seed, problem) pair once: the seeds' discordant counts added up. The same
            # problems recur across seeds, so read this p beside the per-seed ones above.
            t = paired_test(pooled_a, pooled_b)
            p = "n/a" if t["p"] is None else f"{t['p']:.2g}"
            print(
                f"{a_key} vs {b_key}, seeds {','.join(map(str, seeds))} pooled "
                f"({t['n_common']} pairs): {t['b']} / {t['c']}, p = {p}"
            )

    print("\n## training (svpo.json)")
    for row in rows:
        if row["decoding"] != "greedy":
            continue
        meta_file = _local(args.run, row["path"]) / "svpo.json"
        training = json.loads(meta_file.read_text()).get("training", {})
        sel, exp = training.get("selection"), training.get("exposure")
        if not sel:
            continue
        curve = " ".join(f"{int(s)}:{a:.2f}" for s, a in sel["curve"])
        print(
            f"{row['checkpoint']}: lr {sel['lr']}, chosen step {sel['chosen_step']} of "
            f"{exp['optimizer_steps']}, passes {exp['passes']}, records {exp['records']}, "
            f"dev {sel['metric']} [{curve}]"
        )

    print("\n## trained rows significantly below the base (greedy, p < 0.01)")
    base = next(r for r in rows if r["name"] == "base" and r["decoding"] == "greedy")
    below = []
    for row in rows:
        if row["decoding"] == "greedy" and row["name"] not in ("base", "base-tool"):
            t = paired_test(row["correct"], base["correct"])
            if t["p"] is not None and t["p"] < 0.01 and t["b"] < t["c"]:
                below.append(f"{row['checkpoint']}: {t['b']} / {t['c']}, p = {t['p']:.2g}")
    print("\n".join(below) or "none")


if __name__ == "__main__":
    main()
