"""`--model svpo` search paths the tiny fixtures never exercised: lm-eval `repeats`, `until`
strings met in the middle of a search."""

from __future__ import annotations

import json

from lm_eval.api.instance import Instance

from svpo_harness.core.arith import arith_split
from svpo_harness.core.step_format import ARITH
from svpo_harness.lm_eval_model import SVPOLM

GEN = {"until": ["\n\n", "Question:"], "max_gen_toks": 64, "do_sample": False, "temperature": 0.0}


def _svpo(path, **args) -> SVPOLM:
    return SVPOLM.create_from_arg_obj({"pretrained": str(path), "device": "cpu", **args})


def _instance(question: str, idx: int, gen: dict = GEN) -> Instance:
    return Instance(
        "generate_until", doc={}, arguments=(ARITH.prompt(question), dict(gen)), idx=idx
    )


def test_repeats_get_the_same_seeds_at_every_batch_size(micro_checkpoint, tmp_path):
    """lm-eval's `repeats` sends the same request k times in a row: each copy is its own search
    (own seed) and the seeds must not depend on --batch_size."""
    first, second = arith_split("test", n=2)
    # evaluator order: each repeated request k times, back to back
    requests = [_instance(first.question, 0)] * 3 + [_instance(second.question, 1)] * 2
    runs = {}
    for batch in (1, 2, 5):
        log = tmp_path / f"log-{batch}.jsonl"
        lm = _svpo(
            micro_checkpoint,
            decoding="bon",
            num_samples=2,
            temperature=1.0,
            batch_size=batch,
            search_log=str(log),
        )
        outputs = lm.generate_until(requests, disable_tqdm=True)
        records = [json.loads(line) for line in log.read_text().splitlines()]
        runs[batch] = (outputs, sorted(r["key"] for r in records))
    assert runs[1] == runs[2] == runs[5]
    keys = runs[1][1]
    assert len(set(keys)) == len(requests)  # every copy searched with its own key (seed part)


def _last_record(log) -> dict:
    return json.loads(log.read_text().splitlines()[-1])


def test_an_until_string_met_mid_search_ends_the_path_there(tmp_path):
    """The search stops where `until` appears, so the text it ranks and calls finished is the
    text the user receives (before: it ran on and `until` cut the chosen path afterwards).
    On the shipped demo model, which writes real arith solutions."""
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    model = shipped_demo_model()
    (problem,) = arith_split("test", n=1)
    free_log = tmp_path / "free.jsonl"
    lm = _svpo(model, decoding="greedy", search_log=str(free_log))
    lm.generate_until([_instance(problem.question, 0)], disable_tqdm=True)
    text = _last_record(free_log)["text"]
    lines = text.split("\n")
    assert len(lines) >= 3, text  # at least two steps
    # a string first seen inside the second step: the path must end in the middle of it
    second = range(len(lines[0]) + 2, len(lines[0]) + len(lines[1]))
    at, until = next(
        (i, text[i : i + n]) for i in second for n in range(2, 8) if text.find(text[i : i + n]) == i
    )
    gen = {**GEN, "until": [until]}
    sbs = {"decoding": "sbs", "beam_width": 1, "samples_per_step": 1, "temperature": 0.0}
    for args in ({"decoding": "greedy"}, sbs):
        log = tmp_path / f"{args['decoding']}.jsonl"
        lm = _svpo(model, search_log=str(log), **args)
        (output,) = lm.generate_until([_instance(problem.question, 0, gen)], disable_tqdm=True)
        record = _last_record(log)
        assert output == text[:at]
        assert record["text"] == output  # the search's own text, nothing cut off afterwards
        chosen = next(c for c in record["tree"] if c["id"] == record["chosen_id"])
        assert chosen["finish_reason"] == "stop" and record["end_reason"] == "stop_no_answer"
        assert not record["finished"]


def test_prefix_cache_model_arg_same_outputs_fewer_prefill_tokens(tmp_path):
    """`prefix_cache=true|false` from an arg string; the search log records per request the
    prefill tokens computed and the tokens generated."""
    import pytest

    from svpo_harness.lm_eval_search import _policy
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    model = shipped_demo_model()
    requests = [_instance(p.question, i) for i, p in enumerate(arith_split("test", n=3))]
    runs = {}
    for flag in ("false", "true"):
        log = tmp_path / f"{flag}.jsonl"
        lm = SVPOLM.create_from_arg_string(
            f"pretrained={model},device=cpu,decoding=sbs,beam_width=2,samples_per_step=3,"
            f"batch_size=3,prefix_cache={flag},search_log={log}"
        )
        assert (_policy(lm).prefix_cache is not None) == (flag == "true")
        outputs = lm.generate_until(requests, disable_tqdm=True)
        records = [json.loads(line) for line in log.read_text().splitlines()]
        runs[flag] = (outputs, records)
    (off, off_records), (on, on_records) = runs["false"], runs["true"]
    assert on == off
    for a, b in zip(on_records, off_records, strict=True):
        assert a["tokens_generated"] == b["tokens_generated"] > 0
        assert 0 < a["prefill_tokens"] < b["prefill_tokens"]
    with pytest.raises(ValueError, match="prefix_cache must be true or false"):
        SVPOLM.create_from_arg_string(f"pretrained={model},device=cpu,prefix_cache=maybe")


def test_mcts_decoding_through_lm_eval(tmp_path):
    """decoding=mcts,simulations=N: test-time MCTS with value-head leaves, logged like the rest."""
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    log = tmp_path / "mcts.jsonl"
    lm = SVPOLM.create_from_arg_string(
        f"pretrained={shipped_demo_model()},device=cpu,decoding=mcts,simulations=6,"
        f"num_samples=3,batch_size=2,search_log={log}"
    )
    requests = [_instance(p.question, i) for i, p in enumerate(arith_split("test", n=2))]
    outputs = lm.generate_until(requests, disable_tqdm=True)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(outputs) == len(records) == 2
    for record in records:
        assert record["decoding"] == "mcts" and record["tokens_generated"] > 0
        assert record["policy_calls"] <= 6 and record["output"] == record["text"]
        assert sum(c["depth"] == 1 for c in record["tree"]) >= 1
