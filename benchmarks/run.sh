#!/usr/bin/env bash
# ALFIA speed benchmark (issue 4). Default: ~10 min on an idle 2-core CPU; the full sweep: add
#   --sizes 1000,2000,4000,8000   (about 4x longer: inference at 15k stays in all, fp32 and int8).
# Results: benchmarks/results/<host>-<date>.json and .md beside it; copy the table into benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
out="benchmarks/results/$(hostname -s)-$(date +%Y%m%d-%H%M).json"
.venv/bin/python -m alfia.bench --out "$out" "$@"
