#!/usr/bin/env bash
# Decode-GEMV benchmark of the linear layers: builds scripts/bench/bench_gemm.cpp with
# em++ -O3 -msimd128 against the SIMD core library and runs it under Node (V8, one thread).
# Prints per-shape times (scalar reference vs WASM SIMD vs LinearLayer::forward) for SmolLM2-135M
# shapes and every scheme, and the projected decode tokens/s.
# Usage: scripts/bench-gemm.sh [--quick] [--json out.json]     (BENCH_BUILD_DIR overrides the dir)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
dir="${BENCH_BUILD_DIR:-build/bench-wasm}"
emcmake cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j2 --target webquant_core_simd >/dev/null
em++ -std=c++17 -O3 -msimd128 -fno-exceptions -Icpp/include -Icpp/src scripts/bench/bench_gemm.cpp \
  "$dir/libwebquant_core_simd.a" -o "$dir/bench_gemm.js" \
  -sENVIRONMENT=node -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sNODERAWFS=1 -sEXIT_RUNTIME=1
# The repository's package.json says "type": "module"; the generated runner is CommonJS.
echo '{"type": "commonjs"}' > "$dir/package.json"
node --no-experimental-fetch "$dir/bench_gemm.js" "$@"
