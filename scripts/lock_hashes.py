"""Lock lines with hashes: `pip freeze` output joined with the sha256 of each file pip installed.

    python scripts/lock_hashes.py FREEZE REPORT.json [REPORT.json ...] > LOCK-LINES

FREEZE holds `name==version` lines (`pip freeze --all`); each REPORT is one `pip install --report`
of the venv that was frozen. Prints `name==version --hash=sha256:...` per line, in FREEZE's order,
and exits non-zero naming the first package no report has a hash for (a package installed without
a report, or from a local folder, cannot be locked). Used by scripts/vllm_cpu_venv.sh
(VLLM_LOCK=1); scripts/lock.sh does the same for constraints.txt.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def hashes_of(reports: list[Path]) -> dict[tuple[str, str], str]:
    found = {}
    for report in reports:
        for item in json.loads(report.read_text())["install"]:
            archive = item["download_info"].get("archive_info", {})
            sha = archive.get("hashes", {}).get("sha256")
            if sha:
                found[(norm(item["metadata"]["name"]), item["metadata"]["version"])] = sha
    return found


def lock_lines(freeze: str, hashes: dict[tuple[str, str], str]) -> list[str]:
    lines = []
    for line in freeze.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, version = line.split("==")
        sha = hashes.get((norm(name), version))
        if sha is None:
            sys.exit(f"lock_hashes.py: no sha256 for {line} in pip's reports")
        lines.append(f"{name}=={version} --hash=sha256:{sha}")
    return lines


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    freeze, reports = Path(argv[0]).read_text(), [Path(p) for p in argv[1:]]
    print("\n".join(lock_lines(freeze, hashes_of(reports))))


if __name__ == "__main__":
    main(sys.argv[1:])
