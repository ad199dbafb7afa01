"""Step-level preference training speed: `svpo train --objective svpo` against TRL's DPOTrainer.

    bash scripts/bench_trl_venv.sh          # once: /work/venv-trl with the pinned TRL
    HF_HUB_OFFLINE=1 nice -n 19 /work/venv/bin/python scripts/bench_vs_trl.py \\
        --work runs/bench_vs_trl --n 40 --steps 5 --batch-size 8 --max-length 512 \\
        --threads 2 --json runs/bench_vs_trl.json      # --sides ours-pack ours-nopack trl

Issue 14: the same pairs, model (SmolLM2-135M-Instruct, LoRA r 16, alpha 32, all linear layers,
dropout 0), batch, steps, max length, lr 2e-4, beta 0.1, fp32, CPU, threads fixed, each side in
its own process; ours with its value losses on (the svpo default: DPO + value ranking; the MSE
term has no step_q rows here). Two reference settings: ``live`` (ours --no-precompute-ref, TRL's
default: the adapter-disabled policy forwards next to the policy every step) and
``precomputed`` (ours --precompute-ref, TRL ``precompute_ref_log_probs=True``).

Data (the same ids on both sides): ``--n`` GSM8K test questions; per question, prefix = the
SmolLM2 chat prompt of the step format's question prompt + the first k reference-solution lines
as steps (k seeded), chosen = line k+1, rejected = line k+1 with its numbers altered (seeded).
Calculator annotations ``<<..>>`` are dropped, the ``#### N`` line becomes a boxed answer, every
step ends with the step delimiter and is tokenized on its own (as sampled steps are). Written as
our pair records (WORK/pairs.jsonl) and as rows of ids + text for TRL (WORK/trl_pairs.jsonl).

Measured per run: pairs/s = steps x batch / the training loop's wall time, as each side reports
it (ours: `svpo train`'s JSON "seconds"; TRL: a callback from train begin to train end), so
model load, data prep and reference precompute are outside it; peak RSS of the child process
(``os.wait4``, one child per measurement). Prints a markdown table; ``--json`` writes all.
``--n`` = steps x batch makes one epoch: each pair is trained on once, and both sides' reference
precompute (outside the loop) covers exactly the trained pairs.

TRL's side (bench_trl_dpo.py): each step forwards 2 x batch rows (prompt + chosen, prompt +
rejected; the prefix twice, right-padded to the batch's longest; padding_free is disabled in TRL
1.16) and scores only completion positions through its fused LM head; the live reference is a
second no-grad forward of the same rows with the adapter disabled. Its DPOConfig defaults of
bf16 and activation checkpointing are turned off (fp32, nothing recomputed, as ours). "final
loss" is each side's own: DPO for TRL, DPO + value ranking for ours.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?(?<!,)")  # 16, 2.5, 80,000


# -- data ------------------------------------------------------------------------------------
def solution_steps(answer: str) -> list[str]:
    """GSM8K reference solution -> step lines: no ``<<calc>>`` notes, ``#### N`` boxed."""
    lines = []
    for line in answer.split("\n"):
        line = re.sub(r"<<[^>]*>>", "", line).strip()
        if line.startswith("####"):
            line = f"The answer is \\boxed{{{line[4:].strip()}}}."
        if line:
            lines.append(line)
    return lines


def alter_numbers(line: str, rng: random.Random) -> str:
    """Every number in ``line`` moved by a seeded nonzero amount (a plausible wrong step)."""

    def bump(match: re.Match[str]) -> str:
        text = match.group(0)
        whole, _, frac = text.partition(".")
        value = int(whole.replace(",", "")) + rng.choice([-1, 1]) * rng.randint(1, 9)
        value = value if value >= 0 else int(whole.replace(",", "")) + rng.randint(1, 9)
        digits = f"{value:,}" if "," in whole else str(value)
        return f"{digits}.{frac}" if frac else digits

    return NUMBER.sub(bump, line)


