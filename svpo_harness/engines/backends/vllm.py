"""``VLLMStepPolicy``: the StepPolicy protocol on stock vLLM (no fork).

Sampling: one ``SamplingParams`` per request: ``n`` samples, the request's seed, stop at the step
delimiter (and the request's stop strings) with ``include_stop_str_in_output=True``, the EOS ids
as ``stop_token_ids``, ``max_tokens`` = the step cap, ``logprobs=0`` (the sampled token's raw,
temperature-1 log-prob: vLLM's default ``logprobs_mode="raw_logprobs"``). Prefix caching makes the
n samples and later calls on the same state prefill only new tokens.

The returned ids are then replayed through the transformers backend's own step rules
(``hf_sampling._advance``: EOS, delimiter cut and re-tokenization, stop strings across the state
boundary, token cap), so both backends end steps by the same code (method.md section 2.1). A
re-tokenized step's log-probs come from the generation engine's ``prompt_logprobs``.

Seeds (method.md section 3): vLLM gives sample ``j`` of a request with seed ``s`` the seed
``s + j`` (``vllm.v1.engine.parallel_sampling``); we pass ``s = derive_seed(request.seed,
"vllm")``, so sample j's stream depends only on ``(request.seed, j)``, never on the batch. The
streams differ from the HF backend's (another sampler): same seed, same samples holds per backend.
Greedy requests (temperature 0) are sampled once and copied ``n`` times.

Values: the pooling engine returns the final-norm hidden state at the last token of ``state +
step`` (``StepSample.ids_for_value``); the value head runs here, in fp32 (engines.vllm_engines).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from svpo_harness.core.policy import StepRequest, StepSample
from svpo_harness.core.seeding import derive_seed
from svpo_harness.core.step_format import StepFormat, get_step_format
from svpo_harness.engines.backends.hf import HFStepPolicy
from svpo_harness.engines.backends.hf_sampling import (
    DECODE_CONTEXT,
    LoopSpec,
    _advance,
    _Row,
    _to_sample,
)
from svpo_harness.engines.backends.vllm_engines import (
    VLLMSettings,
    generation_engine,
    require_vllm,
    value_engine,
    vllm_model_dir,
)
from svpo_harness.engines.tokenization import continuation_ids
from svpo_harness.engines.tokenization import delimiter_ids as canonical_delimiter_ids
from svpo_harness.engines.value_head import ValueHead

log = logging.getLogger("svpo_harness.vllm")


def eos_ids_of(tokenizer: Any, model_dir: str) -> frozenset[int]:
    """EOS ids of the tokenizer and of the model's generation config (as the HF backend)."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    try:
        from transformers import GenerationConfig

        gen_eos = GenerationConfig.from_pretrained(model_dir).eos_token_id
    except OSError:  # no generation_config.json
        gen_eos = None
    if isinstance(gen_eos, int):
        ids.add(gen_eos)
    elif gen_eos:
        ids.update(int(i) for i in gen_eos)
    return frozenset(ids)


