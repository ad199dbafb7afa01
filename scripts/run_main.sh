#!/usr/bin/env bash
# The main job (README.md "Run the main job"): the embedded default, offline on a laptop CPU.
# 1. a fresh venv with svpo-harness installed from this checkout, every package from the lock
#    (constraints.txt);
# 2. the demo model (tokenizer + tiny Llama trained on the arithmetic world): the copy shipped
#    in the package (`svpo demo-model --shipped`, instant), or with SVPO_MAIN_BUILD=1 a build
#    from scratch (`svpo demo-model --seed 0`, about 3 minutes; other bytes than the shipped
#    copy since issue 14's training loop, same quality: BENCHMARKS.md section 2);
# 3. the same checkpoint evaluated on svpo_arith by lm-eval's own greedy `hf` model and by
#    `--model svpo` with greedy, maj@5 and value-guided SBS(3,5) decoding; a table at the end.
# Outputs land in ${SVPO_MAIN_OUT:-runs/main}. Re-running reuses the venv and the demo model.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SVPO_VENV:-.venv}"
OUT="${SVPO_MAIN_OUT:-runs/main}"
LIMIT="${SVPO_MAIN_LIMIT:-200}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ ! -x "$VENV/bin/svpo" ]; then
  echo "== venv: $VENV"
  python3 -m venv "$VENV"
fi
# Everything from the lock (constraints.txt, hashed; CONTRIBUTING.md "Installs and locks"): pip
# itself first (pip >= 26 checks a constraint's hash), then the build backend, then the wheel
# built from this checkout, by its own hash (pip's hash-checking mode covers the whole install).
grep -E '^pip==' constraints.txt >"$VENV/pip-lock.txt"
"$VENV/bin/python" -m pip install -q --require-hashes -r "$VENV/pip-lock.txt"
"$VENV/bin/pip" install -q -c constraints.txt torch==2.13.0 setuptools wheel
rm -rf "$VENV/wheel" && "$VENV/bin/pip" wheel -q --no-deps --no-build-isolation -w "$VENV/wheel" .
WHEEL=$(realpath "$VENV"/wheel/svpo_harness-*.whl)
echo "svpo-harness @ file://$WHEEL --hash=sha256:$(sha256sum "$WHEEL" | cut -d' ' -f1)" \
  >"$VENV/wheel/requirements.txt"
"$VENV/bin/pip" uninstall -q -y svpo-harness 2>/dev/null || true  # same version, new build
"$VENV/bin/pip" install -q -c constraints.txt -r "$VENV/wheel/requirements.txt"
mkdir -p "$OUT"

if [ ! -f "$OUT/demo-model/svpo.json" ]; then
  if [ "${SVPO_MAIN_BUILD:-0}" = "1" ]; then
    echo "== svpo demo-model (tiny Llama from scratch, SFT on the arithmetic world)"
    "$VENV/bin/svpo" demo-model --out "$OUT/demo-model" --seed 0
  else
    echo "== svpo demo-model --shipped (the seed-0 build shipped in the package)"
    "$VENV/bin/svpo" demo-model --out "$OUT/demo-model" --shipped
  fi
fi

run() {  # name, model, model_args
  echo "== $1"
  "$VENV/bin/svpo" eval --model "$2" --model_args "$3" --tasks svpo_arith --limit "$LIMIT" \
    --device cpu --batch_size 8 --output_path "$OUT/$1" > "$OUT/$1.log" 2>&1 || { tail -20 "$OUT/$1.log"; exit 1; }
}
CKPT="pretrained=$OUT/demo-model"
run hf-greedy hf "$CKPT"
run svpo-greedy svpo "$CKPT,decoding=greedy"
run svpo-maj5 svpo "$CKPT,decoding=maj,num_samples=5,search_log=$OUT/svpo-maj5.trees.jsonl"
run svpo-sbs-3-5 svpo "$CKPT,decoding=sbs,beam_width=3,samples_per_step=5,search_log=$OUT/svpo-sbs-3-5.trees.jsonl"

"$VENV/bin/python" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
print(f"\nsvpo_arith (first {json.loads(next((out / 'hf-greedy').rglob('results_*.json')).read_text())['n-samples']['svpo_arith']['effective']} test problems), demo model")
print(f"{'run':14s} {'acc':>6s} {'acc_flexible':>12s}")
for run in ("hf-greedy", "svpo-greedy", "svpo-maj5", "svpo-sbs-3-5"):
    res = json.loads(max((out / run).rglob("results_*.json")).read_text())["results"]["svpo_arith"]
    print(f"{run:14s} {res['acc,none']:6.3f} {res['acc_flexible,none']:12.3f}")
print("\nThe value head is freshly initialised (untrained), so SBS ranks steps almost at\n"
      "random: SVPO training of the head arrives with the training issue.")
PY
