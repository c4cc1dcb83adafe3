#!/usr/bin/env bash
# Builds both wasm modules (SIMD and baseline) and the wasm test suites, and copies the modules
# into dist/wasm for the TypeScript package.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
emcmake cmake -S . -B build/wasm -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/wasm -j"$(nproc)" "$@"
mkdir -p dist/wasm
for f in webquant-simd webquant; do
  cp build/wasm/$f.mjs build/wasm/$f.wasm dist/wasm/
done