class VLLMStepPolicy:
    """StepPolicy on a vLLM generation engine plus (with a head) a vLLM pooling engine."""

    # The prompt and decoding rules are the HF backend's own (same ids on both backends).
    encode_prompt = HFStepPolicy.encode_prompt
    decode = HFStepPolicy.decode
    # A tool's output after a sampled step (core.tool_policy): the same tokenizer rule as HF.
    encode_continuation = HFStepPolicy.encode_continuation
    tokenizer_fingerprint = HFStepPolicy.tokenizer_fingerprint
    _resolve_add_bos = HFStepPolicy._resolve_add_bos

    def __init__(
        self,
        model_dir: str,
        tokenizer: Any,
        step_format: StepFormat | str = "cot",
        value_head: ValueHead | None = None,
        *,
        settings: VLLMSettings | None = None,
        apply_chat_template: bool = False,
        chat_template: str | None = None,
        add_bos: bool | Literal["auto"] = "auto",
        eos_token_ids: Sequence[int] | None = None,
        engine: Any = None,
    ) -> None:
        """``model_dir``: a folder (or hub id) vLLM loads (``vllm_model_dir``). ``engine``: an
        existing generation ``vllm.LLM`` on those weights (lm-eval's), else one is built."""
        require_vllm()
        self.settings = settings or VLLMSettings()
        self.model_dir = model_dir
        self.tokenizer = tokenizer
        self.step_format = get_step_format(step_format)
        self.value_head = value_head.cpu().eval() if value_head is not None else None
        self.apply_chat_template = apply_chat_template
        self.chat_template = chat_template
        self.add_bos = self._resolve_add_bos(add_bos)
        eos = frozenset(eos_token_ids) if eos_token_ids is not None else None
        self.eos_ids = eos if eos is not None else eos_ids_of(tokenizer, model_dir)
        delimiter_ids = canonical_delimiter_ids(tokenizer, self.step_format.delimiter)
        if not delimiter_ids:
            raise ValueError(f"the delimiter {self.step_format.delimiter!r} encodes to no tokens")
        self._spec = LoopSpec(
            delimiter=self.step_format.delimiter,
            delimiter_ids=delimiter_ids,
            eos_ids=self.eos_ids,
            pad_id=0,  # never used: vLLM pads nothing
            decode=self.decode,
            retokenize=lambda context, text: continuation_ids(tokenizer, context, text),
            also_ends=self.step_format.step_ends[1:],  # tool steps: the code end
        )
        self.engine = engine if engine is not None else generation_engine(model_dir, self.settings)
        self._pooler: Any = None  # built on the first value read
        self._fingerprint: str | None = None
        self.stats: dict[str, int] = {"prefill_tokens": 0, "value_reads": 0}
        self._warned = False

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        value_head: str | Path | None = None,
        step_format: str | StepFormat | None = None,
        apply_chat_template: bool | None = None,
        settings: VLLMSettings | None = None,
        **kwargs: Any,
    ) -> VLLMStepPolicy:
        """The checkpoint's tokenizer, step format, chat template and head (the HF loader's
        rules: ``value_head=None`` the checkpoint's, ``"none"`` none, a path that head); the
        weights go to vLLM only (``vllm_model_dir``)."""
        require_vllm()
        from types import SimpleNamespace

        from transformers import AutoConfig, AutoTokenizer

        from svpo_harness.engines.checkpoint import load_head, meta_of

        spec = str(Path(path).expanduser()) if Path(path).expanduser().is_dir() else str(path)
        meta, _ = meta_of(spec)
        model_dir = vllm_model_dir(spec)
        tokenizer = AutoTokenizer.from_pretrained(spec)
        config = SimpleNamespace(config=AutoConfig.from_pretrained(model_dir))
        head = load_head(spec, meta, value_head, config, torch.device("cpu"))
        chat = meta.chat_template
        return cls(
            model_dir,
            tokenizer,
            step_format if step_format is not None else meta.step_format,
            head,
            settings=settings,
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

    def sample_steps(
        self, requests: Sequence[StepRequest], *, with_values: bool = True
    ) -> list[list[StepSample]]:
        """``request.n`` next steps per request, in request order (see the module docstring)."""
        from vllm import SamplingParams, TokensPrompt

        for req in requests:
            if not req.state_ids:
                raise ValueError("a StepRequest needs non-empty state_ids (at least the prompt)")
        if not requests:
            return []
        params = [
            SamplingParams(
                n=req.n if req.temperature > 0 else 1,
                temperature=req.temperature,
                seed=derive_seed(req.seed, "vllm") if req.temperature > 0 else None,
                max_tokens=req.max_step_tokens,
                stop=[*self.step_format.step_ends, *req.stop],
                include_stop_str_in_output=True,
                stop_token_ids=sorted(self.eos_ids),
                logprobs=0,
                skip_special_tokens=False,
                spaces_between_special_tokens=False,
            )
            for req in requests
        ]
        prompts = [TokensPrompt(prompt_token_ids=list(req.state_ids)) for req in requests]
        outputs = self.engine.generate(prompts, params, use_tqdm=False)
        rows: list[list[_Row]] = []
        seen: set[tuple[int, ...]] = set()
        for req, out in zip(requests, outputs, strict=True):
            state = tuple(req.state_ids)
            computed = len(state) - int(getattr(out, "num_cached_tokens", 0) or 0)
            completions = sorted(out.outputs, key=lambda c: c.index)
            if req.temperature == 0:
                completions = completions * req.n
            req_rows = [self._replay(req, c) for c in completions]
            if state not in seen:  # cost accounting: once per distinct state
                seen.add(state)
                req_rows[0].prefill_tokens = computed
                self.stats["prefill_tokens"] += computed
            rows.append(req_rows)
        flat = [(req, row) for req, rr in zip(requests, rows, strict=True) for row in rr]
        self._rescore(flat)
        if with_values and self.value_head is not None:
            states = [tuple(req.state_ids) + (row.value_ids or tuple(row.ids)) for req, row in flat]
            for (_, row), value in zip(flat, self.values(states), strict=True):
                row.value = value
        return [[_to_sample(row) for row in rr] for rr in rows]

    def values(self, states: Sequence[Sequence[int]]) -> list[float]:
        """Value at the last token of each whole state: pooling engine + our head."""
        if self.value_head is None:
            raise RuntimeError(
                "this policy has no value head; load a checkpoint with one, or create one with "
                "`svpo value-head init`"
            )
        if not states:
            return []
        from vllm import TokensPrompt

        if self._pooler is None:
            self._pooler = value_engine(self.model_dir, self.settings)
        prompts = [TokensPrompt(prompt_token_ids=list(s)) for s in states]
        outs = self._pooler.embed(prompts, use_tqdm=False)
        hidden = torch.stack([torch.as_tensor(o.outputs.embedding) for o in outs])
        self.stats["value_reads"] += len(states)
        with torch.inference_mode():
            return [float(v) for v in self.value_head(hidden.float())]

    # -- helpers -------------------------------------------------------------------------------
    def _replay(self, req: StepRequest, completion: Any) -> _Row:
        """The HF loop's step rules applied to vLLM's ids, token by token."""
        context = list(req.state_ids[-DECODE_CONTEXT:])
        row = _Row(
            req=0,
            j=0,
            prefix=0,
            temperature=req.temperature,
            max_tokens=req.max_step_tokens,
            generator=None,
            context=context,
            context_text=self.decode(context),
            stop=req.stop,
        )
        logprobs = completion.logprobs or []
        for k, token in enumerate(completion.token_ids):
            entry = logprobs[k] if k < len(logprobs) else {}
            logprob = float(entry[token].logprob) if token in entry else float("nan")
            _advance(self._spec, row, int(token), logprob, True)
            if row.reason is not None:
                break
        if row.reason is None:
            # vLLM saw a stop string that the step rules, decoding with the state's context, did
            # not: keep what was sampled and end the step as cut by the token cap.
            if not self._warned:
                self._warned = True
                log.warning("svpo: vLLM stopped a step the step rules did not end (%r)", row.text)
            row.reason = "length"
        return row

    def _rescore(self, pairs: Sequence[tuple[StepRequest, _Row]]) -> None:
        """Log-probs of re-tokenized steps (never sampled as such): ``prompt_logprobs``."""
        from vllm import SamplingParams, TokensPrompt

        todo = [(req, row) for req, row in pairs if row.retokenized and row.ids]
        for _, row in pairs:
            if row.retokenized and not row.ids:
                row.logprobs = []
        if not todo:
            return
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        prompts = [TokensPrompt(prompt_token_ids=[*req.state_ids, *row.ids]) for req, row in todo]
        outs = self.engine.generate(prompts, params, use_tqdm=False)
        for (req, row), out in zip(todo, outs, strict=True):
            start = len(req.state_ids)
            got = out.prompt_logprobs[start : start + len(row.ids)]
            row.logprobs = [float(d[t].logprob) for d, t in zip(got, row.ids, strict=True)]
