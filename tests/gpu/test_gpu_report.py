"""The GPU check's summary and timeouts (gpu_report.py), on the CPU: no `gpu` marker here, so
the quick suite runs this. An inner pytest run with tests/gpu/conftest.py (the CPU standing in
for CUDA) checks from inside each test that the summary already holds every earlier test, and
dies right after its last test: that test's outcome must be in the file all the same."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gpu_report import Summary, finish

HERE = Path(__file__).parent
INNER = """
import json, os, time
import pytest

def seen():
    return json.loads(open(os.environ["SVPO_GPU_SUMMARY"]).read())

@pytest.mark.gpu
def test_a(record_property):
    record_property("search_cost", {"sbs_3_5_over_greedy": 2.5})
    assert seen()["tests"]["test_inner.py::test_a"]["outcome"] == "running"

@pytest.mark.gpu
def test_b():
    assert seen()["tests"]["test_inner.py::test_a"]["outcome"] == "passed"
    pytest.skip("nothing to do here")

@pytest.mark.gpu
@pytest.mark.gpu_timeout(0.5)
def test_c():
    time.sleep(30)

@pytest.fixture
def die_after():
    yield
    os._exit(3)  # as a killed run: no later test starts, the session never finishes

@pytest.mark.gpu
def test_d(die_after):
    tests = seen()["tests"]
    assert tests["test_inner.py::test_b"]["outcome"] == "skipped"
    assert tests["test_inner.py::test_b"]["reason"] == "nothing to do here"
    assert tests["test_inner.py::test_c"]["outcome"] == "timeout"
    assert seen()["search_cost"] == {"sbs_3_5_over_greedy": 2.5}
"""


def test_the_summary_is_written_after_every_test_and_a_timeout_fails_one(tmp_path):
    for name in ("conftest.py", "gpu_report.py"):
        shutil.copy(HERE / name, tmp_path / name)
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    gpu: a GPU test\n")
    summary = tmp_path / "out" / "gpu_summary.json"
    env = {**os.environ, "SVPO_GPU_SUMMARY": str(summary), "SVPO_GPU_TESTS_ON_CPU": "1",
           "SVPO_GPU_STAGE": "inner"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_inner.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(summary.read_text())
    outcomes = {k.split("::")[1]: v["outcome"] for k, v in data["tests"].items()}
    assert outcomes == {"test_a": "passed", "test_b": "skipped", "test_c": "timeout",
                        "test_d": "passed"}  # fmt: skip
    assert "gpu_timeout of 0.5 s" in data["tests"]["test_inner.py::test_c"]["error"]
    assert data["tests"]["test_inner.py::test_c"]["seconds"] < 10
    assert "pytest_exit" not in data["stages"]["inner"]  # what test_d's own report wrote


def test_finish_marks_the_test_a_stage_limit_cut_off(tmp_path):
    path = tmp_path / "gpu_summary.json"
    summary = Summary(path)
    summary.start("tests/gpu/test_x.py::test_done", "gpu")
    summary.test("tests/gpu/test_x.py::test_done")["outcome"] = "passed"
    summary.start("tests/gpu/test_x.py::test_slow", "gpu")  # written at its start
    assert json.loads(path.read_text())["tests"]["tests/gpu/test_x.py::test_slow"]["outcome"] == (
        "running"
    )
    data = finish(path, "gpu", 124, 200)
    slow = data["tests"]["tests/gpu/test_x.py::test_slow"]
    assert slow["outcome"] == "timeout" and "200 s" in slow["error"]
    assert data["counts"] == {"passed": 1, "timeout": 1}
    assert data["stages"]["gpu"]["exit"] == 124
    assert json.loads(path.read_text()) == data
