"""Where ``--model svpo`` puts its model, and which HFLM loading arguments it honours.

HFLM places a model itself only when it loads it from a name. ``--model svpo`` hands HFLM a model
loaded by the one checkpoint loader (LoRA merge, value head, step format), so the decisions HFLM
would take are taken here (issue 10 items 2 and 3):

- no ``--device`` (lm-eval 0.4.13's default is None): CUDA when present, else the CPU, silently;
  ``cuda`` asked for without CUDA: a warning, then the CPU;
- weights load straight onto that device in the checkpoint's dtype (``load_checkpoint``);
- ``parallelize=True`` or ``device_map=...``: accelerate's device map spreads a model larger than
  one GPU (``max_memory_per_gpu``, ``max_cpu_memory``, ``offload_folder`` apply there);
- under ``accelerate launch``/``torchrun`` with several processes, each rank loads onto its own
  device and lm-eval gives it its share of the requests (rank, world size, accelerator);
- HFLM arguments that cannot apply to a preloaded model are rejected by name, never dropped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch

log = logging.getLogger("svpo_harness.lm_eval")

# Keyword arguments lm-eval forwards to from_pretrained that are not in HFLM's own signature.
FROM_PRETRAINED_ARGS = ("attn_implementation", "device_map")
# HFLM arguments HFLM applies only when it loads the model itself: why svpo cannot honour them.
UNSUPPORTED = {
    "tokenizer": "svpo uses the checkpoint's own tokenizer (its step format and value head were "
    "trained with it)",
    "subfolder": "pass the subfolder's path as pretrained=",
    "delta": "merge the delta weights into a checkpoint first and pass that as pretrained=",
    "autogptq": "GPTQ checkpoints are not supported by --model svpo",
    "gptqmodel": "GPTQ checkpoints are not supported by --model svpo",
    "gguf_file": "convert the GGUF file to a HF folder first",
    "tp_plan": "tensor parallelism is not supported; use parallelize=True (device_map) for a "
    "model larger than one GPU, or accelerate launch for one replica per GPU",
}
# Only meaningful with a device map (parallelize=True or device_map=...).
MAP_ONLY = ("max_memory_per_gpu", "max_cpu_memory", "offload_folder")
# Environment variables that say "one of several processes" (torchrun/accelerate, MPI).
WORLD_SIZE_ENV = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


@dataclass
class Placement:
    """Where the model goes and which share of the requests this process takes."""

    device: torch.device
    device_map: str | dict | None = None  # None: the whole model on `device`
    map_kwargs: dict[str, Any] = field(default_factory=dict)  # max_memory, offload_folder
    accelerator: Any = None  # set only when several processes share the evaluation
    rank: int = 0
    world_size: int = 1


def default_device(device: str | torch.device | None) -> torch.device:
    """None/"auto": CUDA when present, else the CPU (no warning: nothing was asked for).

    ``cuda`` asked for on a machine without CUDA: a warning, then the CPU.
    """
    if device is None or str(device) in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        log.warning(
            "svpo: device %r was asked for but CUDA is not available; using the CPU", device
        )
        return torch.device("cpu")
    return chosen


def launched_world_size() -> int:
    """How many processes the launcher started (1 for a plain ``lm_eval`` call)."""
    for name in WORLD_SIZE_ENV:
        value = os.environ.get(name)
        if value and value.isdigit():
            return int(value)
    return 1


def check_unsupported(kwargs: dict[str, Any]) -> None:
    """Refuse, by name, HFLM arguments that would otherwise be ignored for a preloaded model."""
    for name, why in UNSUPPORTED.items():
        if kwargs.get(name) not in (None, False, ""):
            raise ValueError(f"svpo model_args: {name}={kwargs[name]!r} is not supported: {why}")


def plan_placement(kwargs: dict[str, Any]) -> Placement:
    """Pop the placement arguments from HFLM's ``kwargs`` and decide where the model goes."""
    given_device = kwargs.pop("device", None)
    parallelize = str(kwargs.pop("parallelize", False)).lower() in ("true", "1")
    device_map = kwargs.pop("device_map", None)
    if parallelize and device_map is None:
        device_map = "auto"  # as HFLM: accelerate spreads the model over the visible GPUs
    map_args = {name: kwargs.pop(name) for name in MAP_ONLY if kwargs.get(name) is not None}
    if map_args and device_map is None:
        names = ", ".join(sorted(map_args))
        raise ValueError(
            f"svpo model_args: {names} only apply with parallelize=True (or device_map=...)"
        )
    device = default_device(given_device)
    placement = Placement(device=device, device_map=device_map)
    if launched_world_size() > 1:
        _join_the_ranks(placement, given_device)
    if device_map is not None:
        placement.map_kwargs = _map_kwargs(map_args, placement)
    return placement