def build_data(ckpt: Path, gsm8k: Path, n: int, seed: int, max_length: int) -> dict[str, Any]:
    """WORK/pairs.jsonl (our records) and WORK/trl_pairs.jsonl (the same ids, plus text)."""
    from transformers import AutoTokenizer

    from svpo_harness.core.schemas import PairRecord
    from svpo_harness.core.step_format import get_step_format

    meta = json.loads((ckpt / "svpo.json").read_text(encoding="utf-8"))
    fmt = get_step_format(meta["step_format"])
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    rng = random.Random(seed)
    ours, trl_rows, dropped = [], [], 0
    questions = [json.loads(line) for line in gsm8k.read_text(encoding="utf-8").splitlines()]
    for index, item in enumerate(questions[:n]):
        steps = solution_steps(item["answer"])
        candidates = [k for k in range(len(steps)) if NUMBER.search(steps[k])]
        if not candidates:
            dropped += 1
            continue
        k = rng.choice(candidates)  # steps[:k] are the prefix, steps[k] the chosen step
        chosen = steps[k] + fmt.delimiter
        rejected = alter_numbers(steps[k], rng) + fmt.delimiter
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": fmt.prompt(item["question"])}],
            tokenize=False,
            add_generation_prompt=True,
        )

        def encode(text: str) -> list[int]:
            return tokenizer.encode(text, add_special_tokens=False)

        prefix_ids = encode(prompt)
        for step in steps[:k]:
            prefix_ids += encode(step + fmt.delimiter)
        chosen_ids, rejected_ids = encode(chosen), encode(rejected)
        if len(prefix_ids) + max(len(chosen_ids), len(rejected_ids)) > max_length:
            dropped += 1  # neither side may truncate: the comparison is on whole pairs
            continue
        q_chosen = round(rng.uniform(0.2, 1.0), 3)
        record = PairRecord(
            question_id=f"gsm8k-test-{index}",
            prefix_ids=tuple(prefix_ids),
            chosen_ids=tuple(chosen_ids),
            rejected_ids=tuple(rejected_ids),
            chosen_text=chosen,
            rejected_text=rejected,
            q_chosen=q_chosen,
            q_rejected=round(rng.uniform(-1.0, q_chosen - 0.2), 3),
            tokenizer_fingerprint=meta["tokenizer_fingerprint"],
            step_format=fmt.name,
            from_text=True,
        )
        ours.append(record.to_dict())
        trl_rows.append(
            {
                "prompt_ids": prefix_ids,
                "chosen_ids": chosen_ids,
                "rejected_ids": rejected_ids,
                "prompt": tokenizer.decode(prefix_ids, skip_special_tokens=False),
                "chosen": chosen,
                "rejected": rejected,
            }
        )
    lengths = [len(r["prompt_ids"]) for r in trl_rows]
    steps_len = [len(r["chosen_ids"]) + len(r["rejected_ids"]) for r in trl_rows]
    return {
        "ours": ours,
        "trl": trl_rows,
        "info": {
            "pairs": len(ours),
            "dropped": dropped,
            "prefix_ids_mean": sum(lengths) / max(1, len(lengths)),
            "prefix_ids_max": max(lengths, default=0),
            "step_ids_mean": sum(steps_len) / max(1, 2 * len(steps_len)),
        },
    }


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


