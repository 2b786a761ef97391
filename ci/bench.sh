#!/usr/bin/env bash
# The benchmark suite on this host: per-target kernel micro-benchmark (one
# core, data in cache) and `q6bit bench` on a model preset with all cores.
#   bash ci/bench.sh OUT_DIR [PRESET] [extra q6bit-bench args...]
# Expects q6bit built (ci/setup.sh) and libbenchmark-dev installed.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:?usage: ci/bench.sh OUT_DIR [PRESET] [args...]}
PRESET=${2:-qwen3-1.7b}
shift $(( $# > 1 ? 2 : 1 ))
PY=${PYTHON:-python3}
mkdir -p "$OUT"
BUILD=${Q6BIT_BENCH_BUILD:-$REPO/build-bench}

echo "=== host"; { date -u; nproc; grep -m1 "model name" /proc/cpuinfo;
  cat /sys/kernel/mm/transparent_hugepage/enabled; g++ --version | head -1;
  "$PY" -c 'import torch; print("torch", torch.__version__)'; } | tee "$OUT/host.txt"

echo "=== kernel micro-benchmark, one thread, every runnable target"
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DQ6BIT_BUILD_BENCHMARKS=ON -DQ6BIT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" >/dev/null
"$BUILD/tests/cpp/q6bit_kernel_bench" --benchmark_min_time=0.5 \
  --benchmark_out="$OUT/kernel_bench.json" --benchmark_out_format=json 2>&1 | tee "$OUT/kernel_bench.txt"

echo "=== q6bit bench --preset $PRESET $*"
PYTHONUNBUFFERED=1 "$PY" -m q6bit.cli.bench --preset "$PRESET" --json "$OUT/bench-$PRESET.json" "$@" \
  2>"$OUT/bench-$PRESET.err" | tee "$OUT/bench-$PRESET.txt"
