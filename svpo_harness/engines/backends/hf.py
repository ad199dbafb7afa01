"""``HFStepPolicy``: the StepPolicy protocol on a transformers causal LM + optional value head.

Search and annotation talk only to ``svpo_harness.core.policy.StepPolicy``; this is its
transformers implementation (the sampling loop itself is in ``hf_sampling``, the batched forwards
in ``hf_forward``). States are token ids, never re-encoded text (method.md section 2.1).

Prompt ids (``encode_prompt``), explicitly:
- plain prompts: ``encode(prompt, add_special_tokens=False)``, then BOS prepended when
  ``add_bos`` says so. ``add_bos="auto"`` follows the tokenizer's own convention: BOS is added iff
  ``encode("x")`` with special tokens starts with the BOS id (Llama-2/3 style tokenizers do;
  GPT-2, Qwen and SmolLM2 add none). EOS is never added to a prompt.
- chat prompts (``apply_chat_template=True``): the prompt becomes one user message rendered with
  ``add_generation_prompt=True``, then ``encode(rendered, add_special_tokens=False)``: the chat
  template writes its own BOS when the model wants one, so none is added on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from svpo_harness.core.policy import StepRequest, StepSample
from svpo_harness.core.step_format import StepFormat, get_step_format
from svpo_harness.engines.backends.hf_forward import DEFAULT_MAX_FORWARD_TOKENS, state_values
from svpo_harness.engines.backends.hf_prefill import supports_prefix_cache
from svpo_harness.engines.backends.hf_prefix_cache import DEFAULT_PREFIX_CACHE_MB, PrefixKVCache
from svpo_harness.engines.backends.hf_sampling import LoopSpec, sample_batch
from svpo_harness.engines.tokenization import continuation_ids
from svpo_harness.engines.tokenization import delimiter_ids as canonical_delimiter_ids
from svpo_harness.engines.value_head import ValueHead

DEFAULT_MAX_BATCH_ROWS = 256  # sampled rows per loop
# Rows x (longest state + step cap) per loop: bounds the loop's KV cache (each row holds its own
# copy of its state's KV), so a 75-row SBS(3,5) level runs as one loop where memory allows.
DEFAULT_MAX_LOOP_TOKENS = 65536


def eos_ids(tokenizer: Any, model: Any) -> frozenset[int]:
    """EOS ids from the tokenizer and the generation config (chat models often list several)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif gen_eos:
        ids.update(int(i) for i in gen_eos)
    return frozenset(ids)


