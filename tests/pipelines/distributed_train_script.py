"""Run by test_train_distributed.py under `accelerate launch`: train, write the losses (rank 0)."""

from __future__ import annotations

import json
import sys

from svpo_harness.pipelines.train.train import run_training
from svpo_harness.pipelines.train.train_config import TrainConfig


def main() -> None:
    settings = json.loads(sys.argv[1])
    losses_file = settings.pop("losses_file")
    result = run_training(TrainConfig(**settings), progress=False)
    from accelerate import PartialState

    state = PartialState()
    if state.is_main_process:
        with open(losses_file, "w", encoding="utf-8") as fh:
            json.dump({"losses": result.losses, "world": state.num_processes}, fh)


if __name__ == "__main__":
    main()
