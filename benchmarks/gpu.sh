#!/bin/sh
# The prepared GPU run of issue 17, for a device lent for a few minutes: the production
# model's training rate, data share, peak GPU memory, an extrapolated epoch and a 5-member,
# 93-lead forecast, in one command that ends within 6 minutes, CUDA's start included.
# The BENCH lines go to stdout and to $OUT/bench_gpu.txt (./bench_gpu.txt without $OUT).
# It needs python3 with torch, numpy, pandas, xarray and pyyaml (a bare PyTorch image has
# them); floecast is read from src/. `sh benchmarks/gpu.sh --shrink` runs it at a toy size
# on any machine (tests/test_benchmarks.py does).
set -eu
cd "$(dirname "$0")/.."
out="${OUT:-.}/bench_gpu.txt"
if command -v nvidia-smi >/dev/null; then
	nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 \
	timeout 330 "${PYTHON:-python3}" benchmarks/train.py --gpu --out "$out" "$@"
