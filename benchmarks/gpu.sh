#!/usr/bin/env bash
# One CUDA GPU, bfloat16: attribution (prompts/s), probing and the (m, n) sweep (fact-conditions/s) on
# Gemma-3-270m, each with its peak GPU memory, one line each (benchmarks/gpu.py; extra arguments pass through,
# e.g. --n-facts 50 --sweep-layers 18).  The code path is tested on CPU: --device cpu --quick.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
exec python benchmarks/gpu.py --device cuda --dtype bfloat16 "$@"
