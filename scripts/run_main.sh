#!/usr/bin/env bash
# The main job (README.md "Run the main job"): the embedded default, offline on a laptop CPU.
# 1. a fresh venv with svpo-harness installed from this checkout, every package from the lock
#    (constraints.txt);
# 2. `svpo quickstart` (the arith-quick recipe): the shipped demo model is annotated with MCTS
#    on arith_hard:train; rft, dpo, alphamath and svpo train from the same trees with the same step
#    budget, each keeping its best step on held-out arith_hard:dev problems (method.md 7.2); every
#    checkpoint is evaluated through lm-eval with greedy, SBS(3,5) and maj@k at SBS's token
#    budget; a report (report.md, report.html, PNGs, search-tree pages) at the end;
# 3. a cross-check with stock lm-eval's own `hf` model: greedy on the demo model.
# Outputs land in ${SVPO_MAIN_OUT:-runs/main}. Re-running reuses the venv and every finished
# stage (the same command continues after a kill). SVPO_MAIN_FULL=1 runs `--full`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SVPO_VENV:-.venv}"
OUT="${SVPO_MAIN_OUT:-runs/main}"
LIMIT="${SVPO_MAIN_LIMIT:-100}"
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

FULL=()
[ "${SVPO_MAIN_FULL:-0}" = "1" ] && FULL=(--full)
echo "== svpo quickstart ${FULL[*]} --out $OUT"
"$VENV/bin/svpo" quickstart "${FULL[@]}" --out "$OUT"

echo "== stock lm-eval, its own hf model, greedy on the demo model ($LIMIT problems)"
"$VENV/bin/lm_eval" --model hf --model_args "pretrained=$OUT/base-demo" --tasks svpo_arith_hard \
  --limit "$LIMIT" --device cpu --batch_size 8 --output_path "$OUT/hf-greedy" \
  > "$OUT/hf-greedy.log" 2>&1 || { tail -20 "$OUT/hf-greedy.log"; exit 1; }
grep -E "^\|svpo_arith_hard" "$OUT/hf-greedy.log" || tail -5 "$OUT/hf-greedy.log"
echo "== report: $OUT/report.md, $OUT/report.html"
