"""The one config of `svpo train`: CLI flags and YAML keys have the same names as these fields.

Defaults come from method.md section 5 (beta 0.1, lambda_rank 1.0, lambda_mse 0.1, hinge margin
0.1). Rules across fields are checked here, before any weights load (torchtune's "check first").
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

Objective = Literal["sft", "rft", "dpo", "svpo", "alphamath", "value"]
# value: the value head alone (lambda_rank x L_rank + lambda_mse x L_mse) on a frozen policy
OBJECTIVES: tuple[str, ...] = ("sft", "rft", "dpo", "svpo", "alphamath", "value")


@dataclass
class TrainConfig:
    # -- what to train ---------------------------------------------------------------------------
    objective: Objective = "sft"
    model: str = ""  # base: a checkpoint folder, a plain HF folder or a hub id
    data: str = "arith"  # a JSONL file of records, or "arith" (the built-in world's train split)
    out: str = ""  # the final checkpoint folder; resumable steps go to <out>.run/step_N
    step_format: str | None = None  # default: the base checkpoint's recorded format
    arith_n: int = 20000  # problems taken from the arithmetic train split when data == "arith"
    # -- policy parameters: LoRA by default, --full for all weights (objective value: neither,
    # the policy is frozen and --full is refused) ---------------------------------------------
    full: bool = False
    lora_r: int = 16
    lora_alpha: int | None = None  # default 2 * lora_r
    lora_dropout: float = 0.05
    # -- optimisation ----------------------------------------------------------------------------
    lr: float = 2e-4
    # the value head's own learning rate (default: lr). The head is a fresh linear layer that
    # may want more than the policy tolerates: at lr 1e-3 for both, greedy accuracy collapsed
    # while the value ranking rose (BENCHMARKS.md section 8).
    value_head_lr: float | None = None
    value_head_dropout: float | None = None  # default: the head's own (0.1, method.md section 5)
    epochs: int = 1
    max_steps: int | None = None  # optimizer steps; overrides epochs when set
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int = 512  # tokens per sequence (prompt + solution); longer ones are cut
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 0
    # -- DPO / SVPO (method.md section 5) --------------------------------------------------------
    beta: float = 0.1
    lambda_rank: float = 1.0
    lambda_mse: float = 0.1
    rank_loss: Literal["hinge", "logistic"] = "hinge"
    rank_margin: float = 0.1
    # -- speed and memory (issue 14) -------------------------------------------------------------
    # shared-prefix packing: a pair's prefix is forwarded once and both steps attend to it (one
    # packed row with a block attention mask); several examples share a row up to pack_length
    pack: bool = False
    # tokens per packed row (default: max_length); a packed example longer than that (a pair
    # is prefix + two steps, up to about 2 x max_length) gets a row of its own
    pack_length: int | None = None
    # reference log-probs computed once before training (no second model in memory) and cached
    # on disk under ref_cache, keyed by reference, tokenizer, max length, truncation and data;
    # off: the reference runs next to the policy (LoRA: adapter disabled; full: a frozen copy)
    precompute_ref: bool = True
    ref_cache: str | None = None  # default: $SVPO_CACHE or ~/.cache/svpo-harness, /ref-logps
    # -- model selection on held-out data (method.md section 7.2) ------------------------------
    # a dev split (arith:dev, NAME:SPLIT) or FILE.jsonl, disjoint from the training questions
    # and every evaluation set; evaluated at step 0 and every eval_every steps, the best step
    # (ties: the earlier) is the checkpoint written
    select_on: str | None = None
    eval_every: int = 25
    eval_limit: int | None = 100  # dev problems used (the first N)
    # greedy accuracy, or SBS(3,5) accuracy (a head is judged by the search it guides); auto:
    # sbs when this run trains a value head, else greedy
    select_metric: Literal["auto", "greedy", "sbs"] = "auto"
    # -- runtime -----------------------------------------------------------------------------
    device: str = "auto"
    dtype: Literal["float32", "bfloat16"] = "float32"
    save_every: int = 200  # optimizer steps between resumable checkpoints (0: only at the end)
    log_every: int = 10
    resume: bool = False
    keep_run: bool = False  # keep <out>.run/ after a successful run
    # preference objectives: start over in <out>.run/ instead of continuing the run there
    overwrite: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.objective not in OBJECTIVES:
            problems.append(f"objective must be one of {', '.join(OBJECTIVES)}")
        if not self.model:
            problems.append("model is required (a checkpoint folder, HF folder or hub id)")
        if not self.out:
            problems.append("out is required (the checkpoint folder to write)")
        for name in ("batch_size", "grad_accum", "epochs", "max_length", "lora_r", "arith_n"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.eval_every < 1 or (self.eval_limit is not None and self.eval_limit < 1):
            problems.append("eval_every and eval_limit must be >= 1")
        if self.select_metric not in ("auto", "greedy", "sbs"):
            problems.append("select_metric must be auto, greedy or sbs")
        if self.pack_length is not None and self.pack_length < self.max_length:
            problems.append("pack_length must be >= max_length")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append("max_steps must be >= 1")
        if self.lr <= 0 or self.beta <= 0:
            problems.append("lr and beta must be > 0")
        if self.value_head_lr is not None and self.value_head_lr <= 0:
            problems.append("value_head_lr must be > 0")
        if min(self.lambda_rank, self.lambda_mse, self.warmup_steps, self.save_every) < 0:
            problems.append("lambda_rank, lambda_mse, warmup_steps and save_every must be >= 0")
        if self.rank_loss not in ("hinge", "logistic"):
            problems.append("rank_loss must be hinge or logistic")
        if self.dtype not in ("float32", "bfloat16"):
            problems.append("dtype must be float32 or bfloat16")
        if not self.full and self.model and self.out and _same_path(self.model, self.out):
            problems.append(
                "out must differ from model (a LoRA adapter needs its parent; objective value "
                "writes a new checkpoint)"
            )
        if self.objective == "value":
            problems.extend(self._value_problems())
        if self.objective != "sft" and self.data == "arith":
            problems.append(f"objective {self.objective} needs annotation records (--data)")
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    def _value_problems(self) -> list[str]:
        """Settings that mean nothing when only the value head trains (one line each)."""
        problems = []
        if self.lambda_rank == 0 and self.lambda_mse == 0:
            problems.append(
                "objective value with lambda_rank 0 and lambda_mse 0 has nothing to train"
            )
        if self.full:
            problems.append(
                "objective value trains no policy weight (the policy is frozen and saved as "
                "loaded): leave out full / --full"
            )
        if self.select_on and self.select_metric == "greedy":
            problems.append(
                "objective value cannot change greedy decoding (the policy is frozen): select "
                "with select_metric sbs or auto"
            )
        return problems

    @property
    def run_dir(self) -> Path:
        """Where resumable step_N checkpoints live (next to the final checkpoint)."""
        out = Path(self.out)
        return out.with_name(out.name + ".run")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        return cls(**data)


def _same_path(a: str, b: str) -> bool:
    return os.path.abspath(os.path.expanduser(a)) == os.path.abspath(os.path.expanduser(b))
