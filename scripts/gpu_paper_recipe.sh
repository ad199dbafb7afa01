#!/usr/bin/env bash
# The paper's setting on GPUs (issue 16), from the shipped recipe gsm8k-math-7b
# (svpo_harness/recipes/gsm8k-math-7b.yaml: its annotate / train / evaluate settings are read
# from it, with the same --set overrides as `svpo run`):
#   1. annotate GSM8K train and MATH train with vLLM (one `svpo annotate --backend vllm` shard per
#      GPU, merged), round by round (round k+1 from round k's svpo policy, at the recipe's
#      temperature for that round);
#   2. train SVPO on both pair files with accelerate + DeepSpeed ZeRO-2
#      (configs/accelerate/zero2.yaml, one process per GPU);
#   3. evaluate every round's policy with `lm_eval --model svpo --tasks svpo_math_suite`
#      (backend=vllm) for each of the recipe's decodings;
#   4. `svpo report` over all results (leaderboard, McNemar, plots, HTML).
# On one GPU, `svpo run gsm8k-math-7b --set base=CKPT --set annotate.backend=vllm --out DIR`
# runs the same recipe in one process (training without DeepSpeed, evaluation with HF).
#
#   bash scripts/gpu_paper_recipe.sh BASE OUT [--set KEY=VALUE ...]
#
# BASE: an svpo checkpoint with a value head, or a plain HF model (a head is initialised:
# `svpo value-head init`), e.g. your SFT of deepseek-ai/deepseek-math-7b-base.
# Environment: GPUS (default: every GPU nvidia-smi lists), SVPO_VLLM_TP (tensor parallel size
# per annotate shard, default 1: a shard uses SVPO_VLLM_TP GPUs), SVPO_VLLM_GPU_MEMORY /
# SVPO_VLLM_VALUE_GPU_MEMORY (the two engines' shares of a GPU, default 0.55 / 0.3),
# EVAL_TP (lm_eval's tensor_parallel_size, default 1), DRY_RUN=1 (print the commands only).
# Needs: CUDA GPUs, `pip install 'svpo-harness[vllm]' deepspeed` in one environment, and the
# data sets in the hub cache or SVPO_DATA_DIR. Not run by the project: its machines have no GPU
# and the lent GPU machines cannot install vLLM; DRY_RUN=1 is what was checked (docs/vllm.md).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,30p' "$0" >&2
    exit 2
fi
BASE=$1
OUT=$2
shift 2
SETS=("$@")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python}
DRY=${DRY_RUN:-0}
if [[ -z "${GPUS:-}" ]]; then
    GPUS=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
fi
GPUS=${GPUS:-0}
TP=${SVPO_VLLM_TP:-1}
EVAL_TP=${EVAL_TP:-1}
run() {  # print, then run unless DRY_RUN=1
    echo "+ $*"
    if [[ "$DRY" != 1 ]]; then "$@"; fi
}

if [[ "$DRY" != 1 ]]; then
    [[ "$GPUS" -ge 1 ]] || { echo "no GPU found (set GPUS=N)" >&2; exit 1; }
    "$PY" -c "import vllm, deepspeed" 2>/dev/null \
        || { echo "needs vLLM and DeepSpeed: pip install 'svpo-harness[vllm]' deepspeed" >&2; exit 1; }
fi
[[ "$GPUS" -ge 1 ]] || GPUS=8  # a dry run on a machine without GPUs prints 8-GPU commands
SHARDS=$((GPUS / TP))
[[ "$SHARDS" -ge 1 ]] || { echo "SVPO_VLLM_TP=$TP needs at least $TP GPUs" >&2; exit 1; }
mkdir -p "$OUT"
export SVPO_VLLM_TP=$TP

# The recipe, resolved with the overrides, as shell-readable settings.
RECIPE_JSON="$OUT/recipe.resolved.json"
"$PY" - "$RECIPE_JSON" "${SETS[@]}" <<'EOF'
import json, sys
from svpo_harness.pipelines.recipes.recipe import load_recipe, train_settings
recipe = load_recipe("gsm8k-math-7b", [a for a in sys.argv[2:] if a != "--set"])
recipe["train_svpo"] = train_settings(recipe, "svpo")
json.dump(recipe, open(sys.argv[1], "w"), indent=1, default=str)
EOF
setting() { "$PY" -c "import json,sys; r=json.load(open('$RECIPE_JSON')); print(eval(sys.argv[1], {}, r))" "$1"; }
ROUNDS=$(setting 'rounds')
SEED=$(setting 'seeds[0]')

# annotate flags from the recipe (data and temperature are set per stage below)
annotate_flags() {  # round index
    "$PY" - "$RECIPE_JSON" "$1" <<'EOF'
import json, sys
recipe, k = json.load(open(sys.argv[1])), int(sys.argv[2])
flags = []
for key, value in recipe["annotate"].items():
    if key in ("data", "backend", "device"):
        continue
    if key == "temperature" and isinstance(value, list):
        value = value[min(k, len(value) - 1)]
    if isinstance(value, bool):
        flags += [f"--{key.replace('_', '-')}"] if value else []
    elif value is not None:
        flags += [f"--{key.replace('_', '-')}", str(value)]
print(" ".join(flags))
EOF
}