class HFStepPolicy:
    """StepPolicy on a transformers causal LM (fp32 or bf16, CPU or CUDA), inference only."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        step_format: StepFormat | str = "cot",
        value_head: ValueHead | None = None,
        *,
        apply_chat_template: bool = False,
        chat_template: str | None = None,
        add_bos: bool | Literal["auto"] = "auto",
        eos_token_ids: Sequence[int] | None = None,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        max_loop_tokens: int = DEFAULT_MAX_LOOP_TOKENS,
        max_forward_tokens: int = DEFAULT_MAX_FORWARD_TOKENS,
        prefix_cache: bool = True,
        prefix_cache_mb: float = DEFAULT_PREFIX_CACHE_MB,
    ) -> None:
        """``eos_token_ids`` overrides the EOS ids (default: tokenizer + generation config).

        Memory: one sampling loop holds at most ``max_batch_rows`` rows and ``max_loop_tokens``
        rows x (longest state + step cap) (requests are split between loops, never a request's
        samples); ``max_forward_tokens`` caps the padded tokens of one forward without a cache
        (value reads of whole states, rescoring of re-tokenized steps).

        ``prefix_cache``: keep states' KV across calls (at most ``prefix_cache_mb`` MB, least
        recently used first out) so a call prefills only what it has not computed before; off,
        or for models whose cache is not a plain KV per layer (sliding window, recurrent
        layers), every call prefills its states from the prompt. Results are the same either
        way.
        """
        for name, value in (
            ("max_batch_rows", max_batch_rows),
            ("max_loop_tokens", max_loop_tokens),
            ("max_forward_tokens", max_forward_tokens),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if prefix_cache_mb < 0:
            raise ValueError(f"prefix_cache_mb must be >= 0, got {prefix_cache_mb}")
        self.model = model.eval()  # dropout off: sampled log-probs are the policy's own
        self.tokenizer = tokenizer
        self.step_format = get_step_format(step_format)
        self.device = next(model.parameters()).device
        self.value_head = value_head.to(self.device).eval() if value_head is not None else None
        self.apply_chat_template = apply_chat_template
        self.chat_template = chat_template
        self.max_batch_rows = max_batch_rows
        self.max_loop_tokens = max_loop_tokens
        self.prefix_cache: PrefixKVCache | None = None
        if prefix_cache and supports_prefix_cache(model):
            self.prefix_cache = PrefixKVCache(int(prefix_cache_mb * 2**20))
        # prefill tokens computed (real, and with padding) over this policy's calls
        self.stats: dict[str, int] = {"prefill_tokens": 0, "prefill_padded": 0}
        self.add_bos = self._resolve_add_bos(add_bos)
        eos = frozenset(eos_token_ids) if eos_token_ids is not None else eos_ids(tokenizer, model)
        # Where it ends a step, not at a sequence start: no SentencePiece "▁" in front.
        delimiter_ids = canonical_delimiter_ids(tokenizer, self.step_format.delimiter)
        if not delimiter_ids:
            raise ValueError(f"the delimiter {self.step_format.delimiter!r} encodes to no tokens")
        pad = tokenizer.pad_token_id
        pad = pad if pad is not None else (min(eos) if eos else 0)  # masked out, any id works
        self._spec = LoopSpec(
            delimiter=self.step_format.delimiter,
            delimiter_ids=delimiter_ids,
            eos_ids=eos,
            pad_id=int(pad),
            decode=self.decode,
            retokenize=lambda context, text: continuation_ids(tokenizer, context, text),
            max_forward_tokens=max_forward_tokens,
            also_ends=self.step_format.step_ends[1:],
        )
        self._fingerprint: str | None = None

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        value_head: str | Path | None = None,
        step_format: str | StepFormat | None = None,
        peft: Any = None,
        apply_chat_template: bool | None = None,
        **kwargs: Any,
    ) -> HFStepPolicy:
        """Load through ``engines.checkpoint.load_checkpoint`` (the one loader).

        ``device="auto"`` uses CUDA when present, else CPU. ``apply_chat_template=None`` applies
        the chat template recorded in svpo.json, if any.
        """
        from svpo_harness.engines.checkpoint import load_checkpoint

        loaded = load_checkpoint(
            path,
            device=device,
            dtype=dtype,
            peft=peft,
            value_head=value_head,
            step_format=step_format,
        )
        chat = loaded.meta.chat_template
        return cls(
            loaded.model,
            loaded.tokenizer,
            loaded.step_format,
            loaded.value_head,
            apply_chat_template=chat is not None
            if apply_chat_template is None
            else apply_chat_template,
            chat_template=chat,
            **kwargs,
        )

    # -- protocol ------------------------------------------------------------------------------
    @property
    def has_value_head(self) -> bool:
        return self.value_head is not None

    @property
    def tokenizer_fingerprint(self) -> str:
        """The fingerprint that trees record next to the stored ids (method.md section 2.1)."""
        if self._fingerprint is None:
            from svpo_harness.engines.checkpoint import tokenizer_fingerprint

            self._fingerprint = tokenizer_fingerprint(self.tokenizer)
        return self._fingerprint

    def encode_prompt(self, question: str) -> tuple[int, ...]:
        """Prompt ids for ``question`` (see the module docstring for the BOS/chat rules)."""
        text = self.step_format.prompt(question)
        if self.apply_chat_template:
            rendered = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}],
                tokenize=False,
                add_generation_prompt=True,
                chat_template=self.chat_template,
            )
            return tuple(self.tokenizer.encode(rendered, add_special_tokens=False))
        ids = list(self.tokenizer.encode(text, add_special_tokens=False))
        bos = self.tokenizer.bos_token_id
        if self.add_bos and bos is not None and ids[:1] != [bos]:
            ids.insert(0, bos)
        return tuple(ids)

    def decode(self, token_ids: Sequence[int]) -> str:
        """Lossless decode: special tokens kept, no clean-up of spaces."""
        return self.tokenizer.decode(
            list(token_ids), skip_special_tokens=False, clean_up_tokenization_spaces=False
        )

    def encode_continuation(self, context_ids: Sequence[int], text: str) -> tuple[int, ...]:
        """Ids of ``text`` where it follows the stored ``context_ids`` (method.md 2.1); used to
        insert a tool's output after a sampled step (core.tool_policy)."""
        return tuple(continuation_ids(self.tokenizer, context_ids, text))

    @torch.inference_mode()
    def sample_steps(
        self, requests: Sequence[StepRequest], *, with_values: bool = True
    ) -> list[list[StepSample]]:
        """``request.n`` next steps per request, batched; values only with a head.

        Requests are sorted by state length (less padding) and packed into loops within
        ``max_batch_rows`` and ``max_loop_tokens``; results come back in request order. A row's
        result does not depend on the packing or on the prefix cache (per-row seeds, explicit
        positions, masked padding).
        """
        for req in requests:
            if not req.state_ids:
                raise ValueError("a StepRequest needs non-empty state_ids (at least the prompt)")
        results: list[list[StepSample] | None] = [None] * len(requests)
        for chunk in self._loops(requests):
            out = sample_batch(
                self.model,
                self.value_head,
                [requests[k] for k in chunk],
                self._spec,
                self.device,
                with_values=with_values,
                store=self.prefix_cache,
                stats=self.stats,
            )
            for k, samples in zip(chunk, out, strict=True):
                results[k] = samples
        return [r for r in results if r is not None]

    def _loops(self, requests: Sequence[StepRequest]) -> list[list[int]]:
        """Request indices per sampling loop: shortest states first, each loop within the row
        and token bounds (a request that alone exceeds them gets a loop of its own)."""
        order = sorted(range(len(requests)), key=lambda i: len(requests[i].state_ids))
        loops: list[list[int]] = []
        rows = width = 0
        for i in order:
            req = requests[i]
            new_width = max(width, len(req.state_ids) + req.max_step_tokens)
            fits = (
                rows + req.n <= self.max_batch_rows
                and (rows + req.n) * new_width <= self.max_loop_tokens
            )
            if loops and fits:
                loops[-1].append(i)
                rows, width = rows + req.n, new_width
            else:
                loops.append([i])
                rows, width = req.n, len(req.state_ids) + req.max_step_tokens
        return loops

    def clear_prefix_cache(self) -> None:
        """Forget every cached prefix (e.g. between unrelated workloads)."""
        if self.prefix_cache is not None:
            self.prefix_cache.clear()

    @torch.inference_mode()
    def values(self, states: Sequence[Sequence[int]]) -> list[float]:
        """Value at the last token of each whole state: forwards of at most
        ``max_forward_tokens`` padded tokens that keep only the final layer."""
        if self.value_head is None:
            raise RuntimeError(
                "this policy has no value head; load a checkpoint with one, or create one with "
                "`svpo value-head init`"
            )
        return state_values(
            self.model,
            self.value_head,
            states,
            self._spec.pad_id,
            self.device,
            max_tokens=self._spec.max_forward_tokens,
        )

    # -- helpers -------------------------------------------------------------------------------
    def _resolve_add_bos(self, add_bos: bool | Literal["auto"]) -> bool:
        if add_bos != "auto":
            return bool(add_bos)
        bos = self.tokenizer.bos_token_id
        return bos is not None and self.tokenizer.encode("x", add_special_tokens=True)[:1] == [bos]
