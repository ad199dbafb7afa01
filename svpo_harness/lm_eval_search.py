"""``generate_until`` of ``--model svpo``: lm-eval requests in, step-level search, text out.

Keeps HFLM's contract: requests grouped by ``gen_kwargs``, sorted longest context first, results
restored to request order, ``until`` and ``max_gen_toks`` honoured, ``cache_hook`` fed. The root
state of each search is HFLM's own encoding of the context (``tok_encode`` with left truncation),
so greedy search and ``--model hf`` start from the same ids.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from lm_eval.models.utils import (
    Collator,
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from tqdm.auto import tqdm

from svpo_harness.core.search import RootState, SearchOptions, run_search

log = logging.getLogger("svpo_harness.lm_eval")


def _policy(lm: Any):
    """One HFStepPolicy per model object, built on first use (the weights are HFLM's own);
    a tool step format (svpo.json or ``step_format=tool``) wraps it to run each step's code."""
    from svpo_harness.core.tool_policy import with_tools
    from svpo_harness.sandbox import sandbox_runner

    if getattr(lm, "_svpo_policy", None) is None:
        from svpo_harness.engines.backends.hf import HFStepPolicy, eos_ids

        policy = HFStepPolicy(
            lm.model,
            lm.tokenizer,
            lm.loaded.step_format,
            lm.loaded.value_head,
            # Every EOS id of the tokenizer and of the generation config (Llama-3 <|eot_id|>,
            # Qwen <|im_end|>), as HFLM's generate stops at, plus lm-eval's end-of-text id.
            eos_token_ids=sorted(eos_ids(lm.tokenizer, lm.model) | {int(lm.eot_token_id)}),
            prefix_cache=bool(lm.search_args["prefix_cache"]),
            prefix_cache_mb=float(lm.search_args["prefix_cache_mb"]),
        )
        lm._svpo_policy = policy
    # Also a policy another backend set (vLLM): one without tool support fails here, clearly.
    lm._svpo_policy = with_tools(lm._svpo_policy, sandbox_runner)
    return lm._svpo_policy


def _options(lm: Any, max_gen_toks: int, has_head: bool, until: list[str]) -> SearchOptions:
    args = lm.search_args
    rank_by = "value" if has_head else "logprob"
    # `until` ends a path inside the search, so "finished" and the ranking are decided on the
    # text the user receives; the step format's own stop sequences end it as well.
    stop = tuple(dict.fromkeys([*until, *lm.loaded.step_format.stop_sequences]))
    return SearchOptions(
        stop=stop,
        b1=int(args["beam_width"]),
        b2=int(args["samples_per_step"]),
        temperature=float(args["temperature"]),
        max_depth=int(args["max_steps"]) if args["max_steps"] else None,
        max_step_tokens=int(args["max_step_tokens"]) if args["max_step_tokens"] else None,
        max_new_tokens=max_gen_toks,
        rank_by=rank_by,
        n_samples=int(args["num_samples"]),
        simulations=int(args["simulations"]),
        c_puct=float(args["c_puct"]),
    )


def _log_path(lm: Any) -> Path | None:
    path = lm.search_args["search_log"]
    if not path:
        return None
    path = Path(path)
    if getattr(lm, "world_size", 1) > 1:  # one file per rank, never two writers on one file
        path = path.with_name(f"{path.stem}.rank{lm.rank}{path.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _checked_until(lm: Any, gen_kwargs: dict, eos: str) -> tuple[list[str], int, dict]:
    kwargs = normalize_gen_kwargs(dict(gen_kwargs), lm.max_gen_toks)
    until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
    delimiter = lm.loaded.step_format.delimiter
    if delimiter in until:
        until = [u for u in until if u != delimiter]
        lm.warn_once(
            "delimiter",
            f"removed the step delimiter {delimiter!r} from `until`: it "
            "ends a step, not the solution",
        )
    max_gen_toks = int(kwargs.pop("max_gen_toks"))
    sampling = {
        k: v for k, v in kwargs.items() if k in ("temperature", "do_sample", "top_p", "top_k")
    }
    if _asks_for_sampling(sampling):  # a task's plain greedy settings are the norm: no warning
        lm.warn_once(
            "sampling",
            f"the task's sampling settings {sampling} are ignored; the "
            f"search uses temperature={lm.search_args['temperature']} (model_args)",
        )
    return until, max_gen_toks, kwargs


def _asks_for_sampling(settings: dict) -> bool:
    """True when a task's generation settings ask for sampling (not lm-eval's greedy default)."""
    if settings.get("do_sample") in (True, "true", "True"):
        return True
    try:
        if float(settings.get("temperature") or 0.0) > 0.0:
            return True
        if float(settings.get("top_p", 1.0)) < 1.0 or int(settings.get("top_k") or 0) > 0:
            return True
    except (TypeError, ValueError):
        return True  # unreadable settings: say they are ignored
    return False


def generate_with_search(lm: Any, requests: list, disable_tqdm: bool = False) -> list[str]:
    if getattr(getattr(lm, "cache_hook", None), "dbdict", None) is not None:
        lm.warn_once(
            "cache",
            "--use_cache keys ignore model_args in lm-eval: cached answers of "
            "another decoding or checkpoint would be reused; use one cache per setting",
        )
    policy = _policy(lm)
    eos = lm.tok_decode(lm.eot_token_id, skip_special_tokens=False)
    log_path = _log_path(lm)
    decoding = lm.search_args["decoding"]
    batch = int(lm.batch_size) if str(lm.batch_size).isdigit() else 1
    collator = Collator(
        [req.args for req in requests],
        sort_fn=lambda req: (-len(lm.tok_encode(req[0])), req[0]),
        group_by="gen_kwargs",
        group_fn=lambda req: req[1],
    )
    results: list[str] = []
    # The key is part of every seed: the context itself, so a question's search does not depend
    # on its batch-mates; a repeated context (lm-eval `repeats`) gets its occurrence number,
    # counted over the whole call so that it does not depend on --batch_size either.
    seen: dict[str, int] = {}
    totals = {"questions": 0, "tokens": 0, "seconds": 0.0}
    bar = tqdm(
        total=len(requests), disable=disable_tqdm or lm.rank != 0, desc=f"svpo {decoding} search"
    )
    for chunk in collator.get_batched(n=batch):
        contexts, all_kwargs = zip(*chunk, strict=True)
        until, max_gen_toks, _ = _checked_until(lm, all_kwargs[0], eos)
        max_ctx = lm.max_length - max_gen_toks
        roots = []
        for ctx in contexts:
            seen[ctx] = seen.get(ctx, -1) + 1
            key = ctx if not seen[ctx] else f"{ctx}#{seen[ctx]}"
            roots.append(
                RootState(key=key, prompt_ids=tuple(lm.tok_encode(ctx, left_truncate_len=max_ctx)))
            )
        started = time.perf_counter()
        found = run_search(
            decoding,
            roots,
            policy,
            _options(lm, max_gen_toks, policy.has_value_head, until),
            seed=int(lm.search_args["seed"]),
        )
        seconds = time.perf_counter() - started
        for context, gen_kwargs, result in zip(contexts, all_kwargs, found, strict=True):
            text = postprocess_generated_text(result.text, until, None)
            results.append(text)
            lm.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
            totals["questions"] += 1
            totals["tokens"] += result.tokens_generated
            if log_path is not None:
                record = {"context": context, "until": until, "output": text, **result.to_dict()}
                with log_path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                    handle.flush()
        totals["seconds"] += seconds
        bar.update(len(chunk))
    bar.close()
    if totals["questions"]:
        log.info(
            "svpo %s",
            f"{decoding}: {totals['tokens'] / totals['questions']:.1f} generated "
            f"tokens and {totals['seconds'] / totals['questions']:.3f} s per question",
        )
    return collator.get_original(results)
