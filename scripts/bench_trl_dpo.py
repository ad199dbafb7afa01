"""TRL's DPOTrainer on pre-tokenized step pairs: the TRL side of scripts/bench_vs_trl.py.

Runs in the TRL venv (scripts/bench_trl_venv.sh), one process per measurement, started by
bench_vs_trl.py; prints one JSON line: the training loop's wall time (first step begin to last
step end, from a callback: model load, data prep and reference precompute are outside it), the
steps, the final loss and TRL's own train metrics.

TRL 1.16 has no pre-tokenized input: ``DPOTrainer._prepare_dataset`` always tokenizes the
``prompt``/``chosen``/``rejected`` text (and appends EOS to both completions). The subclass below
replaces only that method, so the trainer gets exactly our ids (``prompt_ids``, ``chosen_ids``,
``rejected_ids``, the columns its collator reads); the training loop, collator, loss, reference
handling and fused log-prob head are TRL's own. ``--check-text`` (no training) runs TRL's own
tokenization on the text of the same pairs and reports how its ids compare with ours.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")

ID_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids")


def load_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def check_text(trainer_cls: Any, rows: list[dict[str, Any]], tokenizer: Any, config: Any) -> dict:
    """TRL's own tokenization of the pairs' text against our ids (no training)."""
    from datasets import Dataset

    text = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    # _prepare_dataset reads only self._tokenizer (the EOS it appends); no model is needed.
    probe = trainer_cls.__new__(trainer_cls)
    probe._tokenizer = tokenizer
    out = trainer_cls._prepare_dataset(probe, text, tokenizer, config, "check")
    eos = tokenizer.eos_token_id
    same = {"prompt_ids": 0, "chosen_ids": 0, "rejected_ids": 0, "all_but_eos": 0}
    for ours, theirs in zip(rows, out, strict=True):
        for key in ID_COLUMNS:
            same[key] += ours[key] == theirs[key]
        same["all_but_eos"] += (
            ours["prompt_ids"] == theirs["prompt_ids"]
            and ours["chosen_ids"] + [eos] == theirs["chosen_ids"]
            and ours["rejected_ids"] + [eos] == theirs["rejected_ids"]
        )
    return {"pairs": len(rows), "kept": len(out), "identical": same}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="HF model folder (same weights as ours)")
    parser.add_argument("--data", type=Path, required=True, help="JSONL with the id columns")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precompute-ref", action="store_true")
    parser.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="TRL's config default is on; off unless given (ours recomputes nothing)",
    )
    parser.add_argument(
        "--check-text", action="store_true", help="only compare TRL's tokenization with our ids"
    )
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    class PreTokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer that takes ``prompt_ids``/``chosen_ids``/``rejected_ids`` as given."""

        def _prepare_dataset(self, dataset: Any, processing_class: Any, args: Any, name: str):
            missing = [c for c in ID_COLUMNS if c not in dataset.column_names]
            if missing:
                raise ValueError(f"{name} dataset lacks {missing}")
            return dataset.select_columns(list(ID_COLUMNS))

    class LoopTimer(TrainerCallback):
        """Wall time of the training loop and of each optimizer step."""

        def __init__(self) -> None:
            self.begin = self.end = self.step_start = 0.0
            self.steps: list[float] = []

        def on_train_begin(self, *_: Any, **__: Any) -> None:
            self.begin = time.perf_counter()

        def on_step_begin(self, *_: Any, **__: Any) -> None:
            self.step_start = time.perf_counter()

        def on_step_end(self, *_: Any, **__: Any) -> None:
            self.steps.append(time.perf_counter() - self.step_start)

        def on_train_end(self, *_: Any, **__: Any) -> None:
            self.end = time.perf_counter()

    rows = load_rows(args.data)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    config = DPOConfig(
        output_dir=str(args.out),
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        max_steps=args.steps,
        max_length=args.max_length,
        learning_rate=args.lr,
        beta=args.beta,
        loss_type=["sigmoid"],
        precompute_ref_log_probs=args.precompute_ref,
        # TRL defaults this to on (transformers 5 names it activation_checkpointing)
        activation_checkpointing=args.gradient_checkpointing,
        bf16=False,
        fp16=False,
        use_cpu=True,
        seed=args.seed,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_steps=1,  # per-step loss, as ours reports it
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    report: dict[str, Any] = {"trl": trl.__version__, "torch": torch.__version__}
    if args.check_text:  # TRL's own tokenization of the text only: no model, no training
        print(json.dumps({**report, "text_check": check_text(DPOTrainer, rows, tokenizer, config)}))
        return 0

    longest = max(
        len(r["prompt_ids"]) + max(len(r["chosen_ids"]), len(r["rejected_ids"])) for r in rows
    )
    if longest > args.max_length:
        sys.exit(f"a pair is {longest} ids, over --max-length {args.max_length} (would truncate)")
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    peft_config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=0.0,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    timer = LoopTimer()
    setup = time.perf_counter()
    trainer = PreTokenizedDPOTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list([{k: r[k] for k in ID_COLUMNS} for r in rows]),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[timer],
    )
    report["setup_seconds"] = time.perf_counter() - setup  # includes the ref precompute
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    report.update(
        steps=trainer.state.global_step,
        seconds=timer.end - timer.begin,
        step_seconds=timer.steps,
        final_loss=losses[-1] if losses else None,
        metrics=result.metrics,
        trainable_params=sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        activation_checkpointing=bool(getattr(trainer.model, "is_gradient_checkpointing", False)),
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
