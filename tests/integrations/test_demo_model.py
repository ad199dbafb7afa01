"""`svpo demo-model`: a policy that writes delimited steps, right sometimes and wrong sometimes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from svpo_harness.core.step_format import ARITH


@pytest.mark.slow
def test_demo_model_accuracy_is_in_the_useful_range(demo_checkpoint, tmp_path):
    """lm-eval's own `hf` model, greedy, on 200 svpo_arith test problems: 0.25 <= acc <= 0.75."""
    lm_eval = Path(sys.executable).with_name("lm_eval")
    subprocess.run(
        [
            str(lm_eval),
            "--model",
            "hf",
            "--model_args",
            f"pretrained={demo_checkpoint}",
            "--device",
            "cpu",
            "--tasks",
            "svpo_arith",
            "--limit",
            "200",
            "--batch_size",
            "16",
            "--output_path",
            str(tmp_path),
            "--log_samples",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    results = json.loads(next(tmp_path.rglob("results_*.json")).read_text())["results"]
    accuracy = results["svpo_arith"]["acc,none"]
    assert 0.25 <= accuracy <= 0.75, accuracy
    samples = [json.loads(x) for x in next(tmp_path.rglob("samples_svpo_arith*.jsonl")).open()]
    marked = 0
    for sample in samples:
        text = sample["resps"][0][0]
        steps = ARITH.split_steps(text)
        assert len(steps) >= 2, text  # several delimited steps, not one blob
        marked += ARITH.is_final_step(steps[-1])
    assert marked / len(samples) >= 0.95  # solutions end in a marked answer
