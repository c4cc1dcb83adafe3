#!/usr/bin/env bash
# Runs the end-to-end tests (tests/e2e) in headless Chromium against pages served on 127.0.0.1.
# Assumes the wasm modules are already in dist/wasm (scripts/build-wasm.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f dist/wasm/webquant-simd.wasm ]; then
  echo "dist/wasm/webquant-simd.wasm missing: run scripts/build-wasm.sh first" >&2
  exit 1
fi
npm run --silent build:ts
npx tsc -p tsconfig.test.json
mkdir -p test-artifacts
node --test --test-reporter=spec build/tests/e2e/
