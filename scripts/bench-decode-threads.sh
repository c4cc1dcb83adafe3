#!/usr/bin/env bash
# How a decode step's linear layers scale from 1 to 2 threads, apart from the rest of the step:
# builds scripts/bench/bench_decode_threads.cpp with em++ -O3 -msimd128 -pthread against the
# pthreads core library and runs it under Node (SmolLM2-135M shapes, SYNTHETIC weights). See the
# .cpp for the passes. Run it on a quiet machine (nothing else building).
# Usage: scripts/bench-decode-threads.sh [--scheme w8a8|w8a16|w4a16|w4a8] [--iters 40] [--layers 30] [--json out.json]
#        (BENCH_BUILD_DIR overrides the build dir)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/lib/wasm-bench.sh
wasm_bench build/bench-wasm-mt webquant_core_simd_mt scripts/bench/bench_decode_threads.cpp -msimd128 -pthread \
  -sPTHREAD_POOL_SIZE=2 -- "$@"
