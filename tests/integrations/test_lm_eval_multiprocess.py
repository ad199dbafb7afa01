"""`accelerate launch` with `--model svpo` (issue 10 item 3): each rank searches its own share of
the requests, and the results are gathered once, equal to a single-process run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

LIMIT = 5  # odd: lm-eval pads the rank with fewer documents; the padding must not be searched
GEN_KWARGS = "max_gen_toks=24"
# svpo eval = lm_eval's CLI with svpo registered (what `-m lm_eval` runs once the plugin loads).
LAUNCHER = "from svpo_harness.cli import main\n\nmain()\n"


def _model_args(checkpoint: Path, log: Path) -> str:
    return (
        f"pretrained={checkpoint},decoding=sbs,beam_width=2,samples_per_step=2,seed=0,"
        f"search_log={log}"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _single_process(checkpoint: Path, log: Path) -> dict:
    import lm_eval
    import svpo_harness.tasks
    import torch
    from lm_eval.tasks import TaskManager

    from svpo_harness.lm_eval_model import SVPOLM

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the launched ranks (OMP_NUM_THREADS=1): same float sums
    try:
        lm = SVPOLM.create_from_arg_string(_model_args(checkpoint, log), {"batch_size": 1})
        return lm_eval.simple_evaluate(
            model=lm,
            tasks=["svpo_arith"],
            limit=LIMIT,
            gen_kwargs=GEN_KWARGS,
            task_manager=TaskManager(include_path=str(Path(svpo_harness.tasks.__file__).parent)),
        )
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_two_processes_split_the_requests_and_gather_once(micro_checkpoint, tmp_path):
    launcher = tmp_path / "svpo_eval.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    log, out = tmp_path / "tree.jsonl", tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # --multi_gpu selects accelerate's torchrun launcher; on a machine without CUDA the ranks
    # run on the CPU and talk over gloo (a CPU-only `--cpu` launch starts one process).
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        str(launcher), "eval",
        "--model", "svpo", "--model_args", _model_args(micro_checkpoint, log),
        "--tasks", "svpo_arith", "--limit", str(LIMIT), "--gen_kwargs", GEN_KWARGS,
        "--batch_size", "1", "--output_path", str(out),
    ]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]

    # Each rank logs its own searches: together, every request exactly once.
    ranks = [log.with_name("tree.rank0.jsonl"), log.with_name("tree.rank1.jsonl")]
    assert all(path.is_file() for path in ranks) and not log.exists()
    per_rank = [_records(path) for path in ranks]
    assert all(per_rank), "both ranks searched"
    searched = [record["context"] for records in per_rank for record in records]
    assert len(searched) == len(set(searched)) == LIMIT

    # Gathered once (rank 0 writes one results file) and equal to a single-process run.
    written = sorted(out.rglob("results_*.json"))
    assert len(written) == 1
    launched = json.loads(written[0].read_text(encoding="utf-8"))["results"]["svpo_arith"]
    single_log = tmp_path / "single.jsonl"
    single = _single_process(micro_checkpoint, single_log)["results"]["svpo_arith"]
    assert launched == single
    alone = {r["context"]: r["output"] for r in _records(single_log)}
    together = {r["context"]: r["output"] for records in per_rank for r in records}
    assert together == alone


def test_padding_copies_are_answered_not_searched_again():
    """lm-eval pads a rank by repeating its last request object; `repeats` copies are real."""
    from types import SimpleNamespace

    from svpo_harness.lm_eval_loading import without_padding

    once, twice = SimpleNamespace(repeats=1), SimpleNamespace(repeats=2)
    kept, where = without_padding([once, twice, twice, twice, twice])  # 2 padding copies
    assert kept == [once, twice, twice]
    assert where == [0, 1, 2, 2, 2]
