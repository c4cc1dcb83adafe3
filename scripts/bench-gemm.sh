#!/usr/bin/env bash
# Decode-GEMV benchmark of the linear layers: builds scripts/bench/bench_gemm.cpp with
# em++ -O3 -msimd128 against the SIMD core library and runs it under Node (V8, one thread).
# Prints per-shape times (scalar reference vs WASM SIMD vs LinearLayer::forward) for SmolLM2-135M
# shapes and every scheme, and the projected decode tokens/s.
# Usage: scripts/bench-gemm.sh [--quick] [--json out.json]     (BENCH_BUILD_DIR overrides the dir)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/lib/wasm-bench.sh
wasm_bench build/bench-wasm webquant_core_simd scripts/bench/bench_gemm.cpp -msimd128 -- "$@"
