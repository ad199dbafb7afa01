"""Annotation throughput on SmolLM2-135M: MCTS generated tokens/s vs plain batched `generate`.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/bench_annotate.py \\
        --n 8 --simulations 8 --threads 2 --json bench_annotate.json

Issue "[9/15] svpo annotate", done-when: "generated tokens/s kept by annotation vs plain
batched generate on the same prompts with max_new_tokens equal to the mean step length; target
at least 60% (goal 85%)". One process, one model: SmolLM2-135M-Instruct (fp32, CPU, chat
template, ``cot`` format) with a fresh value head (``leaf_value=zero``, as round 1 runs), the
first ``--n`` GSM8K train questions, MCTS with ``--simulations`` per tree, 5 children,
temperature 0.6, all trees in flight; rewards graded by the answer checker's pool.

The baseline is ``model.generate`` (sampling, temperature 0.6) on the same prompts, 5 sequences
per prompt (an expansion's rows), all prompts in one left-padded batch, ``max_new_tokens`` = the
mean step length annotation produced; its tokens are the new tokens up to EOS. Both report
tokens per wall second in the same process; the ratio is the headline number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


def run_annotation(policy, questions, simulations: int, seed: int) -> dict:
    from svpo_harness.core.mcts import MCTSOptions
    from svpo_harness.grading import grade_many
    from svpo_harness.pipelines.annotate import annotate_trees

    opts = MCTSOptions(simulations=simulations, children=5, temperature=0.6, leaf_value="zero")
    totals = {"trees": 0, "tokens": 0, "steps": 0, "pairs": 0, "solved": 0}

    def on_tree(record, records, counters) -> None:
        totals["trees"] += 1
        totals["tokens"] += counters["tokens_generated"]
        totals["steps"] += len(record.nodes) - 1
        totals["pairs"] += sum(r.KIND == "pair" for r in records)
        totals["solved"] += counters["solved"]

    grade_many([("1", "1")])  # start the grading pool before timing
    start, cpu = time.perf_counter(), time.process_time()
    annotate_trees(
        questions,
        policy,
        opts,
        seed=seed,
        grade=lambda items: grade_many(list(items)),
        trees_in_flight=len(questions),
        on_tree=on_tree,
    )
    wall = time.perf_counter() - start
    totals.update(wall_s=wall, cpu_s=time.process_time() - cpu, tok_per_s=totals["tokens"] / wall)
    return totals


def run_generate(policy, questions, max_new_tokens: int, seed: int) -> dict:
    tok, model = policy.tokenizer, policy.model
    prompts = [list(policy.encode_prompt(q.question)) for q in questions]
    width = max(len(p) for p in prompts)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    torch.manual_seed(seed)
    start, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=0.6,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            num_return_sequences=5,
            pad_token_id=pad,
        )
    wall = time.perf_counter() - start
    new = out[:, width:]
    eos = set(policy._spec.eos_ids)
    tokens = 0
    for row in new.tolist():
        for t in row:
            if t in eos:
                break
            tokens += 1
    return {"wall_s": wall, "cpu_s": time.process_time() - cpu, "tokens": tokens,
            "tok_per_s": tokens / wall, "rows": int(new.shape[0])}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--simulations", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.engines.checkpoint import init_value_head_checkpoint
    from svpo_harness.engines.smollm2 import ensure_smollm2
    from svpo_harness.pipelines.annotate import load_annotation_questions

    questions, _ = load_annotation_questions("gsm8k:train", data_dir=args.data_dir, limit=args.n)
    with tempfile.TemporaryDirectory(prefix="bench-annotate-") as tmp:
        ckpt = init_value_head_checkpoint(ensure_smollm2(), Path(tmp) / "ckpt", seed=args.seed)
        policy = HFStepPolicy.from_checkpoint(
            ckpt, device="cpu", dtype="float32", apply_chat_template=True
        )
    load = os.getloadavg()[0]
    ann = run_annotation(policy, questions, args.simulations, args.seed)
    mean_step = max(1, round(ann["tokens"] / max(ann["steps"], 1)))
    gen = run_generate(policy, questions, mean_step, args.seed)
    ratio = ann["tok_per_s"] / gen["tok_per_s"]
    print(
        "| run | wall s | cpu/wall | tokens | tokens/s |\n|---|---:|---:|---:|---:|\n"
        f"| annotate ({ann['trees']} trees x {args.simulations} simulations, 5 children) | "
        f"{ann['wall_s']:.1f} | {ann['cpu_s'] / ann['wall_s']:.2f} | {ann['tokens']} | "
        f"{ann['tok_per_s']:.1f} |\n"
        f"| generate ({gen['rows']} rows, max_new_tokens {mean_step}) | {gen['wall_s']:.1f} | "
        f"{gen['cpu_s'] / gen['wall_s']:.2f} | {gen['tokens']} | {gen['tok_per_s']:.1f} |\n\n"
        f"annotation keeps {ratio:.0%} of generate's tokens/s (target >= 60%, goal 85%); "
        f"mean step {mean_step} tokens; {ann['pairs']} pairs, {ann['solved']}/{ann['trees']} "
        f"trees solved; load average {load:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    if args.json:
        payload = {"args": {k: str(v) for k, v in vars(args).items()}, "annotate": ann,
                   "generate": gen, "ratio": ratio, "mean_step_tokens": mean_step}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
