"""`lm_eval --model svpo --model_args pretrained=CKPT,backend=vllm,...`: the vLLM variant.

``SVPOVLLM`` *is* lm-eval's ``VLLM`` model (log-likelihoods, chat templates and its engine
arguments are inherited: ``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``,
``enforce_eager``...); only ``generate_until`` is replaced by the same step search as the HF
variant (``SVPOLM.generate_until`` -> ``lm_eval_search.generate_with_search``), on a
``VLLMStepPolicy`` that samples on lm-eval's own engine. With a value head a second, pooling
engine reads values (``engines.backends.vllm_engines``); ``value_gpu_memory_utilization`` sizes
it. lm-eval's ``VLLM`` imports vLLM at import time: without vLLM this module does not import, and
``SVPOLM`` turns that into one line.

The weights vLLM loads are ``vllm_model_dir(pretrained)``: the checkpoint without its value
head file (vLLM would try to load it as model weights), a LoRA checkpoint merged first.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from lm_eval.models.vllm_causallms import VLLM

from svpo_harness.engines.backends.vllm import VLLMStepPolicy, eos_ids_of
from svpo_harness.engines.backends.vllm_engines import VLLMSettings, vllm_model_dir
from svpo_harness.lm_eval_model import DECODINGS, SEARCH_ARGS, SVPOLM, _flag, log


class SVPOVLLM(VLLM):
    """vLLM backend of ``--model svpo``: lm-eval's VLLM with ``generate_until`` = step search."""

    # The same search and warnings as the HF variant (not a copy).
    generate_until = SVPOLM.generate_until
    warn_once = SVPOLM.warn_once

    def __init__(self, pretrained: str, **kwargs: Any) -> None:
        from transformers import AutoConfig

        from svpo_harness.engines.checkpoint import load_head, meta_of

        if "value_head" in kwargs and (
            kwargs["value_head"] is None or str(kwargs["value_head"]).lower() == "none"
        ):
            kwargs["value_head"] = "none"  # lm-eval parses "none" to None: it means no head
        search = {name: kwargs.pop(name, default) for name, default in SEARCH_ARGS.items()}
        kwargs.pop("backend", None)
        if search["decoding"] not in DECODINGS:
            raise ValueError(
                f"decoding must be one of {', '.join(DECODINGS)}, got {search['decoding']!r}"
            )
        value_memory = float(kwargs.pop("value_gpu_memory_utilization", 0.3))
        # prefix_cache (the HF backend's KV store) maps to vLLM's automatic prefix caching.
        caching = _flag(search["prefix_cache"], "prefix_cache")
        kwargs.setdefault("enable_prefix_caching", caching)
        kwargs.setdefault("gpu_memory_utilization", 0.55)
        if str(kwargs.get("batch_size", 1)).startswith("auto"):
            raise ValueError(
                "--batch_size auto is not supported by --model svpo: the batch is the number of "
                "questions searched together; pass an integer (e.g. --batch_size 8)"
            )

        meta, _ = meta_of(str(pretrained))
        model_dir = vllm_model_dir(str(pretrained))
        super().__init__(pretrained=model_dir, **kwargs)
        holder = SimpleNamespace(config=AutoConfig.from_pretrained(model_dir))
        head = load_head(str(pretrained), meta, search["value_head"], holder, torch.device("cpu"))
        fmt = meta.step_format
        if search["step_format"]:
            from svpo_harness.core.step_format import get_step_format

            fmt = get_step_format(search["step_format"])
        if search["decoding"] in ("sbs", "bon", "mcts") and head is None:
            if search["value_head"] != "none":
                raise ValueError(
                    f"decoding={search['decoding']} ranks by a value head, and {pretrained} has "
                    "none: pass value_head=PATH, create one with `svpo value-head init`, or pass "
                    "value_head=none to rank by log-prob"
                )
            log.warning("svpo: value_head=none, candidates are ranked by mean log-prob")
        self.loaded = SimpleNamespace(step_format=fmt, value_head=head, meta=meta)
        self.search_args = search
        self.checkpoint_path = str(pretrained)
        self._warned: set[str] = set()
        args = self.model_args
        settings = VLLMSettings(
            tensor_parallel_size=int(args["tensor_parallel_size"]),
            dtype=str(args["dtype"]),
            max_model_len=args.get("max_model_len"),
            gpu_memory_utilization=float(args["gpu_memory_utilization"]),
            value_gpu_memory_utilization=value_memory,
            enable_prefix_caching=bool(args["enable_prefix_caching"]),
            enforce_eager=_flag(args.get("enforce_eager", False), "enforce_eager"),
            seed=int(args["seed"]),
            trust_remote_code=bool(args["trust_remote_code"]),
        )
        eos = eos_ids_of(self.tokenizer, model_dir) | {int(self.eot_token_id)}
        # lm_eval_search finds this policy instead of building an HF one.
        self._svpo_policy = VLLMStepPolicy(
            model_dir,
            self.tokenizer,
            fmt,
            head,
            settings=settings,
            apply_chat_template=False,  # lm-eval renders chat prompts itself
            eos_token_ids=sorted(eos),
            engine=self.model,
        )

    def tok_encode(  # type: ignore[override]
        self,
        string: str | list[str],
        left_truncate_len: int | None = None,
        add_special_tokens: bool | None = None,
        **kwargs: Any,
    ) -> list[int] | list[list[int]]:
        """lm-eval's VLLM encoding, left-truncated as HFLM's (lm_eval_search asks for it)."""
        ids = super().tok_encode(string, add_special_tokens=add_special_tokens, **kwargs)
        if left_truncate_len and isinstance(string, str):
            return ids[-left_truncate_len:]  # type: ignore[return-value]
        return ids

    def tok_decode(self, tokens: Any, skip_special_tokens: bool = True) -> str:
        if isinstance(tokens, int):
            tokens = [tokens]
        return self.tokenizer.decode(tokens, skip_special_tokens=skip_special_tokens)
