#!/usr/bin/env bash
# One CUDA GPU, bfloat16: attribution (prompts/s), probing and the (m, n) sweep (fact-conditions/s) on
# Gemma-3-270m, each with its peak GPU memory, one line each (benchmarks/gpu.py; extra arguments pass through,
# e.g. --n-facts 50 --sweep-layers 18), then the real-size held-out run (benchmarks/real_scale.py, every
# language of ../shared/data/facts, bfloat16 head with float32 re-scoring of close calls; resumable, its last
# line is the real-size line).  The code paths are tested on CPU: gpu.py --device cpu --quick and
# tests/test_real_scale_benchmark.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python benchmarks/gpu.py --device cuda --dtype bfloat16 "$@"
python benchmarks/real_scale.py --device cuda --head-dtype bfloat16 --out results/real_scale_gpu
