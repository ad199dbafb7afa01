"""Run folders and shards: the manifest that makes a killed run resume exactly, the
append-only JSON Lines in it, and splitting/merging a run across machines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svpo_harness.pipelines import lazy_exports

if TYPE_CHECKING:
    from svpo_harness.pipelines.runs.run_dir import (
        RunDirError,
        append_warnings,
        drop_unfinished_records,
        iter_jsonl_lines,
        open_jsonl,
        open_run_dir,
        read_finished_trees,
    )
    from svpo_harness.pipelines.runs.run_shards import merge_runs, normalise_shard, shard_questions

__getattr__ = lazy_exports(
    __name__,
    {
        "run_dir": (
            "RunDirError",
            "append_warnings",
            "drop_unfinished_records",
            "iter_jsonl_lines",
            "open_jsonl",
            "open_run_dir",
            "read_finished_trees",
        ),
        "run_shards": ("merge_runs", "normalise_shard", "shard_questions"),
    },
)
__all__ = [
    "RunDirError",
    "append_warnings",
    "drop_unfinished_records",
    "iter_jsonl_lines",
    "merge_runs",
    "normalise_shard",
    "open_jsonl",
    "open_run_dir",
    "read_finished_trees",
    "shard_questions",
]
