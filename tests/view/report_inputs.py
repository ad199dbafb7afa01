"""A quickstart-sized set of lm-eval outputs, hand-made in lm-eval 0.4.13's layout: 6
checkpoints x 3 decodings on 8 arith problems (18 rows), the svpo-model rows with search logs
whose trees the report's viewer pages show."""

from __future__ import annotations

import json
import re
from pathlib import Path

from view_inputs import SEARCH, cand, search_record

DATE = "2026-12-07T10-00-00.000000"
GEN = {"until": ["\n\n", "Question:"], "max_gen_toks": 256, "do_sample": False}
CHECKPOINTS = ["base", "sft", "rft s0", "dpo s0", "alphamath s0", "svpo s0"]
DECODINGS = {  # label -> svpo model_args
    "greedy": {"decoding": "greedy"},
    "sbs-3-5": {"decoding": "sbs", "beam_width": 3, "samples_per_step": 5},
    "maj-5": {"decoding": "maj", "num_samples": 5},
}


def context(i: int) -> str:
    return f"Question: Tom has {i} cards and buys 4 more. How many now?\nAnswer:\n"


def correct(c: int, d: int) -> list[int]:
    """Problem i right for checkpoint c, decoding d: more right for later checkpoints."""
    return [int((i * 3 + c + d) % 8 < 2 + c) for i in range(8)]


def write_run(folder: Path, args: dict, ok: list[int], log: Path | None) -> Path:
    name = re.sub(r"[\"<>:/|\\?*\[\]]+", "__", str(args["pretrained"]))
    out = folder / name
    out.mkdir(parents=True)
    n, acc = len(ok), sum(ok) / len(ok)
    result = {"alias": "svpo_arith", "acc,none": acc, "acc_stderr,none": 0.1,
              "acc_flexible,none": acc, "acc_flexible_stderr,none": 0.1}  # fmt: skip
    data = {
        "results": {"svpo_arith": result}, "group_subtasks": {},
        "configs": {"svpo_arith": {"task": "svpo_arith", "generation_kwargs": GEN}},
        "n-samples": {"svpo_arith": {"original": 100, "effective": n}},
        "config": {"model": "svpo", "model_args": args, "batch_size": "8"},
        "model_name": str(args["pretrained"]), "total_evaluation_time_seconds": "12.5",
    }  # fmt: skip
    path = out / f"results_{DATE}.json"
    path.write_text(json.dumps(data))
    with (out / f"samples_svpo_arith_{DATE}.jsonl").open("w") as fh:
        for i, right in enumerate(ok):
            resp = f"So {i} + 4 = {i + 4}.\nThe answer is {i + 4 if right else i + 5}."
            doc = {"question_id": f"arith-test-{i:05d}", "question": context(i)[10:-9]}
            record = {
                "doc_id": i, "doc": doc, "target": str(i + 4), "filter": "none",
                "arguments": {"gen_args_0": {"arg_0": context(i), "arg_1": GEN}},
                "resps": [[resp]], "filtered_resps": [resp], "acc": float(right),
                "acc_flexible": float(right), "doc_hash": f"h{i}",
            }  # fmt: skip
            fh.write(json.dumps(record) + "\n")
    if log is not None:
        with log.open("w") as fh:
            for i in range(8):
                tree = SEARCH if i == 3 else [cand(1, 0, 1, f"The answer is {i}.", 0.1, "finished")]
                record = search_record(i, 5 if i == 3 else 1, True, tree)
                fh.write(json.dumps(record) + "\n")
    return path


def quickstart_outputs(root: Path, tokenizer: Path) -> list[str]:
    """``LABEL=PATH`` arguments of `svpo report` for the 18 runs (every svpo row: tokenizer
    ``tokenizer``, the shipped demo model)."""
    specs = []
    for c, checkpoint in enumerate(CHECKPOINTS):
        model = root / "models" / checkpoint.replace(" ", "-")
        model.mkdir(parents=True)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            if (tokenizer / name).is_file():
                (model / name).write_bytes((tokenizer / name).read_bytes())
        for d, (label, decoding) in enumerate(DECODINGS.items()):
            folder = root / "evals" / f"{checkpoint.replace(' ', '-')}-{label}"
            folder.mkdir(parents=True)
            log = folder / "search_log.jsonl" if label == "sbs-3-5" else None
            args = {"pretrained": str(model), **decoding}
            if log is not None:
                args["search_log"] = str(log)
            write_run(folder, args, correct(c, d), log)
            specs.append(f"{checkpoint} {label}={folder}")
    return specs
