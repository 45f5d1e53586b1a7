#!/usr/bin/env bash
# Run the GPU benchmarks on a CUDA machine and write their sections of BENCHMARKS.md:
# task throughput on CUDA, children packed on one GPU, and search quality in a fixed budget.
# The measuring steps need only torch (and PyYAML); rendering needs matplotlib.
#
#   bash benchmarks/gpu_run.sh                  # measure into $OUT, then write BENCHMARKS.md
#   bash benchmarks/gpu_run.sh --no-write       # measure only (a box without matplotlib)
#   bash benchmarks/gpu_run.sh --render DIR     # write BENCHMARKS.md from DIR's JSON results
#
# Results are JSON under $OUT (default: a fresh temporary directory, printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

render() {   # each result that a step produced; a step that timed out leaves its section as it was
    local dir=$1 step
    for step in tasks_throughput:throughput gpu_packing:packing gpu_search:search; do
        if [[ -f "$dir/${step#*:}.json" ]]; then
            "$PY" "benchmarks/${step%%:*}.py" --from "$dir/${step#*:}.json" --write
        else
            echo "no $dir/${step#*:}.json: section of ${step%%:*}.py not written" >&2
        fi
    done
}

if [[ "${1:-}" == "--render" ]]; then
    render "${2:?usage: gpu_run.sh --render DIR}"
    exit 0
fi
OUT=${OUT:-$(mktemp -d -t hyperseq-gpu-bench-XXXX)}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
# each step has its own time box, so a slow one cannot starve the others of their results
timeout 90 "$PY" benchmarks/tasks_throughput.py --device cuda --out "$OUT/throughput.json" \
    2>&1 | tee "$OUT/throughput.log" || true
timeout 180 "$PY" benchmarks/gpu_packing.py --device cuda --children 1 4 8 16 \
    --configs default small --steps 100 --epochs 3 --out "$OUT/packing.json" 2>&1 | tee "$OUT/packing.log" || true
timeout 330 "$PY" benchmarks/gpu_search.py --device cuda --minutes 5 --slots 16 --fixed lr_schedule=cosine \
    --final-race 0.33 --out "$OUT/search.json" 2>&1 | tail -n 40 | tee "$OUT/search.log" || true
if [[ "${1:-}" != "--no-write" ]]; then
    render "$OUT"
fi
echo "results: $OUT"
