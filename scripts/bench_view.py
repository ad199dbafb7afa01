"""`svpo view` on a large annotation: page size and time to interactive in headless Chromium.

    python scripts/bench_view.py [--trees 1000] [--simulations 40] [--children 5] [--runs 3]

Writes a trees.jsonl of TREES trees shaped like `svpo annotate --simulations S --children C`
(every simulation expands one leaf into C children: 1 + S * C nodes a tree, step texts of
30-70 characters, Q/N/V/prior on every node, one pair per expanded node with two children
apart), builds the page with `svpo view` and opens it RUNS times in headless Chromium
(tests/view/cdp_browser.py, over the DevTools pipe). Prints the page's size and, per run:
interactive = navigation start until the page's script has listed every question and drawn
the first tree (``document.body.dataset.ready``, the page's own performance.now()); deep link =
opening ``#q=<a question in the middle>`` fully expanded, in the loaded page.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "view"))

from cdp_browser import Browser  # noqa: E402

from svpo_harness.core.step_format import ARITH  # noqa: E402

WORDS = "she has buys gives away more cards pens so then the answer is equal groups left".split()


def _text(rng: random.Random, depth: int) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return (
        f"{words.capitalize()}, so {a} + {b} = {a + b}.\n" if depth < 6 else f"The answer is {a}."
    )


def make_tree(i: int, simulations: int, children: int, rng: random.Random) -> tuple[dict, list]:
    nodes = [dict(node_id=0, parent_id=None, depth=0, token_ids=[], text="", prior=1.0,
                  logprob_mean=None, N=0, W=0.0, value=None, terminal=False,
                  terminal_reason=None, answer=None, reward=None, finish_reason=None)]  # fmt: skip
    leaves = [0]
    for _ in range(simulations):
        leaf = leaves.pop(rng.randrange(len(leaves)))
        depth = nodes[leaf]["depth"] + 1
        for _ in range(children):
            end = depth >= 6 or rng.random() < 0.15
            reward = rng.choice([1.0, -1.0]) if end else None
            n = rng.randint(1, 6)
            nodes.append(dict(
                node_id=len(nodes), parent_id=leaf, depth=depth, token_ids=[7] * 12,
                text=_text(rng, 6 if end else depth), prior=round(rng.random(), 6),
                logprob_mean=-0.2, N=n, W=round(n * rng.uniform(-1, 1), 6),
                value=round(rng.uniform(-1, 1), 6), terminal=end,
                terminal_reason="answer" if end else None,
                answer=str(rng.randint(1, 99)) if end else None, reward=reward,
                finish_reason="delimiter",
            ))  # fmt: skip
            if not end:
                leaves.append(len(nodes) - 1)
        if not leaves:
            break
    qid = f"bench-{i:05d}"
    tree = {
        "type": "tree", "schema_version": 1, "question_id": qid,
        "question": f"Question {i}: " + " ".join(rng.choice(WORDS) for _ in range(25)) + "?",
        "gold_answer": "42", "step_format": ARITH.to_dict(), "tokenizer_fingerprint": "sha256:x",
        "chat_template": None, "prompt_ids": [1] * 50, "nodes": nodes,
    }  # fmt: skip
    pairs = []
    for parent in {n["parent_id"] for n in nodes[1:]}:
        kids = [n for n in nodes if n["parent_id"] == parent]
        best, worst = (
            max(kids, key=lambda n: n["W"] / n["N"]),
            min(kids, key=lambda n: n["W"] / n["N"]),
        )
        if best["W"] / best["N"] - worst["W"] / worst["N"] >= 0.5:
            pairs.append({
                "type": "pair", "schema_version": 1, "question_id": qid, "prefix_ids": [1],
                "chosen_ids": [7], "rejected_ids": [7], "chosen_text": best["text"],
                "rejected_text": worst["text"], "q_chosen": best["W"] / best["N"],
                "q_rejected": worst["W"] / worst["N"], "tokenizer_fingerprint": "sha256:x",
                "step_format": "arith", "chosen_node_id": best["node_id"],
                "rejected_node_id": worst["node_id"], "parent_node_id": parent,
            })  # fmt: skip
    return tree, pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trees", type=int, default=1000)
    ap.add_argument("--simulations", type=int, default=40)
    ap.add_argument("--children", type=int, default=5)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(0)
    folder = Path(tempfile.mkdtemp(prefix="svpo-bench-view-"))
    n_nodes = 0
    with open(folder / "trees.jsonl", "w") as trees, open(folder / "pairs.jsonl", "w") as pairs:
        for i in range(args.trees):
            tree, tree_pairs = make_tree(i, args.simulations, args.children, rng)
            n_nodes += len(tree["nodes"])
            trees.write(json.dumps(tree) + "\n")
            pairs.writelines(json.dumps(p) + "\n" for p in tree_pairs)
    page = folder / "trees.html"
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "svpo_harness.cli", "view", str(folder), "--out", str(page)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    build = time.perf_counter() - start
    print(f"{args.trees} trees, {n_nodes} nodes ({n_nodes / args.trees:.0f} a tree), "
          f"trees.jsonl {(folder / 'trees.jsonl').stat().st_size / 1e6:.1f} MB")  # fmt: skip
    print(f"svpo view: {build:.1f} s -> {done.stdout.strip()}")
    middle = f"bench-{args.trees // 2:05d}"
    interactive, deep = [], []
    with Browser() as browser:
        for _ in range(args.runs):
            tab = browser.open(page)
            ready = "new Promise((ok) => { const t = () => document.body.dataset.ready ? ok("
            ready += "performance.now()) : setTimeout(t, 5); t(); })"
            interactive.append(tab.eval(ready) / 1000)
            listed = tab.eval("document.querySelectorAll('#qlist li').length")
            t0 = tab.eval("performance.now()")
            tab.eval(f"location.hash = 'q={middle}'")
            t1 = tab.eval(
                f"new Promise((ok) => {{ const t = () => document.body.dataset.loaded === "
                f"'{middle}' ? ok(performance.now()) : setTimeout(t, 1); t(); }})"
            )
            shown = tab.eval("document.querySelectorAll('#tree .row').length")
            deep.append((t1 - t0) / 1000)
            assert listed == args.trees and tab.errors == [], (listed, tab.errors)
    runs = [round(x, 2) for x in interactive]
    print(f"time to interactive (list of {listed} questions + first tree): "
          f"median {statistics.median(interactive):.2f} s of {runs}")  # fmt: skip
    print(f"deep link #q={middle} fully expanded ({shown} nodes drawn): "
          f"median {statistics.median(deep) * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