# -- runs ------------------------------------------------------------------------------------
def run_child(cmd: list[str], log: Path, threads: int) -> dict[str, Any]:
    """One measurement in its own process: its JSON line, wall time and peak RSS (MiB)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.update(TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    result: dict[str, Any] = {
        "cmd": cmd,
        "log": str(log),
        "rc": child.returncode,
        "wall_s": time.perf_counter() - start,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux: KiB
    }
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    reports = [line for line in lines if line.startswith('{"')]  # not TRL's {'loss': ..} logs
    if child.returncode == 0 and reports:
        result["report"] = json.loads(reports[-1])
    else:
        result["error"] = "\n".join(lines[-15:])
    return result


def ours_cmd(args: argparse.Namespace, ckpt: Path, out: Path, ref: str, pack: bool) -> list[str]:
    return [
        str(args.svpo), "train", "--objective", "svpo", "--model", str(ckpt),
        "--data", str(args.work / "pairs.jsonl"), "--out", str(out),
        "--lora-r", "16", "--lora-alpha", "32", "--lr", "2e-4", "--beta", "0.1",
        "--batch-size", str(args.batch_size), "--max-steps", str(args.steps),
        "--max-length", str(args.max_length), "--device", "cpu", "--dtype", "float32",
        "--seed", str(args.seed), "--save-every", "0", "--overwrite", "--ref-cache", "none",
        "--pack" if pack else "--no-pack",
        "--precompute-ref" if ref == "precomputed" else "--no-precompute-ref",
    ]  # fmt: skip


def trl_cmd(args: argparse.Namespace, ckpt: Path, out: Path, ref: str) -> list[str]:
    cmd = [
        str(args.trl_python), str(HERE / "bench_trl_dpo.py"), "--model", str(ckpt),
        "--data", str(args.work / "trl_pairs.jsonl"), "--out", str(out),
        "--batch-size", str(args.batch_size), "--steps", str(args.steps),
        "--max-length", str(args.max_length), "--threads", str(args.threads),
        "--lora-r", "16", "--lora-alpha", "32", "--lr", "2e-4", "--beta", "0.1",
        "--seed", str(args.seed),
    ]  # fmt: skip
    cmd += ["--precompute-ref"] if ref == "precomputed" else []
    cmd += ["--gradient-checkpointing"] if args.trl_gradient_checkpointing else []
    return cmd


def summarize(run: dict[str, Any], pairs_per_step: int) -> dict[str, Any]:
    report = run.get("report") or {}
    seconds, steps = report.get("seconds"), report.get("steps")
    if seconds and steps:
        run["pairs_per_s"] = steps * pairs_per_step / seconds
    run["loop_s"], run["steps"], run["final_loss"] = seconds, steps, report.get("final_loss")
    return run


def table(runs: list[dict[str, Any]]) -> str:
    def f(x: Any, spec: str) -> str:
        return "n/a" if x is None else format(x, spec)

    lines = [
        "| reference | side | pairs/s | vs TRL | loop s | steps | peak RSS MiB | final loss |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        trl = next((r for r in runs if r["ref"] == run["ref"] and r["side"] == "trl"), {})
        ratio = None
        if run.get("pairs_per_s") and trl.get("pairs_per_s"):
            ratio = run["pairs_per_s"] / trl["pairs_per_s"]
        name = run["side"] if "error" not in run else f"{run['side']} (failed, rc {run['rc']})"
        lines.append(
            f"| {run['ref']} | {name} | {f(run.get('pairs_per_s'), '.2f')} | "
            f"{f(ratio, '.2f')}x | {f(run.get('loop_s'), '.1f')} | {f(run.get('steps'), 'd')} | "
            f"{run['peak_rss_mib']:.0f} | {f(run.get('final_loss'), '.4f')} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path("runs/bench_vs_trl"))
    parser.add_argument("--n", type=int, default=40, help="GSM8K test questions (one pair each)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--refs", nargs="+", choices=["live", "precomputed"],
                        default=["live", "precomputed"])  # fmt: skip
    parser.add_argument("--sides", nargs="*", default=["ours-pack", "trl"],
                        choices=["ours-pack", "ours-nopack", "trl"])  # fmt: skip
    parser.add_argument("--trl-python", type=Path, default=Path("/work/venv-trl/bin/python"))
    parser.add_argument("--svpo", type=Path, default=Path(sys.executable).with_name("svpo"))
    parser.add_argument("--model-dir", type=Path, default=None, help="default: ensure_smollm2()")
    parser.add_argument("--data-dir", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--trl-gradient-checkpointing", action="store_true",
                        help="TRL's DPOConfig default (on); off unless given")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)

    # The policy both sides start from: SmolLM2 as an svpo checkpoint (a plain HF folder plus a
    # fresh value head and svpo.json, which `svpo train` needs); TRL loads the same folder.
    ckpt = args.work / "ckpt"
    if not (ckpt / "svpo.json").is_file():
        from svpo_harness.engines.smollm2 import ensure_smollm2

        base = args.model_dir or ensure_smollm2()
        init = [str(args.svpo), "value-head", "init", "--model", str(base), "--out", str(ckpt)]
        subprocess.run([*init, "--seed", str(args.seed), "--force"], check=True)
    data = build_data(ckpt, args.data_dir / "gsm8k" / "test.jsonl", args.n, args.seed,
                      args.max_length)  # fmt: skip
    write_jsonl(args.work / "pairs.jsonl", data["ours"])
    write_jsonl(args.work / "trl_pairs.jsonl", data["trl"])
    print(f"data: {json.dumps(data['info'])}", flush=True)

    text_check = None
    if "trl" in args.sides:  # would TRL's own tokenization of the text give our ids?
        check = trl_cmd(args, ckpt, args.work / "out-check", "live") + ["--check-text"]
        text_check = run_child(check, args.work / "trl-text-check.log", args.threads)
        print(f"TRL tokenizing the text: {json.dumps(text_check.get('report', text_check))}")
    runs: list[dict[str, Any]] = []
    for ref in args.refs:
        for side in args.sides:
            out = args.work / f"out-{side}-{ref}"
            if side == "trl":
                cmd = trl_cmd(args, ckpt, out, ref)
            else:
                cmd = ours_cmd(args, ckpt, out, ref, pack=side == "ours-pack")
            print(f"== {ref} / {side}", flush=True)
            run = run_child(cmd, args.work / f"{side}-{ref}.log", args.threads)
            run = summarize({"ref": ref, "side": side, **run}, args.batch_size)
            runs.append(run)
            if "error" in run:
                print(f"   failed (rc {run['rc']}), log {run['log']}:\n{run['error']}", flush=True)
            else:
                print(f"   {run.get('pairs_per_s', 0):.2f} pairs/s, "
                      f"peak RSS {run['peak_rss_mib']:.0f} MiB", flush=True)  # fmt: skip
    print(table(runs))
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        payload = {"settings": settings, "data": data["info"], "text_check": text_check}
        payload["runs"] = runs
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if all("error" not in r for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