def _join_the_ranks(placement: Placement, given_device: Any) -> None:
    """Several processes: each takes its own device and its share of the requests, as HFLM does.

    The process group is gloo when the ranks run on the CPU (the accelerator's ``cpu`` flag),
    NCCL on GPUs; the long timeout lets finished ranks wait for slower searches at the barrier.
    """
    from accelerate import Accelerator, InitProcessGroupKwargs

    on_cpu = placement.device.type == "cpu"
    accelerator = Accelerator(
        cpu=on_cpu, kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(weeks=52))]
    )
    if accelerator.num_processes <= 1:
        return
    own = torch.device("cpu") if on_cpu else accelerator.device
    if given_device not in (None, "", "auto", "cuda", "cpu") and torch.device(given_device) != own:
        log.warning(
            "svpo: under accelerate launch each process uses its own device: %s, not device=%s",
            own,
            given_device,
        )
    placement.device = own
    placement.accelerator = accelerator
    placement.rank = accelerator.process_index
    placement.world_size = accelerator.num_processes


def _map_kwargs(map_args: dict[str, Any], placement: Placement) -> dict[str, Any]:
    """from_pretrained's max_memory/offload_folder for a device map; a rank keeps to its GPUs."""
    out: dict[str, Any] = {"offload_folder": map_args.get("offload_folder", "./offload")}
    memory: dict[int | str, Any] = {}
    if placement.device.type == "cuda":
        from accelerate.utils import get_max_memory

        # Under accelerate launch, rank r of n on a node takes GPUs r, r+n, ... (as HFLM does).
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", placement.world_size))
        local_rank = placement.accelerator.local_process_index if placement.accelerator else 0
        per_gpu = map_args.get("max_memory_per_gpu")
        free = {k: v for k, v in get_max_memory().items() if k != "cpu"}
        memory = {
            i: per_gpu if per_gpu is not None else free[i]
            for i in sorted(free)
            if i % local_world == local_rank
        }
    if map_args.get("max_cpu_memory") is not None:
        memory["cpu"] = map_args["max_cpu_memory"]
    if memory:
        out["max_memory"] = memory
    return out


def loader_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """HFLM's loading arguments as ``load_checkpoint`` keywords (``revision`` stays in ``kwargs``
    as well: HFLM records it in the results' model info)."""
    out: dict[str, Any] = {
        "revision": kwargs.get("revision"),
        "trust_remote_code": str(kwargs.pop("trust_remote_code", False)).lower() in ("true", "1"),
    }
    attn = kwargs.pop("attn_implementation", None)
    out["model_kwargs"] = {"attn_implementation": attn} if attn is not None else {}
    if "use_fast_tokenizer" in kwargs:
        use_fast = str(kwargs.pop("use_fast_tokenizer")).lower() in ("true", "1")
        out["tokenizer_kwargs"] = {"use_fast": use_fast}
    return out


def without_padding(requests: list) -> tuple[list, list[int]]:
    """Drop lm-eval's padding of a rank's requests; return the rest and where each answer goes.

    With several ranks, lm-eval pads a rank that has fewer documents by repeating its last
    request (DDP needs even batches). A request object appears ``repeats`` times on purpose;
    further copies are padding. The search has no collective ops, so padding is answered with
    the copy's answer instead of being searched again.
    """
    kept: list = []
    where: list[int] = []
    seen: dict[int, list[int]] = {}
    for req in requests:
        positions = seen.setdefault(id(req), [])
        if len(positions) < max(1, int(getattr(req, "repeats", 1) or 1)):
            positions.append(len(kept))
            kept.append(req)
        where.append(positions[-1])
    return kept, where


class _DropPreloadedModelWarnings(logging.Filter):
    """HFLM warns that a preloaded model means one process: not so here, svpo sets the ranks."""

    TEXTS = ("`pretrained` model kwarg is not of type `str`", "Passed an already-initialized model")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.TEXTS)


@contextmanager
def quiet_preloaded_model_warnings() -> Iterator[None]:
    """Around ``HFLM.__init__``: drop its warnings about a preloaded model meaning one process."""
    logger = logging.getLogger("lm_eval.models.huggingface")
    drop = _DropPreloadedModelWarnings()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)
