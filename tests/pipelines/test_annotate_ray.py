"""`svpo annotate --ray` (pipelines.annotate.annotate_ray) on local Ray clusters the tests start
themselves (2 CPUs, small object store, shut down at the end), with the shipped demo model.

The slow tests compare against a single-process run of the same questions and seed: the same
trees (texts, ids, structure, rewards exactly; floats within 1e-5) whatever worker grew them
and in whatever order they arrived, after a worker is killed, and after the driver is killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from svpo_harness.core.jsonl_io import read_jsonl_records
from svpo_harness.pipelines.annotate.annotate_ray import batch_size, plan_workers

SVPO = str(Path(sys.executable).parent / "svpo")


def env() -> dict[str, str]:
    """Read at each start: the test's own ray.init sets RAY_AUTH_MODE=token, which a driver
    needs to join its cluster (the token is in ~/.ray/auth_token)."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "RAY_ADDRESS": ""}


ARGS = ["--data", "arith:train", "--simulations", "12", "--children", "3", "--temperature",
        "1.0", "--min-visits", "1", "--limit", "8"]  # fmt: skip
QUESTIONS = 8


# -- quick: no cluster -----------------------------------------------------------------------
def test_without_ray_the_flag_gives_one_clear_line(tmp_path):
    """A Python where `import ray` fails (sys.modules['ray'] = None), the real CLI otherwise."""
    code = (
        "import sys; sys.modules['ray'] = None; from svpo_harness.cli import main; "
        "main(sys.argv[1:])"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "annotate",
            "--model",
            str(tmp_path / "m"),
            *ARGS,
            "--out",
            str(tmp_path / "run"),
            "--ray",
            "local",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env(),
    )
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "--ray needs Ray" in lines[0] and "svpo-harness[ray]" in lines[0]
    assert not (tmp_path / "run").exists()  # failed before any work


