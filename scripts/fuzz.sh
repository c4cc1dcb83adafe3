#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz with clang (ASan + UBSan, the library instrumented
# too), writes seed corpora with make_fuzz_seeds, and runs every target for N seconds each.
# Usage: scripts/fuzz.sh [seconds per target, default 30]
# Env: WQ_FUZZ_BUILD_DIR (default build/fuzz), WQ_FUZZ_TARGETS (default: every tests/fuzz/*.cpp).
# Fails on any crash, sanitizer report, leak or timeout; the input is kept under
# $WQ_FUZZ_BUILD_DIR/artifacts/ and its path printed. The grown corpus persists between runs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
build="${WQ_FUZZ_BUILD_DIR:-build/fuzz}"
shared="$(cd .. && pwd)/shared"

if [ -n "${WQ_FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$WQ_FUZZ_TARGETS"
else
  targets=()
  for f in tests/fuzz/*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DWEBQUANT_FUZZ=ON >/dev/null
cmake --build "$build" -j2 --target make_fuzz_seeds "${targets[@]}"

rm -rf "$build/seeds"
"$build/make_fuzz_seeds" "$build/seeds" "$shared"
mkdir -p "$build/artifacts"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$build/corpus/$t" "$build/seeds/$t"
  args=(-max_len=65536 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$build/artifacts/$t-")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
  echo "--- $t: ${secs}s, seeds: $(ls "$build/seeds/$t" | wc -l), corpus: $(ls "$build/corpus/$t" | wc -l)"
  log="$build/$t.log"
  if "$build/$t" "${args[@]}" "$build/corpus/$t" "$build/seeds/$t" >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE" "$log" || true
  else
    echo "!!! $t failed; log tail:"
    tail -n 40 "$log"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (inputs in $build/artifacts/)"
  exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${secs}s each without a finding"
