#!/usr/bin/env bash
# The GPU check (docs/gpu.md): the tests in tests/gpu (marker gpu) on one CUDA machine, in under
# 5 minutes, with a JSON summary under $OUT rewritten after every test (a run cut off by a time
# limit still reports). Without CUDA every test skips with its reason: scripts/run_tests.sh (so
# .ci/run) runs it that way, in seconds.
#
#   bash scripts/gpu_check.sh            # any CUDA machine; results in $OUT (dist/gpu-check)
#
# The interpreter: SVPO_GPU_CHECK_PYTHON=PATH is used as it is (it must already have the
# svpo-harness wheel and lm-eval: CI passes its test venv's). Otherwise a venv
# (SVPO_GPU_CHECK_VENV, /tmp/svpo-gpu-venv) is made from $PYTHON (python3) with
# --system-site-packages, so the machine's torch, transformers, peft, ... are used, and the
# wheels of scripts/gpu_check_wheels.sh (SVPO_GPU_WHEELS, dist/gpu-wheels) go into it offline,
# --no-deps. A venv's site-packages is a site directory: the package's .pth start-up hook runs
# there, so the stock `lm_eval --model svpo` finds the model (pip --target + PYTHONPATH would
# not run it). If $PYTHON is itself a venv (the device image's python3 is), a .pth line adds
# its site-packages with site.addsitedir: --system-site-packages alone would see its base's.
#
# Stages, each one pytest run under `timeout`, junit to $OUT/NAME.xml:
#   gpu-smoke  tests/gpu/test_gpu_smoke.py: imports, the demo model on CUDA, one SBS call;
#              the other tests run only if it passes (limit SVPO_GPU_SMOKE_LIMIT, 120 s)
#   gpu        every other gpu test, each with its own gpu_timeout (tests/gpu/gpu_report.py),
#              within what is left of SVPO_GPU_CHECK_BUDGET (290 s from the start)
# Exit status: 0 when every test passed or skipped (CI=true: only allowed skips), else 1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
START=$SECONDS
BUDGET=${SVPO_GPU_CHECK_BUDGET:-290}
OUT=$(realpath -m "${OUT:-dist/gpu-check}")
mkdir -p "$OUT"
SUMMARY="$OUT/gpu_summary.json"
rm -f "$SUMMARY" "$OUT"/gpu-smoke.xml "$OUT"/gpu.xml

if [ -n "${SVPO_GPU_CHECK_PYTHON:-}" ]; then
  PY=$SVPO_GPU_CHECK_PYTHON
  echo "== GPU check: python $PY as it is (SVPO_GPU_CHECK_PYTHON)"
else
  VENV=$(realpath -m "${SVPO_GPU_CHECK_VENV:-/tmp/svpo-gpu-venv}")
  WHEELS=${SVPO_GPU_WHEELS:-dist/gpu-wheels}
  BASE=${PYTHON:-python3}
  if ! ls "$WHEELS"/svpo_harness-*.whl >/dev/null 2>&1; then
    echo "gpu_check.sh: no wheels in $WHEELS: run bash scripts/gpu_check_wheels.sh first" >&2
    exit 1
  fi
  echo "== GPU check: venv $VENV from $BASE (--system-site-packages), wheels of $WHEELS"
  "$BASE" -m venv --clear --without-pip --system-site-packages "$VENV"
  PY="$VENV/bin/python"
  "$BASE" - "$PY" <<'EOF'
import subprocess
import sys
import sysconfig

if sys.prefix != sys.base_prefix:  # a venv: give the new one this one's packages too
    dirs = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    target = subprocess.run([sys.argv[1], "-c", "import sysconfig; print(sysconfig.get_paths()"
                             "['purelib'])"], capture_output=True, text=True, check=True)
    lines = [f"import site; site.addsitedir({d!r})" for d in dirs]
    with open(target.stdout.strip() + "/_svpo_gpu_check_base.pth", "w") as pth:
        pth.write("\n".join(lines) + "\n")
EOF
  "$PY" -m pip install -q --no-index --no-deps --no-compile --ignore-installed \
    "$WHEELS"/*.whl
  # --no-deps: report, do not fix, a requirement the image meets at another version (the
  # image's own packages may add lines of their own: the first 20 are shown)
  echo "== pip check (information only)"
  "$PY" -m pip check 2>&1 | head -n 20 || true
  echo "== venv + install: $((SECONDS - START)) s"
fi

"$PY" -P -c 'import torch, transformers
cuda = torch.cuda.is_available()
print("torch", torch.__version__, "| transformers", transformers.__version__, "|",
      torch.cuda.get_device_name() if cuda else "no CUDA: every gpu test skips")'

export SVPO_GPU_SUMMARY="$SUMMARY" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export SVPO_TEST_CACHE="${SVPO_TEST_CACHE:-$HOME/.cache/svpo-harness-tests}"
RC=0
stage() {  # name limit pytest-args...: one pytest run under `timeout`; its status into RC
  local name=$1 limit=$2 && shift 2
  echo "== GPU check stage $name (limit $limit s)"
  set +e
  # -P: the checkout's svpo_harness/ must not shadow the installed wheel
  SVPO_GPU_STAGE=$name timeout --kill-after=10 "$limit" "$PY" -P -m pytest -q \
    -p no:cacheprovider -m gpu -o junit_family=xunit1 --junitxml="$OUT/$name.xml" -o junit_suite_name="$name" "$@"
  RC=$?
  set -e
  "$PY" tests/gpu/gpu_report.py finish "$SUMMARY" "$name" "$RC" "$limit"
  echo "== $name: exit $RC after $((SECONDS - START)) s"
}

stage gpu-smoke "${SVPO_GPU_SMOKE_LIMIT:-120}" tests/gpu/test_gpu_smoke.py
if [ "$RC" -eq 0 ]; then
  LEFT=$((BUDGET - (SECONDS - START)))
  [ "$LEFT" -ge 30 ] || LEFT=30
  stage gpu "$LEFT" tests/gpu --ignore=tests/gpu/test_gpu_smoke.py
else
  echo "== the smoke stage failed: the other GPU tests were not started"
fi
"$PY" tests/gpu/gpu_report.py show "$SUMMARY"
echo "== GPU check: $((SECONDS - START)) s, summary $SUMMARY"
[ "$RC" -eq 0 ]
