#!/usr/bin/env bash
# The paper's setting on a GPU (issue 20): `alfia bench --profile paper --device cuda` on a random BERT-large-shaped
# backbone and on MiniLM, fp32 / TF32 / bf16 (+ bf16 with gradient checkpointing): training stays/s, inference
# ms/stay at batch 16 x 512 tokens and at set-A lengths, peak GPU memory, FLOPs against the GPU's peak. Sized to
# finish well within 8 minutes on one H100; nothing is downloaded. How to read it: docs/speed.md.
#
#   bash benchmarks/gpu.sh [FOLDER] [alfia bench options]
#
# FOLDER: where the JSON and its markdown table go (default $OUT when set, else benchmarks/results). Options pass
# through and win over the defaults, e.g. the CPU smoke run of the test suite: bash benchmarks/gpu.sh DIR --device
# cpu --tiny. PYTHON: the interpreter (default the project's .venv/bin/python).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
folder="${OUT:-$root/benchmarks/results}"
if [[ $# -gt 0 && "$1" != -* ]]; then
    folder="$1"
    shift
fi
python="${PYTHON:-$root/.venv/bin/python}"
mkdir -p "$folder"
folder="$(cd "$folder" && pwd)"   # the command runs from the repository root
out="$folder/gpu-$(hostname -s)-$(date +%Y%m%d-%H%M%S).json"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1   # nothing may download: the backbones are local or built here
if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
fi
start=$SECONDS
cd "$root"
"$python" -m alfia.cli bench --profile paper --device cuda --out "$out" "$@"
echo "benchmarks/gpu.sh: $((SECONDS - start)) s"
