#!/usr/bin/env bash
# Runs every webquant test on a fresh machine: installs what is missing, then
#  1. the C++ suite natively with AddressSanitizer + UndefinedBehaviorSanitizer (SIMD kernels via SIMDe),
#  2. the C++ suite as WASM under Node: SIMD build, baseline build and the SIMD + pthreads build,
#  3. a short libFuzzer run of the safetensors and JSON parsers,
#  4. the TypeScript unit tests in Node (package API, Hub client, models, packaging),
#  5. the end-to-end tests in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

bash scripts/setup.sh

passed=0
failed=0
failures=()
step() {
  local name="$1"; shift
  echo
  echo "=== $name ==="
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s) ==="
  else
    failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s) ==="
  fi
}

native_tests() {
  bash scripts/build-native.sh sanitize && build/asan/webquant_tests
}
wasm_tests() {
  bash scripts/build-wasm.sh &&
    (cd build/wasm && node --no-experimental-fetch webquant-tests-simd.js) &&
    (cd build/wasm && node --no-experimental-fetch webquant-tests-base.js) &&
    (cd build/wasm && node --no-experimental-fetch webquant-tests-simd_mt.js)
}
fuzz() { bash scripts/fuzz.sh "${WEBQUANT_FUZZ_SECONDS:-20}"; }
web_tests() { bash scripts/test-web.sh; }
e2e_tests() { bash scripts/test-e2e.sh; }

step "C++ tests, native, ASan+UBSan" native_tests
step "C++ tests, wasm (SIMD, baseline, SIMD + pthreads) under Node" wasm_tests
step "fuzz parsers" fuzz
step "TypeScript unit tests (Node)" web_tests
step "end-to-end tests (Chromium)" e2e_tests

echo
if [ "$failed" -gt 0 ]; then
  echo "failed suites: ${failures[*]}"
fi
echo "test suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
