"""`--model svpo`: model_args contract, search log, and peer parity with lm-eval's own `hf`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from svpo_harness.core.arith import arith_split
from svpo_harness.core.step_format import ARITH
from svpo_harness.lm_eval_model import SVPOLM, valid_model_args

GEN = {"until": ["\n\n", "Question:"], "max_gen_toks": 96, "do_sample": False, "temperature": 0.0}


def _requests(n: int, gen: dict = GEN) -> list[Instance]:
    return [
        Instance("generate_until", doc={}, arguments=(ARITH.prompt(p.question), dict(gen)), idx=i)
        for i, p in enumerate(arith_split("test", n=n))
    ]


def _svpo(path, **args) -> SVPOLM:
    return SVPOLM.create_from_arg_obj({"pretrained": str(path), "device": "cpu", **args})


def test_unknown_model_args_list_the_valid_ones(micro_checkpoint):
    with pytest.raises(ValueError, match="unknown svpo model_args: beamwidth") as err:
        _svpo(micro_checkpoint, beamwidth=2)
    assert "beam_width" in str(err.value) and "samples_per_step" in str(err.value)
    assert {"decoding", "search_log", "value_head", "pretrained"} <= set(valid_model_args())


def test_batch_size_auto_is_rejected(micro_checkpoint):
    with pytest.raises(ValueError, match="batch_size auto"):
        _svpo(micro_checkpoint, batch_size="auto")


def test_sbs_needs_a_value_head_unless_told_none(tmp_path, micro_checkpoint):
    from svpo_harness.engines.checkpoint import load_checkpoint, save_checkpoint

    loaded = load_checkpoint(micro_checkpoint, value_head="none")
    headless = save_checkpoint(
        tmp_path / "headless", loaded.model, loaded.tokenizer, None, loaded.meta
    )
    with pytest.raises(ValueError, match="value_head=none"):
        _svpo(headless, decoding="sbs")
    log = tmp_path / "h.jsonl"
    lm = _svpo(
        headless, decoding="sbs", value_head="none", beam_width=1, samples_per_step=2,
        search_log=str(log),
    )  # fmt: skip
    (output,) = lm.generate_until(_requests(1), disable_tqdm=True)
    (record,) = [json.loads(x) for x in log.read_text().splitlines()]
    # ranked by log-prob: no value read anywhere, and B1 * B2 = 2 candidates at the root
    assert record["output"] == output and all(c["value"] is None for c in record["tree"])
    assert sum(c["depth"] == 1 for c in record["tree"]) == 2


def test_search_log_shows_the_beam(tmp_path):
    from svpo_harness.pipelines.demo.demo_model import copy_shipped_demo_model

    # the shipped demo model finishes arith questions (a random micro model may finish none,
    # and then the finished-path checks below would never run)
    demo = copy_shipped_demo_model(tmp_path / "demo")
    log = tmp_path / "search.jsonl"
    lm = _svpo(
        demo,
        decoding="sbs",
        beam_width=2,
        samples_per_step=3,
        search_log=str(log),
        batch_size=2,
    )
    outputs = lm.generate_until(_requests(3), disable_tqdm=True)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(outputs) == len(records) == 3
    for record in records:
        tree = record["tree"]
        assert sum(c["depth"] == 1 for c in tree) == 6  # B1 * B2 at the root
        for depth in {c["depth"] for c in tree}:
            kept = [c for c in tree if c["depth"] == depth and c["status"] in ("kept", "finished")]
            assert len(kept) <= 2
        finished = [c for c in tree if c["status"] == "finished"]
        assert record["finished"] == bool(finished)
        if finished:  # the returned path is the finished one with the highest value
            assert record["value"] == max(c["value"] for c in finished)
        assert record["output"] in record["text"]  # the text cut at `until`, nothing appended
    assert sum(r["finished"] for r in records) == 3  # the demo model finishes all three


def test_delimiter_in_until_is_removed_with_a_warning(micro_checkpoint, caplog):
    lm = _svpo(micro_checkpoint, decoding="greedy")
    gen = dict(GEN, until=["\n", "Question:"])
    with caplog.at_level("WARNING"):
        out = lm.generate_until(_requests(1, gen), disable_tqdm=True)
    assert "step delimiter" in caplog.text
    assert len(out) == 1


@pytest.mark.parametrize(
    ("gen", "warned"),
    [
        (GEN, False),  # svpo_arith's own settings: greedy, as every lm-eval task says
        ({"until": ["\n\n"], "max_gen_toks": 96, "do_sample": False}, False),
        (dict(GEN, do_sample=True, temperature=0.8), True),
        ({"until": ["\n\n"], "max_gen_toks": 96, "temperature": 0.7}, True),
        (dict(GEN, temperature=0.7), False),  # do_sample false: greedy whatever the temperature
    ],
)
def test_sampling_warning_only_when_the_task_asks_for_sampling(
    micro_checkpoint, caplog, gen, warned
):
    lm = _svpo(micro_checkpoint, decoding="greedy")
    with caplog.at_level("WARNING"):
        lm.generate_until(_requests(1, gen), disable_tqdm=True)
    assert ("sampling settings" in caplog.text) == warned


def test_value_head_none_from_an_arg_string_means_no_head(micro_checkpoint):
    """lm-eval's parser turns "none" into None; it must still mean "no head"."""
    args = f"pretrained={micro_checkpoint},device=cpu,decoding=sbs,value_head=none"
    lm = SVPOLM.create_from_arg_string(args)
    assert lm.loaded.value_head is None
    assert lm.search_args["value_head"] == "none"
    with_head = SVPOLM.create_from_arg_string(f"pretrained={micro_checkpoint},device=cpu")
    assert with_head.loaded.value_head is not None  # absent: the checkpoint's head


