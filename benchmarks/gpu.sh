#!/usr/bin/env bash
# One GPU session, one script (issues 20 and 30): everything it writes goes into FOLDER, and FOLDER/summary.md says
# what it found. Three steps, each timed ($SECONDS) and its exit status recorded; a failed step does not stop the
# others, the script exits 1 after the summary if one failed. Nothing is downloaded (the backbones are local or built
# here). How to read it: docs/speed.md ("The paper's setting on a GPU").
#
#   bash benchmarks/gpu.sh [FOLDER] [alfia bench options]
#
# 1. bench   `alfia bench --profile paper --device cuda`: the fixed-shape kernel figures (a random BERT-large-shaped
#            backbone and MiniLM; fp32 / TF32 / bf16, + bf16 with gradient checkpointing: training stays/s, inference
#            ms/stay at batch 16 x 512 tokens and at set-A lengths, peak GPU memory, FLOPs against the GPU's peak),
#            then `alfia train`'s own loop on the BERT-large shape (fp32 / TF32 / bf16 / fp16 rows: stays/s, the
#            measured backward/forward ratio, peak GPU memory) and the paper's setting's cost computed from that
#            ratio. -> gpu-<host>-<date>.json and .md, bench.log. Expected on one H100: ~3-4 min (not yet measured).
# 2. model   the model question: does fine-tuning with the paper's mechanics move ALFIA toward the trees? `alfia train
#            p12-a --profile paper` (LoRA r 16 on every layer, the fusion N_f 4 and the attentional head, the class-
#            weighted loss, Platt scaling; the default MiniLM backbone; precision auto: bf16 on an H100) for EPOCHS
#            epochs (default 3; the paper's 25 do not fit the session) at batch BATCH (default 4, the paper's, 750
#            steps per epoch on set A's 3,000 training stays, at the paper's lr 1e-4; another BATCH scales the lr
#            linearly, lr = 1e-4 x BATCH / 4), then `alfia predict RUN p12-b`: set B's 4,000 stays scored, AUPRC and
#            AUROC with bootstrap 95% CIs. -> model-question/ (run/, p12-b.predictions.parquet, p12-b.metrics.json,
#            train.log, predict.log). Expected on one H100: ~15-25 s per epoch (launch-bound at batch 4) + ~40 s of
#            loading and scoring, ~1.5-2 min at 3 epochs (not yet measured).
# 3. tests   `pytest -m gpu` (tests/gpu) -> gpu-tests.xml (junit) and gpu-tests.log. Expected: ~1 min.
# Sized for 8 minutes on one H100 in all; summary.md lists each step's seconds, so that a next session can set
# EPOCHS (or STEPS) to what fits.
#
# FOLDER: default $OUT when set (the device tool returns what is written there), else benchmarks/results. Options
# pass through to `alfia bench` and win over its defaults. The CPU smoke run of the test suite:
#   bash benchmarks/gpu.sh DIR --device cpu --tiny
# runs every step on the CPU in about a minute: the bench's tiny shapes, the model question on a tiny random
# backbone with 128 stays of set A (1 epoch) and 400 of set B (never the real MiniLM training), the GPU tests
# skipped with their reasons. Environment: PYTHON (default the project's .venv/bin/python), EPOCHS, BATCH,
# STEPS (default "bench model tests": the steps to run).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
folder="${OUT:-$root/benchmarks/results}"
if [[ $# -gt 0 && "$1" != -* ]]; then
    folder="$1"
    shift
fi
python="${PYTHON:-$root/.venv/bin/python}"
steps="${STEPS:-bench model tests}"
mkdir -p "$folder"
folder="$(cd "$folder" && pwd)"   # the commands run from the repository root
out="$folder/gpu-$(hostname -s)-$(date +%Y%m%d-%H%M%S).json"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # nothing may download

# the bench's --device and --tiny decide the other steps' too
device=cuda
tiny=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --tiny) tiny=1 ;;
        --device) device="${args[i + 1]:-cuda}" ;;
        --device=*) device="${args[i]#--device=}" ;;
    esac
done
epochs="${EPOCHS:-$([[ $tiny == 1 ]] && echo 1 || echo 3)}"
batch="${BATCH:-4}"
lr="$("$python" -c "print(f'{1e-4 * $batch / 4:g}')")"   # the paper's 1e-4 at batch 4, scaled linearly

if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 \
        | tee "$folder/nvidia-smi.txt" || true
fi
cd "$root"
start=$SECONDS
failed=0
summary_steps=()

# step NAME LOG COMMAND...: COMMAND's output on the console and in LOG; its seconds and exit status recorded
step() {
    local name="$1" log="$2" rc t0=$SECONDS
    shift 2
    echo "== $name: $*"
    set +e
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    echo "== $name: $((SECONDS - t0)) s, exit status $rc"
    if [[ $rc != 0 ]]; then
        failed=1
        { echo "benchmarks/gpu.sh: step $name failed (exit status $rc); the end of $log:"; tail -n 40 "$log"; } >&2
    fi
    summary_steps+=(--step "$name:$rc:$((SECONDS - t0))")
}

wants() { [[ " $steps " == *" $1 "* ]]; }

# 1. the paper's setting: kernel figures and the trainer's own loop
if wants bench; then
    step bench "$folder/bench.log" "$python" -m alfia.cli bench --profile paper --device cuda --out "$out" "$@"
fi

# 2. the model question: ALFIA with the paper's mechanics trained on set A, set B scored
mq="$folder/model-question"
if wants model; then
    mkdir -p "$mq"
    cohort=p12-a
    external=p12-b
    backbone=()   # the default: the packaged MiniLM
    if [[ $tiny == 1 ]]; then   # a tiny random backbone and samples of set A and set B: seconds on a CPU
        step tiny-inputs "$mq/tiny-inputs.log" "$python" -m alfia.bench.gpu_script tiny-inputs "$mq/tiny"
        cohort="$mq/tiny/p12-a-tiny.parquet"
        external="$mq/tiny/p12-b-tiny.parquet"
        backbone=(--backbone "$mq/tiny/backbone")
    fi
    rm -rf "$mq/run"   # a run folder of an earlier session in this FOLDER
    step train "$mq/train.log" "$python" -m alfia.cli train "$cohort" --out "$mq/run" --profile paper \
        "${backbone[@]}" --epochs "$epochs" --batch-size "$batch" --lr "$lr" --device "$device"
    step predict-p12-b "$mq/predict.log" "$python" -m alfia.cli predict "$mq/run" "$external" \
        --out "$mq/p12-b.predictions.parquet" --device "$device"
fi

# 3. the GPU tests (skipped with their reasons without CUDA)
if wants tests; then
    step gpu-tests "$folder/gpu-tests.log" "$python" -m pytest -q -p no:cacheprovider -m gpu tests/gpu \
        --junitxml "$folder/gpu-tests.xml"
fi

summary_args=(--device "$device" "${summary_steps[@]}")
[[ -f "$out" ]] && summary_args+=(--bench "$out")
[[ -d "$mq/run" ]] && summary_args+=(--run "$mq/run")
[[ -f "$mq/p12-b.metrics.json" ]] && summary_args+=(--external "$mq/p12-b.metrics.json")
[[ -f "$folder/gpu-tests.xml" ]] && summary_args+=(--tests "$folder/gpu-tests.xml")
[[ $tiny == 1 ]] && summary_args+=(--tiny)
"$python" -m alfia.bench.gpu_script summary "$folder" "${summary_args[@]}"
echo "benchmarks/gpu.sh: $((SECONDS - start)) s; everything is in $folder (summary.md)"
exit "$failed"
