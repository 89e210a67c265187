#!/usr/bin/env bash
# The flagship on a GPU in a few minutes: forward and training step (backbone fine-tuned) at
# batch 16, bf16 autocast and fp32, each against the bare backbone measured in the same run.
#
# Usage: tools/gpu_benchmark.sh              (writes work_dirs/benchmark_gpu/{bf16,fp32}/)
# Overrides: CONFIG=... BATCH=16 DEVICE=cuda PYTHON=python OUT=work_dirs/benchmark_gpu
# (DEVICE=cpu CONFIG=configs/transformatcher_tiny.py BATCH=2 checks the plumbing on a CPU.)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
CONFIG=${CONFIG:-configs/transformatcher_spair.py}
BATCH=${BATCH:-16}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-work_dirs/benchmark_gpu}
for precision in bf16 fp32; do
    if [ "$DEVICE" = cpu ] && [ "$precision" = bf16 ]; then continue; fi
    "$PYTHON" tools/benchmark.py "$CONFIG" --device "$DEVICE" --precision "$precision" \
        --batch-sizes "$BATCH" --warmup 3 --repeats 10 --out-dir "$OUT/$precision"
done
echo "reports: $OUT/*/benchmark.md"
