#!/usr/bin/env bash
# BENCHMARKS.md sections 3 (GPU packing) and 4 (quality found), plus the tasks' CUDA throughput,
# in ONE call on the GPU machine (torch only: no Ray, MLflow or Optuna there). About 9 minutes.
#
#   here:    .venv/bin/pip install --target .devdeps pyyaml      # the search space is YAML
#   device:  bash benchmarks/device_run.sh                        # run with carry [".devdeps"]
#   here:    bash benchmarks/device_run.sh --render DIR           # DIR = where $OUT came back
#
# Results are JSON under $OUT (benchmarks/results/device when unset); --render writes them into
# BENCHMARKS.md with the same scripts (`--from FILE --write`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--render" ]]; then
    dir=${2:?usage: device_run.sh --render DIR}
    "$PY" benchmarks/gpu_packing.py --from "$dir/packing.json" --write
    "$PY" benchmarks/gpu_search.py --from "$dir/search.json" --write
    cp "$dir/throughput.json" benchmarks/results/tasks_throughput_cuda.json
    exit 0
fi
OUT=${OUT:-benchmarks/results/device}
mkdir -p "$OUT"
export PYTHONPATH=".devdeps${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
# each step keeps its own time box, so a slow one cannot starve the others of their results
timeout 90 "$PY" benchmarks/tasks_throughput.py --device cuda --out "$OUT/throughput.json" \
    2>&1 | tee "$OUT/throughput.log" || true
timeout 180 "$PY" benchmarks/gpu_packing.py --device cuda --children 1 4 8 16 \
    --configs default small --steps 100 --epochs 3 --out "$OUT/packing.json" 2>&1 | tee "$OUT/packing.log" || true
timeout 330 "$PY" benchmarks/gpu_search.py --device cuda --minutes 5 --slots 16 --fixed lr_schedule=cosine --final-race 0.33 \
    --out "$OUT/search.json" 2>&1 | tail -n 40 | tee "$OUT/search.log" || true
