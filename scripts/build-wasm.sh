#!/usr/bin/env bash
# Builds the wasm modules (SIMD, baseline, SIMD + pthreads) and the wasm test suites, and copies
# the modules that were built into dist/wasm for the TypeScript package. Extra arguments go to
# `cmake --build`, e.g. `--target webquant-simd-mt`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/wasm -j"$(nproc)" "$@"
mkdir -p dist/wasm
for f in webquant-simd webquant webquant-simd-mt; do
  [ -f build/wasm/$f.wasm ] || continue
  cp build/wasm/$f.mjs build/wasm/$f.wasm dist/wasm/
  [ -f build/wasm/$f.worker.js ] && cp build/wasm/$f.worker.js dist/wasm/
done
# The pthreads worker script is CommonJS (Node's worker_threads load it as a script); the .mjs
# glue stays an ES module by its extension.
echo '{"type": "commonjs"}' > dist/wasm/package.json
