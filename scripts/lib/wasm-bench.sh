# Builds a benchmark program with em++ against one of the wasm core libraries and runs it under
# Node; sourced by the scripts/bench-*.sh that time C++ code (bench-gemm.sh, bench-decode-threads.sh).
#   wasm_bench <default build dir> <core library target> <source .cpp> [em++ flags...] -- [program args...]
# BENCH_BUILD_DIR overrides the build dir. Call it from the repository root with scripts/env.sh sourced.
wasm_bench() {
  local dir="${BENCH_BUILD_DIR:-$1}" lib="$2" src="$3"
  shift 3
  local flags=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do flags+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  local name
  name="$(basename "$src" .cpp)"
  emcmake cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$dir" -j2 --target "$lib" >/dev/null
  em++ -std=c++17 -O3 -fno-exceptions -Icpp/include -Icpp/src "${flags[@]}" "$src" "$dir/lib$lib.a" \
    -o "$dir/$name.js" -sENVIRONMENT=node -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sNODERAWFS=1 \
    -sEXIT_RUNTIME=1
  # The repository's package.json says "type": "module"; the generated runner is CommonJS.
  echo '{"type": "commonjs"}' > "$dir/package.json"
  node --no-experimental-fetch "$dir/$name.js" "$@"
}
