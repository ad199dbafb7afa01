"""What one `svpo annotate` run is: its settings (``AnnotateConfig``), its error, and the two
things every process that grows trees builds from them, the policy and the grader.

Shared by the driver (``annotate_run``) and the Ray actors (``annotate_ray``), which each load
their own policy; a module of its own so that neither imports the other for it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

# Flags that do not change what is written for a question (excluded from the manifest's
# settings): --limit only selects how many questions (first N; a larger limit extends a run).
NOT_SETTINGS = (
    "out", "overwrite", "device", "data_dir", "batch_size", "trees_in_flight", "grade_timeout",
    "limit", "ray", "workers", "gpus_per_worker",
)  # fmt: skip


class AnnotateError(ValueError):
    """A run that cannot start (bad settings, contamination under --strict): one clear line."""


@dataclass(frozen=True)
class AnnotateConfig:
    model: str
    data: str
    out: str
    simulations: int = 40
    children: int = 5
    c_puct: float = 1.5
    temperature: float = 0.6
    max_depth: int = 8
    max_step_tokens: int | None = None
    max_new_tokens: int | None = None
    trees_per_question: int = 1
    leaf_value: str = "auto"
    seed: int = 0
    backend: str = "hf"
    shard: str | None = None
    limit: int | None = None
    question_field: str | None = None
    answer_field: str | None = None
    data_dir: str | None = None
    batch_size: int = 64
    trees_in_flight: int = 16
    rule: str = "best_vs_rest"
    min_q_gap: float = 0.5
    min_visits: int = 2
    strict: bool = False
    overwrite: bool = False
    device: str = "auto"
    dtype: str = "auto"
    grade_timeout: float = 5.0
    ray: str | None = None  # ADDRESS | local: grow the trees on Ray actors (annotate_ray)
    workers: int | None = None
    gpus_per_worker: float | None = None

    def settings(self, leaf_value: str) -> dict[str, Any]:
        data = {k: v for k, v in dataclasses.asdict(self).items() if k not in NOT_SETTINGS}
        data["leaf_value"] = leaf_value  # resolved: "auto" depends on the checkpoint
        return data


def resolve_leaf_value(choice: str, model: str) -> str:
    """``auto``: ``head`` when the checkpoint's svpo.json says its head was trained (method.md
    section 3: a fresh head is noise), else ``zero``."""
    if choice != "auto":
        return choice
    from svpo_harness.engines.checkpoint_meta import read_meta

    meta = read_meta(model)
    trained = meta is not None and meta.value_head is not None
    trained = trained and bool(meta.training.get("value_head_trained"))  # type: ignore[union-attr]
    return "head" if trained else "zero"


def load_policy(cfg: AnnotateConfig) -> Any:
    if cfg.backend == "vllm":  # engine settings: VLLMSettings.from_env (docs/vllm.md)
        from svpo_harness.engines.backends.vllm_engines import VLLMMissingError, VLLMSettings

        try:
            from svpo_harness.engines.backends.vllm import VLLMStepPolicy

            settings = VLLMSettings.from_env(dtype=cfg.dtype, seed=cfg.seed)
            return VLLMStepPolicy.from_checkpoint(cfg.model, settings=settings)
        except VLLMMissingError as err:
            raise AnnotateError(f"--backend vllm: {err}") from None
    from svpo_harness.engines.backends.hf import HFStepPolicy

    return HFStepPolicy.from_checkpoint(cfg.model, device=cfg.device, dtype=cfg.dtype)


def grader(timeout: float):
    from svpo_harness.grading import grade_many

    return lambda items: grade_many(list(items), timeout=timeout)
