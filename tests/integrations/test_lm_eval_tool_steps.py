"""`lm_eval --model svpo` with tool steps: the step format from svpo.json or `step_format=tool`
wraps the policy so each step's code runs in the sandbox and its output joins the solution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lm_eval.api.instance import Instance

from svpo_harness.core.arith import arith_split
from svpo_harness.core.search import DECODINGS
from svpo_harness.core.step_format import ARITH, TOOL
from svpo_harness.core.tool_policy import OUTPUT_OPEN, ToolStepPolicy
from svpo_harness.lm_eval_model import SVPOLM
from svpo_harness.lm_eval_search import _policy

# no "\n\n" in `until`: the demo's variant ends an output with "\n</output>\n" + its "\n"
GEN = {"until": ["Question:"], "max_gen_toks": 64, "do_sample": False, "temperature": 0.0}


def _svpo(path, **args) -> SVPOLM:
    return SVPOLM.create_from_arg_obj({"pretrained": str(path), "device": "cpu", **args})


@pytest.fixture(scope="module")
def tool_demo(tmp_path_factory) -> Path:
    """The shipped demo model with a tool variant of its format: steps pause at " =" (it never
    writes <code>, so its programs are empty, but every one of them runs in the sandbox)."""
    from svpo_harness.pipelines.demo.demo_model import copy_shipped_demo_model

    model = copy_shipped_demo_model(tmp_path_factory.mktemp("tool_demo") / "model")
    meta = json.loads((model / "svpo.json").read_text())
    meta["step_format"]["extra"] = {"code_end": " ="}
    (model / "svpo.json").write_text(json.dumps(meta, indent=2))
    return model


def test_step_format_tool_wraps_the_policy_and_arith_does_not(micro_checkpoint):
    assert isinstance(_policy(_svpo(micro_checkpoint, step_format="tool")), ToolStepPolicy)
    plain = _policy(_svpo(micro_checkpoint))
    assert not isinstance(plain, ToolStepPolicy) and plain.step_format.name == "arith"
    wrapped = _policy(_svpo(micro_checkpoint, step_format="tool"))
    assert wrapped.step_format == TOOL


@pytest.mark.parametrize("decoding", DECODINGS)
def test_search_output_carries_the_programs_output(tool_demo, tmp_path, decoding):
    log = tmp_path / "search.jsonl"
    lm = _svpo(
        tool_demo,
        decoding=decoding,
        beam_width=1,
        samples_per_step=2,
        num_samples=2,
        simulations=4,
        search_log=str(log),
    )
    requests = [
        Instance("generate_until", doc={}, arguments=(ARITH.prompt(p.question), dict(GEN)), idx=i)
        for i, p in enumerate(arith_split("test", n=2))
    ]
    outputs = lm.generate_until(requests, disable_tqdm=True)
    assert all(OUTPUT_OPEN in out for out in outputs)
    assert _policy(lm).programs_run > 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(r["output"] for r in records) == sorted(outputs)
    for record in records:  # the generated tokens are the sampled ones, never the outputs
        assert record["tokens_generated"] < sum(len(c["token_ids"]) for c in record["tree"])


def test_math_tasks_prompt_with_the_tool_template(tmp_path, shared_data, micro_checkpoint):
    import importlib.util

    from svpo_harness.lm_eval_plugin import tasks_dir

    spec = importlib.util.spec_from_file_location("svpo_task_utils", tasks_dir() / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    tool_ckpt = tmp_path / "tool_ckpt"
    tool_ckpt.mkdir()
    meta = json.loads((Path(micro_checkpoint) / "svpo.json").read_text())
    (tool_ckpt / "svpo.json").write_text(json.dumps({**meta, "step_format": TOOL.to_dict()}))
    assert utils.prompt_format("cot", str(tool_ckpt)) == "tool"  # from svpo.json
    assert utils.prompt_format("cot", str(micro_checkpoint)) == "cot"  # an arith checkpoint
    assert utils.prompt_format("tool", None) == "tool"  # step_format=tool in model_args
    ds = utils.load_gsm8k(data_dir=str(shared_data), pretrained=str(tool_ckpt))
    doc = ds["test"][0]
    assert utils.doc_to_text(doc) == TOOL.prompt(doc["question"])
    plain = utils.load_gsm8k(data_dir=str(shared_data))["test"][0]
    assert "<question>" not in utils.doc_to_text(plain)


def test_svpo_arith_prompts_a_tool_checkpoint_with_the_tool_template():
    import importlib.util

    from svpo_harness.lm_eval_plugin import tasks_dir
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    spec = importlib.util.spec_from_file_location("svpo_task_utils", tasks_dir() / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    question = arith_split("test", 1)[0].question
    for kwargs, fmt in (
        ({"pretrained": str(shipped_demo_model("tool"))}, TOOL),
        ({"pretrained": str(shipped_demo_model("arith"))}, ARITH),
        ({}, ARITH),
        ({"step_format": "tool"}, TOOL),
    ):
        doc = utils.load_arith(n=1, **kwargs)["test"][0]
        assert utils.doc_to_text(doc) == fmt.prompt(question), kwargs


def test_recipe_evaluation_prompts_the_tool_demo_with_its_template(tmp_path):
    """`svpo run`'s evaluations (lm-eval's Python API with our TaskManager) hand the model args
    to the task loaders as lm-eval's CLI does; before, a tool checkpoint got the arith prompt."""
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model
    from svpo_harness.pipelines.evaluate.lm_eval_run import evaluate_checkpoint
    from svpo_harness.sandbox import SandboxUnavailable, sandbox_mode

    try:
        sandbox_mode()
    except SandboxUnavailable as exc:
        pytest.skip(f"sandbox unavailable: {exc}")
    out = tmp_path / "eval"
    numbers = evaluate_checkpoint(shipped_demo_model("tool"), "svpo_arith",
                                  {"decoding": "greedy"}, out, limit=3)  # fmt: skip
    assert numbers["n"] == 3
    samples = [json.loads(x) for x in next(out.rglob("samples_svpo_arith*.jsonl")).open()]
    for sample in samples:
        assert sample["arguments"]["gen_args_0"]["arg_0"] == TOOL.prompt(sample["doc"]["question"])
        assert OUTPUT_OPEN in sample["resps"][0][0]
