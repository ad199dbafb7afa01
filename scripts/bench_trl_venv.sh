#!/usr/bin/env bash
# The venv that scripts/bench_vs_trl.py runs TRL's DPOTrainer in (issue 14), kept apart from the
# dev venv so TRL and its dependencies never enter the project's own environment.
#
#   bash scripts/bench_trl_venv.sh [VENV] [DEV_VENV]      # defaults: /work/venv-trl, /work/venv
#
# 1. torch first, the CPU build (pip finds the local +cpu wheel; a CUDA build is refused below);
# 2. TRL at the pinned version (below), with transformers, peft, accelerate,
#    datasets, tokenizers and safetensors held at the dev venv's versions (same model code and
#    LoRA layers on both sides of the benchmark);
# 3. this checkout, editable and without dependencies (svpo_harness importable there; the TRL
#    runner itself reads the ids that bench_vs_trl.py prepared and imports none of it).
set -euo pipefail

VENV=${1:-/work/venv-trl}
DEV_VENV=${2:-/work/venv}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
# The TRL the benchmark was written against: setup.cfg's `trl==X` when its bench extra pins one,
# else TRL_VERSION (1.16.0: the newest release, and it installs beside transformers 5.24, peft
# 0.21 and accelerate 1.15 without moving them).
TRL_SPEC=$(sed -n 's/^[[:space:]]*\(trl==[0-9][0-9.]*\)[[:space:]]*$/\1/p' "$ROOT/setup.cfg" | head -1)
TRL_SPEC=${TRL_SPEC:-trl==${TRL_VERSION:-1.16.0}}

python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "$TORCH_SPEC"
"$VENV/bin/python" - <<'EOF'
import sys, torch
if torch.version.cuda is not None:
    sys.exit(f"pip installed a CUDA torch ({torch.__version__}); install the CPU wheel first")
print("torch", torch.__version__)
EOF

CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "$TORCH_SPEC" >"$CONSTRAINTS"
if [[ -x "$DEV_VENV/bin/pip" ]]; then
    "$DEV_VENV/bin/pip" freeze 2>/dev/null \
        | grep -iE '^(transformers|peft|accelerate|datasets|tokenizers|safetensors|huggingface[-_]hub|numpy)==' \
        >>"$CONSTRAINTS" || true
fi
"$VENV/bin/pip" install -q -c "$CONSTRAINTS" "$TRL_SPEC" peft
"$VENV/bin/pip" install -q --no-deps -e "$ROOT"
"$VENV/bin/python" -c "
import torch, transformers, peft, accelerate, datasets, trl
for m in (torch, transformers, peft, accelerate, datasets, trl):
    print(m.__name__, m.__version__)
"
