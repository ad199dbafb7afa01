"""The GPU check's pytest plugin: a per-test timeout and a JSON summary written after every test.

tests/gpu/conftest.py registers ``GpuCheckPlugin``; scripts/gpu_check.sh points it at
``$OUT/gpu_summary.json`` (SVPO_GPU_SUMMARY). The summary is rewritten (atomically) when a test
starts and after each of its phases, so a run cut off by the device's time limit still says what
passed, what failed and which test was running. The script calls ``finish`` after each stage
(``python tests/gpu/gpu_report.py finish SUMMARY STAGE RC``): a stage killed by its own time
limit leaves its running test marked ``timeout``.

Timeouts: ``@pytest.mark.gpu_timeout(SECONDS)`` (default ``DEFAULT_TIMEOUT``) bounds a test's
setup and its call, each on its own, with SIGALRM: the test fails with ``GpuTestTimeout``. A
hang inside one C call (a CUDA kernel) is not interrupted until it returns; the stage's outer
``timeout`` in gpu_check.sh catches that one.

No torch here: the summary logic is tested on CPU in a plain pytest run (test_gpu_report.py).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

DEFAULT_TIMEOUT = 120.0  # seconds per phase when a test names none
SUMMARY_ENV = "SVPO_GPU_SUMMARY"
# record_property names shown at the summary's top level (the smoke test's versions and device,
# the search test's cost ratios); every other property stays with its test
TOP_LEVEL = ("environment", "search_cost")


class GpuTestTimeout(Exception):
    """A test phase ran past its gpu_timeout."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Summary:
    """The JSON summary: run facts, one entry per test (in start order) and the search cost."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {"started": _now(), "stages": {}, "tests": {}}
        if path.is_file():  # a later stage adds to what the earlier ones wrote
            self.data = json.loads(path.read_text(encoding="utf-8"))

    def write(self) -> None:
        self.data["updated"] = _now()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)  # a reader never sees half a file

    def test(self, nodeid: str) -> dict[str, Any]:
        return self.data["tests"].setdefault(nodeid, {"outcome": "running"})

    def start(self, nodeid: str, stage: str | None) -> None:
        entry = self.test(nodeid)
        entry.update(outcome="running", stage=stage, started=_now(), seconds=0.0)
        self.write()

    def report(self, report: pytest.TestReport) -> None:
        entry = self.test(report.nodeid)
        entry["seconds"] = round(entry.get("seconds", 0.0) + report.duration, 2)
        props = dict(report.user_properties)
        if props:
            entry.setdefault("properties", {}).update(props)
            for key in TOP_LEVEL:  # run facts a test measured, lifted to the top
                if key in props:
                    self.data[key] = props[key]
        if report.skipped:
            entry.update(outcome="skipped", reason=_reason(report))
        elif report.failed:
            timed_out = "GpuTestTimeout" in str(report.longrepr)
            entry.update(
                outcome="timeout" if timed_out else "failed",
                phase=report.when,
                error=_tail(str(report.longrepr)),
            )
        elif report.when == "call":
            entry["outcome"] = "passed"
        elif report.when == "teardown" and entry["outcome"] == "running":
            entry["outcome"] = "passed"  # a setup-only pass cannot happen; kept for safety
        self.write()

    def stage(self, name: str, **facts: Any) -> None:
        self.data["stages"].setdefault(name, {}).update(facts)
        self.write()


def _reason(report: pytest.TestReport) -> str:
    if isinstance(report.longrepr, tuple):  # (path, line, "Skipped: reason")
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return str(report.longrepr)


def _tail(text: str, limit: int = 1500) -> str:
    return text if len(text) <= limit else "..." + text[-limit:]


@contextmanager
def _alarm(seconds: float | None, what: str) -> Iterator[None]:
    """SIGALRM after ``seconds``: the running Python code raises GpuTestTimeout."""
    if seconds is None or not hasattr(signal, "SIGALRM"):  # none asked; Windows has no alarm
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise GpuTestTimeout(f"{what} ran past its gpu_timeout of {seconds:g} s")

    before = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def _timeout_of(item: pytest.Item) -> float | None:
    """The item's limit: its gpu_timeout, else DEFAULT_TIMEOUT for a ``gpu`` test, else none
    (the plugin is loaded in the main suites too, whose tests it leaves alone)."""
    scale = float(os.environ.get("SVPO_GPU_TIMEOUT_SCALE", "1"))  # e.g. 10 for the CPU stand-in
    marker = item.get_closest_marker("gpu_timeout")
    if marker is not None and marker.args:
        return float(marker.args[0]) * scale
    return DEFAULT_TIMEOUT * scale if item.get_closest_marker("gpu") is not None else None


class GpuCheckPlugin:
    """Per-test timeouts; the summary when ``summary`` is a path."""

    def __init__(self, summary: Path | None, stage: str | None = None) -> None:
        self.summary = Summary(summary) if summary is not None else None
        self.stage_name = stage or "tests"

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.summary is not None:
            self.summary.stage(self.stage_name, started=_now(), finished=None)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple) -> None:
        if self.summary is not None:
            self.summary.start(nodeid, self.stage_name)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.summary is not None:
            self.summary.report(report)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> Iterator[None]:
        with _alarm(_timeout_of(item), f"{item.nodeid} (setup)"):
            yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        with _alarm(_timeout_of(item), item.nodeid):
            yield

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.summary is not None:
            self.summary.stage(self.stage_name, finished=_now(), pytest_exit=int(exitstatus))


def finish(path: Path, stage: str, rc: int, limit: float | None = None) -> dict[str, Any]:
    """After a stage's process ended with ``rc``: a test still 'running' was cut off (124/137:
    the stage's time limit; else the process died), and the stage records its exit status."""
    summary = Summary(path)
    for entry in summary.data["tests"].values():
        if entry.get("outcome") == "running" and entry.get("stage") == stage:
            killed = rc in (124, 137)
            entry["outcome"] = "timeout" if killed else "died"
            entry["error"] = (
                f"the stage's time limit ({limit:g} s) killed the process during this test"
                if killed and limit
                else f"the process ended (exit {rc}) during this test"
            )
    summary.stage(stage, exit=rc, finished=summary.data["stages"].get(stage, {}).get("finished"))
    counts: dict[str, int] = {}
    for entry in summary.data["tests"].values():
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    summary.data["counts"] = counts
    summary.write()
    return summary.data


def main(argv: list[str]) -> int:
    """``finish SUMMARY STAGE RC [LIMIT]``; ``show SUMMARY``: one line per test."""
    if len(argv) >= 4 and argv[0] == "finish":
        limit = float(argv[4]) if len(argv) > 4 else None
        finish(Path(argv[1]), argv[2], int(argv[3]), limit)
        return 0
    if len(argv) == 2 and argv[0] == "show":
        data = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
        for nodeid, entry in data["tests"].items():
            why = entry.get("reason") or entry.get("error", "").splitlines()[-1:]
            why = why if isinstance(why, str) else "".join(why)
            print(f"{entry['outcome']:8} {entry.get('seconds', 0):7.1f} s  {nodeid}  {why}")
        if "search_cost" in data:
            print("search cost:", json.dumps(data["search_cost"]))
        return 0
    print(__doc__.split("\n\n")[0], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
