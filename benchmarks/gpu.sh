#!/usr/bin/env bash
# GPU checks and benchmarks in one go (what the README's performance figures come from):
#   bash benchmarks/gpu.sh OUT_DIR [STAGES]       STAGES: comma-separated, default tests,train,floor,pack
# tests:   the CUDA tests (metric functions, the CUDA-graph training step against eager steps)
# train:   bench_train, the default config and the CUDA-graph variants against the plain loop
# floor:   gpu_floor, launch cost, matmul TFLOP/s and a bare ResNet18 step eager / compiled / one CUDA graph
# pack:    gpu_pack, 1, 2, 4 and 8 jobs sharing the GPU (time-sliced, and under CUDA MPS where it starts),
#          with the fastest setting bench_train found
# metrics: bench_metrics, the metric suite, Mahalanobis and DeepFool against straightforward versions
# The default stages' timeouts add up to under 10 minutes, one device command; at most 8 files land in OUT_DIR.
set -u
out=${1:-bench_out}
stages=",${2:-tests,train,floor,pack},"
mkdir -p "$out"
export PYTHONUNBUFFERED=1
{ date -u +%FT%TZ; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"
  echo "mps control: $(command -v nvidia-cuda-mps-control || echo none)"; } 2>&1 | tee "$out/gpu.txt"
if [[ $stages == *,tests,* ]]; then
  timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_geometry.py tests/test_reliability.py \
      tests/test_deepfool.py tests/test_models.py tests/test_train.py -k cuda 2>&1 | tail -25 | tee "$out/gpu_tests.txt"
fi
if [[ $stages == *,train,* ]]; then
  timeout 140 python3 -m benchmarks.bench_train --device cuda --out "$out/bench_train.json" 2>&1 | tee "$out/bench_train.txt"
fi
if [[ $stages == *,floor,* ]]; then
  timeout 40 python3 -m benchmarks.gpu_floor --device cuda --out "$out/gpu_floor.json" 2>&1 | tee "$out/gpu_floor.txt"
fi
if [[ $stages == *,pack,* ]]; then
  from=(); [[ -f $out/bench_train.json ]] && from=(--overrides-from "$out/bench_train.json")
  timeout 160 python3 -m benchmarks.gpu_pack --device cuda --jobs 1,2,4,8 --seconds 8 "${from[@]}" \
      --out "$out/gpu_pack.json" 2>&1 | tee "$out/gpu_pack.txt"
fi
if [[ $stages == *,metrics,* ]]; then
  timeout 100 python3 -m benchmarks.bench_metrics --device cuda --out "$out/bench_metrics.json" 2>&1 | tee "$out/bench_metrics.txt"
fi
