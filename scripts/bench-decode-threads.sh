#!/usr/bin/env bash
# How a decode step's linear layers scale from 1 to 2 threads, apart from the rest of the step:
# builds scripts/bench/bench_decode_threads.cpp with em++ -O3 -msimd128 -pthread against the
# pthreads core library and runs it under Node (SmolLM2-135M shapes, SYNTHETIC weights). See the
# .cpp for the passes. Run it on a quiet machine (nothing else building).
# Usage: scripts/bench-decode-threads.sh [--scheme w8a8|w8a16|w4a16|w4a8] [--iters 40] [--json out.json]
#        (BENCH_BUILD_DIR overrides the build dir)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
dir="${BENCH_BUILD_DIR:-build/bench-wasm-mt}"
emcmake cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j2 --target webquant_core_simd_mt >/dev/null
em++ -std=c++17 -O3 -msimd128 -pthread -fno-exceptions -Icpp/include -Icpp/src \
  scripts/bench/bench_decode_threads.cpp "$dir/libwebquant_core_simd_mt.a" -o "$dir/bench_decode_threads.js" \
  -sENVIRONMENT=node -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sNODERAWFS=1 -sEXIT_RUNTIME=1 \
  -sPTHREAD_POOL_SIZE=2
# The repository's package.json says "type": "module"; the generated runner is CommonJS.
echo '{"type": "commonjs"}' > "$dir/package.json"
node --no-experimental-fetch "$dir/bench_decode_threads.js" "$@"
