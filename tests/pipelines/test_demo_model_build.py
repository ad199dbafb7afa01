"""The demo-model build: deterministic on one machine, records how it was made; the shipped copy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")


def _weights_digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


def _head(folder: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    with safe_open(str(folder / "value_head.safetensors"), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k).tolist() for k in handle.keys()}
        return tensors, handle.metadata()


@pytest.fixture(scope="module")
def short_builds(tmp_path_factory) -> list:
    """Three 4-step builds: seed 0 twice, seed 1 once (seconds each)."""
    from svpo_harness.pipelines.demo.demo_model import build_demo_model

    root = tmp_path_factory.mktemp("demo-builds")
    return [
        build_demo_model(root / name, seed=seed, steps=4, progress=False)
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    ]


def test_same_seed_gives_byte_identical_weights(short_builds) -> None:
    a, b, c = short_builds
    assert _weights_digest(a.out) == _weights_digest(b.out)
    # The value head's tensors and metadata, not its bytes: safetensors writes the header's
    # metadata map in hash order, which changes from one save to the next.
    assert _head(a.out) == _head(b.out)
    assert a.final_loss == b.final_loss
    assert _weights_digest(a.out) != _weights_digest(c.out)


def test_the_build_leaves_the_runtime_as_it_found_it(short_builds) -> None:
    import torch

    assert not torch.are_deterministic_algorithms_enabled()


def test_svpo_json_records_the_build(short_builds) -> None:
    from svpo_harness.pipelines.demo.demo_model import DEMO_BATCH, DEMO_LR, DEMO_MODEL_SIZE

    a = short_builds[0]
    meta = json.loads((a.out / "svpo.json").read_text())
    record = meta["training"]["demo_build"]
    assert record["seed"] == 0 and record["steps"] == 4 and record["threads"] == a.threads
    assert record["batch_size"] == DEMO_BATCH and record["lr"] == DEMO_LR
    assert record["model_size"] == DEMO_MODEL_SIZE
    assert record["cpu_capability"]  # where it was built: kernels differ across CPUs
    assert "svpo-demo-model" in meta["base_model"]  # not the temp folder it was trained from
    assert "base_model_path" not in meta  # nor its absolute path (issue 13)
    assert not list(a.out.parent.glob("svpo-demo-*"))  # the work folder is gone


def test_thread_count_comes_from_omp_num_threads_else_two(monkeypatch) -> None:
    from svpo_harness.pipelines.demo.demo_model import DEMO_THREADS, default_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert default_threads() == DEMO_THREADS == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "garbage")
    assert default_threads() == 2


def test_existing_folder_is_not_overwritten(short_builds) -> None:
    from svpo_harness.pipelines.demo.demo_model import build_demo_model

    before = _weights_digest(short_builds[0].out)
    with pytest.raises(FileExistsError, match="already exists"):
        build_demo_model(short_builds[0].out, steps=1, progress=False)
    assert _weights_digest(short_builds[0].out) == before


def test_shipped_model_loads_and_writes_marked_answers() -> None:
    """The copy inside the package is a full checkpoint that solves arithmetic problems."""
    from svpo_harness.core.arith import arith_split
    from svpo_harness.core.search import RootState, run_search
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    folder = shipped_demo_model()
    meta = json.loads((folder / "svpo.json").read_text())
    assert meta["step_format"]["name"] == "arith"
    assert meta["training"]["demo_build"]["seed"] == 0
    policy = HFStepPolicy.from_checkpoint(folder, device="cpu")
    assert policy.has_value_head
    problems = arith_split("test", 20)
    roots = [RootState(p.question_id, policy.encode_prompt(p.question)) for p in problems]
    results = run_search("greedy", roots, policy)
    assert sum(r.finished for r in results) >= 18  # marked final answers, one step per line
    right = sum(
        r.text.strip().endswith(f"The answer is {p.answer}.")
        for r, p in zip(results, problems, strict=True)
    )
    assert 2 <= right <= 19  # right sometimes and wrong sometimes (0.25-0.75 on 1,000)


def test_cli_copies_the_shipped_model(tmp_path) -> None:
    from click.testing import CliRunner

    from svpo_harness.cli import main
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    out = tmp_path / "copy"
    result = CliRunner().invoke(main, ["demo-model", "--out", str(out), "--shipped"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["shipped"] is True
    assert _weights_digest(out) == _weights_digest(shipped_demo_model())
    again = CliRunner().invoke(main, ["demo-model", "--out", str(out), "--shipped"])
    assert again.exit_code != 0 and "already exists" in again.output


def test_the_tool_layout_gets_a_tokenizer_fitted_on_tool_text(tmp_path) -> None:
    from transformers import AutoTokenizer

    from svpo_harness.engines.tiny_model import build_tiny_model

    tool = AutoTokenizer.from_pretrained(
        build_tiny_model(
            tmp_path / "tool", n_problems=500, step_format="tool", hidden_size=16, layers=1, heads=2
        )  # fmt: skip
    )
    arith = AutoTokenizer.from_pretrained(
        build_tiny_model(tmp_path / "arith", n_problems=500, hidden_size=16, layers=1, heads=2)
    )
    assert tool.tokenize("print") == ["print"] and tool.tokenize("output") == ["output"]
    assert len(arith.tokenize("print")) > 1  # the arith text has no programs
    with pytest.raises(ValueError, match="'arith' or 'tool' text, not 'cot'"):
        build_tiny_model(tmp_path / "cot", n_problems=10, step_format="cot")


@pytest.mark.slow  # SFT data of 20,000 tool solutions, encoded piece by piece: about 50 s
def test_a_tool_build_records_its_format_and_fits_its_tokenizer_on_tool_text(tmp_path) -> None:
    from transformers import AutoTokenizer

    from svpo_harness.pipelines.demo.demo_model import DEMO_MAX_STEP_TOKENS, build_demo_model
    from svpo_harness.pipelines.train.sft_data import build_sft_data

    result = build_demo_model(tmp_path / "tool", steps=2, progress=False, step_format="tool")
    meta = json.loads((result.out / "svpo.json").read_text())
    assert meta["step_format"]["name"] == "tool"
    assert meta["step_format"]["extra"] == {"code_end": "</code>"}
    assert meta["step_format"]["max_step_tokens"] == DEMO_MAX_STEP_TOKENS["tool"]
    assert meta["training"]["demo_build"]["step_format"] == "tool"
    tokenizer = AutoTokenizer.from_pretrained(result.out)
    assert tokenizer.tokenize("print") == ["print"] and tokenizer.tokenize("output") == ["output"]
    # tool SFT data: the outputs are in the ids but not in the loss
    from svpo_harness.core.step_format import get_step_format

    data = build_sft_data("arith", tokenizer, get_step_format(meta["step_format"]), 384, 20)
    example = data.examples[0]
    assert data.truncated == 0 and 0 in example.scored and 1 in example.scored
    with pytest.raises(ValueError, match="arith or tool, not 'cot'"):
        build_demo_model(tmp_path / "cot", steps=1, progress=False, step_format="cot")


def test_the_shipped_tool_model_writes_programs_whose_outputs_are_run() -> None:
    """The tool variant shipped in the package: code steps, sandbox outputs, marked answers."""
    pytest.importorskip("svpo_harness.sandbox")
    from svpo_harness.core.arith import arith_split
    from svpo_harness.core.search import RootState, run_search
    from svpo_harness.core.tool_policy import with_tools
    from svpo_harness.engines.backends.hf import HFStepPolicy
    from svpo_harness.grading import extract_answer
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model
    from svpo_harness.sandbox import SandboxUnavailable, sandbox_mode, sandbox_runner

    try:
        sandbox_mode()
    except SandboxUnavailable as exc:
        pytest.skip(f"sandbox unavailable: {exc}")
    folder = shipped_demo_model("tool")
    meta = json.loads((folder / "svpo.json").read_text())
    assert meta["step_format"]["name"] == "tool"
    policy = with_tools(HFStepPolicy.from_checkpoint(folder, device="cpu"), sandbox_runner)
    problems = arith_split("test", 20)
    roots = [RootState(p.question_id, policy.encode_prompt(p.question)) for p in problems]
    results = run_search("greedy", roots, policy)
    assert policy.programs_run >= 20  # every problem computes at least one step in Python
    assert sum(r.finished for r in results) >= 18
    assert all("<output>" in r.text for r in results)
    answers = [extract_answer(r.text) for r in results]
    right = sum(
        a is not None and a.answer == str(p.answer) for a, p in zip(answers, problems, strict=True)
    )
    assert 2 <= right <= 19  # right sometimes and wrong sometimes (the teacher's slips)


def test_cli_copies_the_shipped_tool_model(tmp_path) -> None:
    from click.testing import CliRunner

    from svpo_harness.cli import main
    from svpo_harness.pipelines.demo.demo_model import shipped_demo_model

    out = tmp_path / "tool"
    args = ["demo-model", "--out", str(out), "--shipped", "--step-format", "tool"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["step_format"] == "tool"
    assert _weights_digest(out) == _weights_digest(shipped_demo_model("tool"))
    assert _weights_digest(out) != _weights_digest(shipped_demo_model())
