"""lm-eval task configs: stop sequences, budgets, prompt and the one scoring function."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from svpo_harness.core.step_format import get_step_format
from svpo_harness.lm_eval_plugin import tasks_dir

TASKS = tasks_dir()


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: f"!function {node.value}")


def _config(path: Path) -> dict:
    cfg = yaml.load(path.read_text(), Loader=_Loader)
    if "include" in cfg:
        base = _config(path.parent / cfg.pop("include"))
        base.update(cfg)
        cfg = base
    return cfg


TASK_FILES = sorted(p for p in TASKS.glob("svpo_*.yaml") if "group" not in _config(p))
ARITH_WORLD = {"svpo_arith", "svpo_arith_hard"}  # built in, not benchmark sets of the suite


@functools.cache
def utils() -> ModuleType:
    """tasks/utils.py loaded by path, as lm-eval's `!function utils.x` loads it (a checkout has
    no `svpo_harness.tasks` package to import it from)."""
    spec = importlib.util.spec_from_file_location("utils", TASKS / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", TASK_FILES, ids=lambda p: p.stem)
def test_every_task_sets_until_and_budget_from_its_step_format(path):
    cfg = _config(path)
    fmt = get_step_format(cfg["metadata"]["step_format"])
    gen = cfg["generation_kwargs"]
    assert gen["until"] == list(fmt.stop_sequences)
    assert fmt.delimiter not in gen["until"]
    assert gen["max_gen_toks"] >= 256
    assert cfg["process_results"] == "!function utils.process_results"
    assert cfg["metadata"]["grading_version"] == utils().GRADING_VERSION
    assert cfg["custom_dataset"].startswith("!function utils.load_")
    assert "step_delimiter" not in gen and "delimiter" not in gen


def test_suite_lists_every_benchmark_task():
    suite = _config(TASKS / "svpo_math_suite.yaml")
    names = {p.stem for p in TASK_FILES} - ARITH_WORLD
    assert set(suite["task"]) == names


def test_prompt_is_the_step_format_template():
    doc = {"question": "What is 2+3?", "answer": "5", "step_format": "cot"}
    assert utils().doc_to_text(doc) == get_step_format("cot").prompt("What is 2+3?")


@pytest.mark.parametrize(
    ("response", "gold", "acc", "flexible"),
    [
        ("Add them.\n\nSo the total is \\boxed{18}.", "18", 1.0, 1.0),
        ("16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\n\nThe answer is 18.", "18", 1.0, 1.0),
        ("She makes 9 * 2 = 18 dollars.", "18", 0.0, 1.0),  # no marked answer: flexible only
        ("I do not know.", "18", 0.0, 0.0),  # no answer at all
        ("", "18", 0.0, 0.0),
        ("The answer is \\frac{1}{2}.", "0.5", 1.0, 1.0),
        ("The answer is 17.", "18", 0.0, 0.0),
        ("\\boxed{17} but maybe 18", "18", 0.0, 0.0),  # a marked answer wins over a later number
    ],
)
def test_scoring_function(response, gold, acc, flexible):
    scores = utils().process_results({"answer": gold}, [response])
    assert (scores["acc"], scores["acc_flexible"]) == (acc, flexible)
    assert set(scores) == {"acc", "acc_flexible", "math_verify"}


def test_scoring_on_recorded_model_outputs(shared_data):
    """Real GSM8K model outputs (they end with `A: <answer>`) against their correctness labels."""
    score = utils().score_response
    lines = (shared_data / "gsm8k" / "model_solutions.jsonl").read_text().splitlines()[:60]
    gold = [
        r["answer"]
        for r in json.loads(
            "["
            + ",".join((shared_data / "gsm8k" / "test.jsonl").read_text().splitlines()[:60])
            + "]"
        )
    ]
    agree = total = 0
    for line, answer in zip(lines, gold, strict=True):
        record = json.loads(line)
        for key in ("6b_finetuning", "175b_verification"):
            out = record[key]
            verdict = score(out["solution"], answer.split("####")[-1].strip())["acc_flexible"]
            agree += verdict == float(out["is_correct"])
            total += 1
    assert agree == total


def run_stock_lm_eval(tmp_path: Path, data_dir: Path, *args: str) -> dict:
    """Run the stock `lm_eval` console script (as a user would) and return its results dict."""
    env = {**os.environ, "SVPO_DATA_DIR": str(data_dir)}
    lm_eval = Path(sys.executable).with_name("lm_eval")
    subprocess.run(
        [str(lm_eval), *args, "--output_path", str(tmp_path)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    return json.loads(next(tmp_path.rglob("results_*.json")).read_text())["results"]


@pytest.mark.slow
def test_dummy_model_scores_every_task_of_the_suite(tmp_path, shared_data):
    results = run_stock_lm_eval(
        tmp_path, shared_data, "--model", "dummy", "--tasks", "svpo_math_suite", "--limit", "2"
    )
    expected = {p.stem for p in TASK_FILES} - ARITH_WORLD
    assert expected <= set(results)
    for name in expected:
        assert results[name]["acc,none"] == 0.0, name


@pytest.mark.slow
def test_stock_hf_model_runs_a_benchmark_task(tmp_path, shared_data, micro_checkpoint):
    """`lm_eval --model hf` with a tiny local model on svpo_gsm8k (data from SVPO_DATA_DIR)."""
    results = run_stock_lm_eval(
        tmp_path,
        shared_data,
        "--model",
        "hf",
        "--model_args",
        f"pretrained={micro_checkpoint}",
        "--device",
        "cpu",
        "--tasks",
        "svpo_gsm8k",
        "--limit",
        "5",
        "--gen_kwargs",
        "max_gen_toks=32",
        "--log_samples",
    )
    # every question scored as the grader scores its response; the totals are their means
    from svpo_harness.grading import extract_answer, is_equiv

    file = next(tmp_path.rglob("samples_svpo_gsm8k*.jsonl"))
    samples = [json.loads(line) for line in file.read_text().splitlines()]
    assert len(samples) == 5
    for s in samples:
        response, gold = s["resps"][0][0], str(s["doc"]["answer"])
        for metric, style in (("acc", "strict"), ("acc_flexible", "flexible")):
            found = extract_answer(response, style=style)
            assert s[metric] == float(found is not None and is_equiv(found.answer, gold)), metric
    for metric in ("acc", "acc_flexible", "math_verify"):
        mean = sum(s[metric] for s in samples) / 5
        assert results["svpo_gsm8k"][f"{metric},none"] == pytest.approx(mean), metric