def test_value_head_none_through_simple_evaluate(micro_checkpoint, tmp_path):
    """The Python API path recipes and notebooks use: the ablation really runs without a head."""
    import lm_eval
    import svpo_harness.tasks
    from lm_eval.tasks import TaskManager

    log = tmp_path / "tree.jsonl"
    args = (
        f"pretrained={micro_checkpoint},device=cpu,decoding=sbs,beam_width=1,"
        f"samples_per_step=2,value_head=none,search_log={log}"
    )
    lm_eval.simple_evaluate(
        model="svpo",
        model_args=args,
        tasks=["svpo_arith"],
        limit=1,
        task_manager=TaskManager(include_path=str(Path(svpo_harness.tasks.__file__).parent)),
    )
    tree = json.loads(log.read_text().splitlines()[0])
    values = [c["value"] for c in tree["tree"]]
    assert values and all(v is None for v in values)  # ranked by log-prob, no head read


def test_steps_stop_at_every_eos_id_of_the_generation_config(micro_checkpoint, tmp_path):
    """A chat model lists several EOS ids (Llama-3 <|eot_id|>, Qwen <|im_end|>): all end a step."""
    import shutil

    from svpo_harness.lm_eval_search import _policy

    ckpt = tmp_path / "ckpt"
    shutil.copytree(micro_checkpoint, ckpt)
    config = json.loads((ckpt / "generation_config.json").read_text())
    eos = config.get("eos_token_id")
    eos = eos if isinstance(eos, list) else [eos]
    (ckpt / "generation_config.json").write_text(json.dumps({**config, "eos_token_id": [*eos, 7]}))
    lm = _svpo(ckpt, decoding="greedy")
    assert {7, lm.eot_token_id} <= set(_policy(lm)._spec.eos_ids)


def test_apply_step_chat_template_is_no_longer_silently_accepted(micro_checkpoint):
    with pytest.raises(ValueError, match="unknown svpo model_args: apply_step_chat_template"):
        _svpo(micro_checkpoint, apply_step_chat_template=True)


def test_a_recorded_chat_template_is_used_and_announced(micro_checkpoint, tmp_path, caplog):
    import shutil

    ckpt = tmp_path / "ckpt"
    shutil.copytree(micro_checkpoint, ckpt)
    meta = json.loads((ckpt / "svpo.json").read_text())
    template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
    (ckpt / "svpo.json").write_text(json.dumps({**meta, "chat_template": template}))
    with caplog.at_level("WARNING"):
        lm = _svpo(ckpt, decoding="greedy")
    assert "--apply_chat_template" in caplog.text
    chat = lm.apply_chat_template([{"role": "user", "content": "2+2?"}])
    assert chat.startswith("<|user|>2+2?")


def _hf(path):
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(path), device="cpu", batch_size=1)


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        {"decoding": "greedy"},
        {"decoding": "sbs", "beam_width": 1, "samples_per_step": 1, "temperature": 0.0},
    ],
    ids=["greedy", "sbs-1-1-t0"],
)
def test_peer_parity_with_lm_eval_hf_greedy(args):
    """On the shipped demo model (a trained checkpoint: parity needs no rebuild of it)."""
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    model = shipped_demo_model()
    requests = _requests(20)
    expected = _hf(model).generate_until(requests, disable_tqdm=True)
    got = _svpo(model, batch_size=1, **args).generate_until(requests, disable_tqdm=True)
    assert got == expected
