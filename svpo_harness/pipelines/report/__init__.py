"""Reports: lm-eval results -> tables, plots, significance, tree pages (`svpo report`).

Public API: ``ReportConfig`` + ``run_report`` (``build_report`` without writing); the readers
of lm-eval's result and sample files and the paired test, for scripts that compare runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from svpo_harness.pipelines import lazy_exports

if TYPE_CHECKING:
    from svpo_harness.pipelines.report.report import (
        ReportConfig,
        ReportError,
        build_report,
        find_results,
        read_results,
        read_samples,
        run_report,
        samples_file,
    )
    from svpo_harness.pipelines.report.report_stats import correct_by_doc, paired_test

__getattr__ = lazy_exports(
    __name__,
    {
        "report": (
            "ReportConfig",
            "ReportError",
            "build_report",
            "find_results",
            "read_results",
            "read_samples",
            "run_report",
            "samples_file",
        ),
        "report_stats": ("correct_by_doc", "paired_test"),
    },
)
__all__ = [
    "ReportConfig",
    "ReportError",
    "build_report",
    "correct_by_doc",
    "find_results",
    "paired_test",
    "read_results",
    "read_samples",
    "run_report",
    "samples_file",
]