POLICY=$BASE
if [[ ! -f "$BASE/value_head.safetensors" ]]; then
    run svpo value-head init --model "$BASE" --out "$OUT/base"
    POLICY=$OUT/base
fi
POLICIES=("$POLICY")
LABELS=(base)
for ((round = 1; round <= ROUNDS; round++)); do
    WHERE=$OUT/round$round
    mkdir -p "$WHERE"
    read -r -a FLAGS <<<"$(annotate_flags $((round - 1)))"
    for DATA in gsm8k:train math:train; do
        NAME=${DATA%%:*}
        PARTS=()
        PIDS=()
        for ((i = 0; i < SHARDS; i++)); do  # one vLLM annotate process per TP group of GPUs
            GPU_IDS=$(seq -s, $((i * TP)) $((i * TP + TP - 1)))
            PART=$WHERE/annotate-$NAME.part$i
            [[ "$SHARDS" -gt 1 ]] || PART=$WHERE/annotate-$NAME
            PARTS+=("$PART")
            CMD=(svpo annotate --backend vllm --model "$POLICY" --data "$DATA" --out "$PART"
                --seed "$SEED" --shard "$i/$SHARDS" "${FLAGS[@]}")
            echo "+ CUDA_VISIBLE_DEVICES=$GPU_IDS ${CMD[*]} >$PART.log 2>&1 &"
            if [[ "$DRY" != 1 ]]; then
                mkdir -p "$WHERE"
                CUDA_VISIBLE_DEVICES=$GPU_IDS "${CMD[@]}" >"$PART.log" 2>&1 &
                PIDS+=($!)
            fi
        done
        for pid in "${PIDS[@]}"; do  # every shard must succeed (its log says why not)
            wait "$pid" || { echo "an annotate shard failed: see $WHERE/*.log" >&2; exit 1; }
        done
        if [[ "$SHARDS" -gt 1 ]]; then
            run svpo annotate merge "${PARTS[@]}" --out "$WHERE/annotate-$NAME"
        fi
    done
    if [[ "$DRY" != 1 ]]; then
        cat "$WHERE/annotate-gsm8k/pairs.jsonl" "$WHERE/annotate-math/pairs.jsonl" \
            >"$WHERE/pairs.jsonl"
    fi
    # training settings of the recipe (train.common + train.svpo) as svpo train's --config
    # The recipe's global batch (batch_size x grad_accum) is kept: DeepSpeed runs with
    # grad_accum 1 and batch_size / process = global / GPUS (configs/accelerate/zero2.yaml).
    "$PY" - "$RECIPE_JSON" "$WHERE/train.yaml" "$GPUS" <<'EOF'
import json, sys, yaml
settings = dict(json.load(open(sys.argv[1]))["train_svpo"])
for key in ("data", "device"):  # given below / placed by accelerate
    settings.pop(key, None)
total = int(settings.get("batch_size", 1)) * int(settings.get("grad_accum", 1))
settings["batch_size"], settings["grad_accum"] = max(1, total // int(sys.argv[3])), 1
yaml.safe_dump(settings, open(sys.argv[2], "w"), sort_keys=False)
EOF
    run accelerate launch --config_file "$ROOT/configs/accelerate/zero2.yaml" \
        --num_processes "$GPUS" -m svpo_harness.cli train --config "$WHERE/train.yaml" \
        --objective svpo --model "$POLICY" --data "$WHERE/pairs.jsonl" --out "$WHERE/svpo" \
        --seed "$SEED"
    POLICY=$WHERE/svpo
    POLICIES+=("$POLICY")
    LABELS+=("svpo-r$round")
done

# Evaluate every policy (the base and each round's svpo) with each of the recipe's decodings.
mapfile -t DECODINGS < <("$PY" - "$RECIPE_JSON" <<'EOF'
import json, sys
for d in json.load(open(sys.argv[1]))["evaluate"]["decodings"]:
    args = {k: v for k, v in d.items() if k != "name"}
    print(d["name"] + " " + ",".join(f"{k}={v}" for k, v in args.items()))
EOF
)
TASK=$(setting 'evaluate["task"]')
BATCH=$(setting 'evaluate["batch_size"]')
LIMIT=$(setting 'evaluate["limit"] or ""')
RESULTS=()
for k in "${!POLICIES[@]}"; do
    P=${POLICIES[$k]}
    for ENTRY in "${DECODINGS[@]}"; do
        NAME=${ENTRY%% *}
        ARGS=${ENTRY#* }
        DEST=$OUT/eval/${LABELS[$k]}-$NAME
        RESULTS+=("${LABELS[$k]}-$NAME=$DEST")
        run lm_eval --model svpo --tasks "$TASK" --batch_size "$BATCH" ${LIMIT:+--limit "$LIMIT"} \
            --model_args "pretrained=$P,backend=vllm,tensor_parallel_size=$EVAL_TP,$ARGS,search_log=$DEST/search_log.jsonl" \
            --output_path "$DEST" --log_samples
    done
done
run svpo report "${RESULTS[@]}" --out "$OUT/report.md" --html "$OUT/report.html" \
    --reference alphamath
