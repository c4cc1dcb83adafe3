#!/usr/bin/env bash
# Builds the TypeScript package and its tests, then runs the unit tests (tests/web) in Node.
# Assumes the wasm modules are already in dist/wasm (scripts/build-wasm.sh; scripts/test.sh runs
# it first).
set -euo pipefail
cd "$(dirname "$0")/.."
for f in webquant-simd webquant webquant-simd-mt; do
  if [ ! -f "dist/wasm/$f.wasm" ] || [ ! -f "dist/wasm/$f.mjs" ]; then
    echo "dist/wasm/$f.{wasm,mjs} missing: run scripts/build-wasm.sh first" >&2
    exit 1
  fi
done
npm run --silent build:ts
npx tsc -p tsconfig.test.json
node --test --test-reporter=spec build/tests/web/
