"""The prefix KV cache on SmolLM2-135M: each decoding with the cache on vs off, in one process.

    HF_HUB_OFFLINE=1 /work/venv/bin/python scripts/bench_prefix_cache.py \\
        --n 5 --max-new-tokens 256 --threads 2 --json bench_prefix_cache.json

Issue "[8/15] Search that never recomputes what it knows". Same questions and settings as
BENCHMARKS.md section 3 (scripts/bench_search_cost.py): SmolLM2-135M-Instruct (fp32, CPU, chat
template) with a fresh value head (``init_value_head_checkpoint(seed=0)``), the ``cot`` step
format, ``max_new_tokens`` 256 per path, temperature 0.6, seed 0, the first ``--n`` GSM8K test
questions batched together. For greedy, SBS(1,5), SBS(3,5) and maj@5 it runs the search with
``prefix_cache=False`` and then with a fresh policy with ``prefix_cache=True`` (order flipped with
``--cache-first``) and reports wall and CPU seconds, each decoding's time over greedy's (same
cache setting), prefill tokens computed (real and with padding) against the *unique* prefill
tokens (the distinct prefixes of every state requested: what an ideal cache computes), the
store's peak size against its budget, and whether both runs produced the same tokens (candidate
for candidate) and values (max |diff|).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from svpo_harness.core.policy import StepRequest, StepSample  # noqa: E402
from svpo_harness.core.search import RootState, SearchOptions, run_search  # noqa: E402
from svpo_harness.engines.backends.hf import HFStepPolicy  # noqa: E402

DECODINGS = {  # name -> (decoding, SearchOptions changes)
    "greedy": ("greedy", {}),
    "SBS(1,5)": ("sbs", {"b1": 1, "b2": 5}),
    "SBS(3,5)": ("sbs", {"b1": 3, "b2": 5}),
    "maj@5": ("maj", {"n_samples": 5}),
}


class CountingPolicy:
    """Delegates to an HFStepPolicy and counts the *unique* prefill tokens: state tokens that no
    earlier forward of the run computed, i.e. what an ideal cache must still prefill. A state
    token was computed when it was in an earlier state, or was a sampled step token the loop
    fed (every id of a step except its last when no value was read; none of a re-tokenized
    step's ids, which were never fed as such). Also the store's peak bytes after each call."""

    def __init__(self, inner: HFStepPolicy) -> None:
        self.inner = inner
        self.step_format = inner.step_format
        self._computed: dict = {}  # trie of computed ids
        self.unique_tokens = 0
        self.peak_store_bytes = 0

    def _mark(self, ids: Sequence[int], count: bool) -> None:
        node = self._computed
        for tok in ids:
            if tok not in node:
                node[tok] = {}
                self.unique_tokens += count
            node = node[tok]

    @property
    def has_value_head(self) -> bool:
        return self.inner.has_value_head

    def encode_prompt(self, question: str) -> tuple[int, ...]:
        return self.inner.encode_prompt(question)

    def decode(self, ids: Sequence[int]) -> str:
        return self.inner.decode(ids)

    def values(self, states: Sequence[Sequence[int]]) -> list[float]:
        return self.inner.values(states)

    def sample_steps(
        self, requests: Sequence[StepRequest], *, with_values: bool = True
    ) -> list[list[StepSample]]:
        for req in requests:
            self._mark(req.state_ids, count=True)
        out = self.inner.sample_steps(requests, with_values=with_values)
        fed_last = with_values and self.inner.has_value_head
        for req, samples in zip(requests, out, strict=True):
            for s in samples:
                if s.finish_reason == "delimiter" and not s.retokenized:
                    ids = s.token_ids if fed_last else s.token_ids[:-1]
                    self._mark(tuple(req.state_ids) + tuple(ids), count=False)
        if self.inner.prefix_cache is not None:
            self.peak_store_bytes = max(self.peak_store_bytes, self.inner.prefix_cache.bytes)
        return out


def measure(policy: HFStepPolicy, decoding: str, roots, opts, seed: int) -> dict[str, Any]:
    counting = CountingPolicy(policy)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    results = run_search(decoding, roots, counting, opts, seed=seed)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "prefill_tokens": policy.stats["prefill_tokens"],
        "prefill_padded": policy.stats["prefill_padded"],
        "unique_tokens": counting.unique_tokens,
        "generated_tokens": sum(r.tokens_generated for r in results),
        "peak_store_mb": counting.peak_store_bytes / 2**20,
        "results": results,
    }


def compare(a, b) -> tuple[int, int, float]:
    """(candidates, candidates with different ids, max |value diff|) between two runs."""
    cands = mismatched = 0
    diff = 0.0
    for ra, rb in zip(a, b, strict=True):
        for ca, cb in zip(ra.tree, rb.tree, strict=False):
            cands += 1
            mismatched += ca.token_ids != cb.token_ids
            if ca.value is not None and cb.value is not None:
                diff = max(diff, abs(ca.value - cb.value))
        mismatched += abs(len(ra.tree) - len(rb.tree))
    return cands, mismatched, diff


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5, help="first N GSM8K test questions")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-mb", type=float, default=2048)
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--decodings", nargs="*", default=list(DECODINGS))
    parser.add_argument("--cache-first", action="store_true", help="run the cached search first")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    from svpo_harness.data.problems import load_problems
    from svpo_harness.engines.checkpoint import init_value_head_checkpoint
    from svpo_harness.engines.smollm2 import ensure_smollm2

    problems = load_problems("gsm8k", "test", data_dir=args.data_dir)[: args.n]
    with tempfile.TemporaryDirectory(prefix="bench-prefix-") as tmp:
        ckpt = init_value_head_checkpoint(ensure_smollm2(), Path(tmp) / "ckpt", seed=args.seed)
        base = HFStepPolicy.from_checkpoint(
            ckpt, device="cpu", dtype="float32", apply_chat_template=True, prefix_cache=False
        )
    model, tokenizer, head = base.model, base.tokenizer, base.value_head

    def policy(cache: bool) -> HFStepPolicy:
        return HFStepPolicy(
            model,
            tokenizer,
            base.step_format,
            head,
            apply_chat_template=True,
            chat_template=base.chat_template,
            prefix_cache=cache,
            prefix_cache_mb=args.cache_mb,
        )

    roots = [RootState(p["question_id"], base.encode_prompt(p["question"])) for p in problems]
    opts = SearchOptions(temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    run_search("greedy", roots[:1], policy(False), dataclasses.replace(opts, max_new_tokens=8))
    load_before = os.getloadavg()[0]
    rows: dict[str, dict[str, dict[str, Any]]] = {}
    for name in args.decodings:
        decoding, changes = DECODINGS[name]
        rows[name] = {}
        for cache in (True, False) if args.cache_first else (False, True):
            run = measure(
                policy(cache), decoding, roots, dataclasses.replace(opts, **changes), args.seed
            )
            rows[name]["on" if cache else "off"] = run
            print(
                f"{name} cache {'on ' if cache else 'off'}: {run['wall_s']:.1f} s wall, "
                f"cpu/wall {run['cpu_s'] / run['wall_s']:.2f}, prefill {run['prefill_tokens']} "
                f"({run['prefill_padded']} padded) vs unique {run['unique_tokens']}",
                file=sys.stderr,
                flush=True,
            )
    print(table(rows, args.cache_mb))
    print(
        f"\nload average before {load_before:.2f}, after {os.getloadavg()[0]:.2f}; peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
    )
    if args.json:
        payload = {
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "torch": torch.__version__,
            "rows": {
                name: {k: {f: v for f, v in run.items() if f != "results"} for k, run in r.items()}
                for name, r in rows.items()
            },
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


def table(rows: dict[str, dict[str, dict[str, Any]]], cache_mb: float) -> str:
    lines = [
        "| decoding | wall off s | wall on s | on/off | cpu/wall off, on | time / greedy off "
        "| time / greedy on | prefill computed off (padded) | prefill computed on (padded) "
        "| unique | on / unique | peak store MB (budget) | same tokens | max value diff |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    greedy = rows.get("greedy")
    for name, r in rows.items():
        off, on = r["off"], r["on"]
        cands, mismatched, diff = compare(on["results"], off["results"])
        vs = (
            f"{off['wall_s'] / greedy['off']['wall_s']:.2f}x | "
            f"{on['wall_s'] / greedy['on']['wall_s']:.2f}x"
            if greedy
            else "- | -"
        )
        lines.append(
            f"| {name} | {off['wall_s']:.1f} | {on['wall_s']:.1f} | "
            f"{on['wall_s'] / off['wall_s']:.2f} | {off['cpu_s'] / off['wall_s']:.2f}, "
            f"{on['cpu_s'] / on['wall_s']:.2f} | {vs} | {off['prefill_tokens']} "
            f"({off['prefill_padded']}) | {on['prefill_tokens']} ({on['prefill_padded']}) | "
            f"{on['unique_tokens']} | {on['prefill_padded'] / on['unique_tokens']:.2f} | "
            f"{on['peak_store_mb']:.0f} ({cache_mb:.0f}) | "
            f"{cands - mismatched}/{cands} | {diff:.1e} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
