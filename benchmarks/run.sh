#!/usr/bin/env bash
# ALFIA speed benchmark (issue 4). Default: ~15 min on an idle 2-core CPU; the full sweep (~30 min): add
#   --sizes 1000,2000,4000,8000   (fp32 inference at 15k stays in all; int8 at --stays only).
# Results: benchmarks/results/<host>-<date>.json and .md beside it; to publish, copy them to results/bench/cpu.json
# and cpu.md, then run scripts/readme_tables.py (see benchmarks/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p benchmarks/results
out="benchmarks/results/$(hostname -s)-$(date +%Y%m%d-%H%M).json"
.venv/bin/python -m alfia.cli bench --out "$out" "$@"
