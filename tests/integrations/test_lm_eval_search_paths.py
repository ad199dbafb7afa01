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
