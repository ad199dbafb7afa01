"""Training: records -> checkpoint, every objective on one loop (`svpo train`).

Public API: ``TrainConfig`` (and ``OBJECTIVES``) + ``run_training`` -> ``TrainResult``; the
preference data loader (``load_preference_data``) that value-eval reads pairs with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svpo_harness.pipelines import lazy_exports

if TYPE_CHECKING:
    from svpo_harness.pipelines.train.pref_data import PreferenceDataError, load_preference_data
    from svpo_harness.pipelines.train.train import TrainResult, run_training
    from svpo_harness.pipelines.train.train_config import OBJECTIVES, TrainConfig

__getattr__ = lazy_exports(
    __name__,
    {
        "pref_data": ("PreferenceDataError", "load_preference_data"),
        "train": ("TrainResult", "run_training"),
        "train_config": ("OBJECTIVES", "TrainConfig"),
    },
)
__all__ = [
    "OBJECTIVES",
    "PreferenceDataError",
    "TrainConfig",
    "TrainResult",
    "load_preference_data",
    "run_training",
]
