"""Every test that skipped in a test run, with its reason, from pytest's junit files.

    python scripts/list_skips.py dist/test-reports/*.xml

scripts/run_tests.sh (so .ci/run) ends with this list, one line per skipped test and suite:
`SUITE  TEST_ID  REASON`; CONTRIBUTING.md "Skips in CI" says why each skip that CI keeps is
there. Files that do not exist (a suite that did not run) are passed over.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def skips(report: Path) -> list[tuple[str, str, str]]:
    """(suite, test id, reason) of each skipped test case in one junit file."""
    root = ET.parse(report).getroot()
    found = []
    for suite in root.iter("testsuite"):
        name = suite.get("name") or report.stem
        for case in suite.iter("testcase"):
            skipped = case.find("skipped")
            if skipped is None:
                continue
            test = f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")
            reason = (skipped.get("message") or skipped.text or "").strip()
            found.append((name, test, " ".join(reason.split())))
    return found


def main(argv: list[str]) -> int:
    reports = [Path(p) for p in argv if Path(p).is_file()]
    rows = [row for report in reports for row in skips(report)]
    suites = ", ".join(p.stem for p in reports) or "none"
    print(f"== skipped tests: {len(rows)} (junit files of: {suites})")
    for suite, test, reason in rows:
        print(f"{suite}  {test}  {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