def test_an_address_nobody_answers_at_is_one_line(tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed")
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = subprocess.run(
        [
            SVPO,
            "annotate",
            "--model",
            str(tmp_path / "m"),
            *ARGS,
            "--out",
            str(tmp_path / "run"),
            "--ray",
            f"127.0.0.1:{port}",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert f"--ray 127.0.0.1:{port}: cannot join the cluster: nothing answers" in last


def test_default_workers_one_per_gpu_else_one_per_cpu():
    assert plan_workers({"CPU": 16.0, "GPU": 4.0}, None, None) == (4, 1.0)
    assert plan_workers({"CPU": 16.0, "GPU": 4.0}, None, 0.5) == (8, 0.5)
    assert plan_workers({"CPU": 6.0}, None, None) == (6, 0.0)
    assert plan_workers({"CPU": 6.0, "GPU": 2.0}, 3, 0.0) == (3, 0.0)


def test_batches_shrink_to_single_trees_at_the_tail():
    assert batch_size(100, 2, 16) == 16  # capped by --trees-in-flight
    assert batch_size(20, 2, 16) == 5  # a quarter of the queue with 2 workers
    assert [batch_size(n, 2, 16) for n in (3, 2, 1)] == [1, 1, 1]
    assert batch_size(5, 0, 16) == 3  # no live worker counted as one


# -- slow: real clusters -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from svpo_harness.pipelines.demo.demo_model import copy_shipped_demo_model

    return copy_shipped_demo_model(tmp_path_factory.mktemp("demo") / "model")


@pytest.fixture(scope="module")
def reference(demo, tmp_path_factory) -> Path:
    """The single-process run of the same questions, settings and seed."""
    out = tmp_path_factory.mktemp("reference") / "run"
    annotate(demo, out)
    return out


@pytest.fixture(scope="module")
def cluster():
    """A 2-CPU Ray head started by this process (the CLI joins it by address), one for the
    module's tests: each run's workers are its own named actors, dead once its driver is gone."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2,
             log_to_driver=False)  # fmt: skip
    try:
        yield ray, ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def annotate(model: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [SVPO, "annotate", "--model", str(model), "--out", str(out), *ARGS, *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=900)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    return done


def start(
    model: Path, out: Path, *extra: str, fault: str | None = None, once: Path | None = None
) -> subprocess.Popen:
    """``fault``: SVPO_FAULT_EXIT_AT for the run (svpo_harness/core/fault.py), e.g.
    ``annotate:2`` exits hard right after the second tree is written; ``once``: SVPO_FAULT_ONCE,
    only the first process to get there exits."""
    from svpo_harness.core.fault import FAULT_ENV, FAULT_ONCE_ENV

    cmd = [SVPO, "annotate", "--model", str(model), "--out", str(out), *ARGS, *extra]
    run_env = env()
    if fault:
        run_env[FAULT_ENV] = fault
    if once:
        run_env[FAULT_ONCE_ENV] = str(once)
    return subprocess.Popen(cmd, env=run_env, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def tree_lines(folder: Path) -> list[tuple[str, int]]:
    return [
        (t.question_id, t.tree_index) for t in read_jsonl_records(folder / "trees.jsonl", "tree")
    ]


def assert_same_run(got: Path, want: Path) -> None:
    """Every tree exactly once and equal to the reference; the same pair records."""
    keys = tree_lines(got)
    assert len(keys) == len(set(keys)) == QUESTIONS, keys
    a = {(t.question_id, t.tree_index): t for t in read_jsonl_records(got / "trees.jsonl", "tree")}
    b = {(t.question_id, t.tree_index): t for t in read_jsonl_records(want / "trees.jsonl", "tree")}
    assert a.keys() == b.keys()
    for key, ta in a.items():
        tb = b[key]
        assert (ta.prompt_ids, ta.question, ta.gold_answer) == (tb.prompt_ids, tb.question,
                                                                 tb.gold_answer)  # fmt: skip
        assert ta.tokenizer_fingerprint == tb.tokenizer_fingerprint
        assert len(ta.nodes) == len(tb.nodes)
        for na, nb in zip(ta.nodes, tb.nodes, strict=True):
            assert (na.node_id, na.parent_id, na.token_ids, na.text, na.reward,
                    na.terminal_reason, na.N) == (nb.node_id, nb.parent_id, nb.token_ids,
                    nb.text, nb.reward, nb.terminal_reason, nb.N)  # fmt: skip
            assert na.W == pytest.approx(nb.W, abs=1e-5)
            assert (na.value is None) == (nb.value is None)
            if na.value is not None:
                assert na.value == pytest.approx(nb.value, abs=1e-5)
    pairs = sorted((got / "pairs.jsonl").read_text().splitlines())
    assert pairs == sorted((want / "pairs.jsonl").read_text().splitlines())
    stats = json.loads((got / "stats.json").read_text())
    assert stats["trees"] == QUESTIONS and stats["pairs"] == sum(
        json.loads(line)["type"] == "pair" for line in pairs
    )


@pytest.mark.slow
def test_two_local_workers_write_the_single_process_trees(demo, reference, tmp_path):
    out = tmp_path / "run"
    done = annotate(demo, out, "--ray", "local", "--workers", "2")
    assert f"annotate: {QUESTIONS} trees ({QUESTIONS} new)" in done.stdout
    assert_same_run(out, reference)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "ray" not in manifest["settings"]  # where trees grew is not a setting of the run
    single = json.loads((reference / "manifest.json").read_text())
    assert manifest["settings"] == single["settings"]  # so either kind of run continues the other


@pytest.mark.slow
def test_a_killed_worker_loses_only_its_batch(demo, reference, cluster, tmp_path):
    _, address = cluster
    out = tmp_path / "run"
    # whichever worker grows a tree first exits hard right after it, before its batch reaches
    # the driver (a known point, no polling race; the other worker goes on)
    proc = start(demo, out, "--ray", address, "--workers", "2", fault="ray-worker:1",
                 once=tmp_path / "fault-once")  # fmt: skip
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert (tmp_path / "fault-once").exists()  # a worker did exit there
    assert "a Ray worker on" in stderr and "was lost" in stderr, stderr  # a started one, mid-run
    assert f"annotate: {QUESTIONS} trees ({QUESTIONS} new)" in stdout
    assert_same_run(out, reference)


@pytest.mark.slow
def test_a_killed_driver_resumes_to_the_same_run(demo, reference, cluster, tmp_path):
    _, address = cluster
    out = tmp_path / "run"
    from svpo_harness.core.fault import FAULT_EXIT_CODE

    # the driver exits hard right after its second tree (a known point, no polling race)
    proc = start(demo, out, "--ray", address, "--workers", "2", fault="annotate:2")
    _, stderr = proc.communicate(timeout=900)  # hang guard
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything the driver left behind
    assert proc.returncode == FAULT_EXIT_CODE, stderr
    written = (out / "trees.jsonl").read_text().count("\n")
    assert written == 2
    again = annotate(demo, out, "--ray", address, "--workers", "2")
    assert f"annotate: {QUESTIONS} trees" in again.stdout and "new)" in again.stdout
    new = int(again.stdout.split("trees (")[1].split(" new")[0])
    assert new <= QUESTIONS - written  # the trees written before the kill were kept
    assert_same_run(out, reference)


@pytest.mark.slow
def test_the_run_fails_clearly_when_no_worker_is_left(demo, cluster, tmp_path):
    _, address = cluster
    out = tmp_path / "run"
    # every worker exits hard right after its first tree: none is left, none was written
    proc = start(demo, out, "--ray", address, "--workers", "2", fault="ray-worker:1")
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode != 0 and "Traceback" not in stderr, stderr
    assert "no worker left of 2" in stderr.strip().splitlines()[-1]
    assert stderr.count("was lost") == 2, stderr
    trees = out / "trees.jsonl"
    assert not trees.exists() or trees.read_text() == ""
