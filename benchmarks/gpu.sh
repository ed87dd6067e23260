#!/usr/bin/env bash
# GPU checks and benchmarks in one go (what the README's performance figures come from):
#   bash benchmarks/gpu.sh OUT_DIR
# CUDA tests (metric functions, the CUDA-graph training step), then the training benchmark (the default
# config and the CUDA-graph variants against the plain loop) and the metric benchmark on the GPU.
set -u
out=${1:-bench_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)" | tee -a "$out/gpu.txt"
timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_geometry.py tests/test_reliability.py \
    tests/test_deepfool.py tests/test_models.py tests/test_train.py -k cuda 2>&1 \
    | tail -25 | tee "$out/gpu_tests.txt"
timeout 300 python3 -m benchmarks.bench_train --device cuda --out "$out/bench_train.json" 2>&1 | tee "$out/bench_train.txt"
timeout 110 python3 -m benchmarks.bench_metrics --device cuda --out "$out/bench_metrics.json" 2>&1 | tee "$out/bench_metrics.txt"
