#!/usr/bin/env bash
# The vLLM job of .ci/run by hand (docs/vllm.md): scripts/vllm_job.sh with a venv of its own
# (VENV, default /work/venv-vllm, rebuilt from constraints-vllm.txt every time) and a wheel of
# this checkout (or WHEEL=dist/svpo_harness-*.whl); every test marked `vllm`, none may skip.
#
#   bash scripts/test_vllm_cpu.sh [PYTEST ARGS...]
#
# About 10 minutes on 2 cores with a warm pip cache. Niced: it is meant to run beside other work.
set -euo pipefail
cd "$(dirname "$0")/.."
exec nice -n 19 bash scripts/vllm_job.sh "${VENV:-/work/venv-vllm}" "${WHEEL:-}" "$@"
