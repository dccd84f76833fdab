#!/usr/bin/env bash
# Train the compact preset through the CLI and evaluate it (the figures in docs/benchmarks.md).
#
#   flock /tmp/cpu.lock bash benchmarks/run_compact_eval.sh DATA ANOMALY_SOURCE|builtin MINUTES SEED [OUT_DIR]
#
# e.g. flock /tmp/cpu.lock bash benchmarks/run_compact_eval.sh ../shared/data/magnetic_tile \
#          ../shared/data/anomaly_source 15 0
# Prints the CLI's evaluation and appends one JSON line (configuration + metrics +
# training steps/time) to OUT_DIR/compact_results.jsonl (default /tmp/compact_eval).
set -euo pipefail
data=$1; source=$2; minutes=$3; seed=$4; out=${5:-/tmp/compact_eval}
mkdir -p "$out"
name="$(basename "$data")_${source##*/}_${minutes}min_seed${seed}"
ckpt="$out/$name.pt"
src_args=()
if [ "$source" != "builtin" ]; then src_args=(--anomaly-source "$source"); fi
cd "$(dirname "$0")/.."
t0=$(date +%s)
python main.py train --data "$data" --out "$ckpt" --preset compact --minutes "$minutes" \
    --seed "$seed" "${src_args[@]}" 2>&1 | tr '\r' '\n' | grep -v '^\s*$' | tail -n 3
t1=$(date +%s)
python main.py evaluate --model "$ckpt" --data "$data" --json > "$out/$name.eval.txt"
grep -v '^{' "$out/$name.eval.txt" || true
python - "$out/$name.eval.txt" "$ckpt" "$name" "$((t1 - t0))" "$out/compact_results.jsonl" <<'PY'
import json, sys
ev_path, ckpt, name, wall, dest = sys.argv[1:]
ev = json.loads([line for line in open(ev_path) if line.startswith("{")][-1])
import torch
meta = torch.load(ckpt, weights_only=True)
row = {"run": name, "steps": int(meta.get("step", 0)), "train_wall_s": int(wall),
       "train_state": {k: v for k, v in (meta.get("train_state") or {}).items() if k in ("elapsed_s", "data_wait_s")},
       **ev}
open(dest, "a").write(json.dumps(row) + "\n")
print("RESULT", json.dumps(row))
PY
