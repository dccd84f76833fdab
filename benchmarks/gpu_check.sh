#!/usr/bin/env bash
# One-GPU check (about 6-8 minutes): paper-preset s/step fp32 vs AMP, inference ms per
# image, AMP-vs-fp32 anomaly-map difference, compact and PatchCore on CUDA, a short
# paper-preset training on the demo set with metrics. Writes one JSON results file.
#
#   bash benchmarks/gpu_check.sh [RESULTS.json]     (default: gpu_check_results.json)
#   bash benchmarks/gpu_check.sh "$OUT/gpu_check.json"   (on a lent machine: only $OUT comes back)
#   python benchmarks/gpu_check.py --dry-run --out /tmp/dry.json   (CPU, toy sizes: plumbing only)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check_results.json}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 480 python benchmarks/gpu_check.py --out "$out"
echo "results: $out"
