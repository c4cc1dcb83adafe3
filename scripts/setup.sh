#!/usr/bin/env bash
# Installs everything webquant needs to build and test on a fresh Debian machine:
# Debian packages (only the missing ones) and the npm packages from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v emcc >/dev/null || need+=(emscripten)
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v clang++ >/dev/null || need+=(clang)
[ -f /usr/include/doctest/doctest.h ] || need+=(doctest-dev)
[ -f /usr/include/simde/wasm/simd128.h ] || need+=(libsimde-dev)
[ -x /usr/bin/chromium ] || need+=(chromium)
# clang's libFuzzer and sanitizer runtimes
ls /usr/lib/llvm-14/lib/clang/14*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || need+=(libclang-rt-14-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  # `npm install` with the committed lockfile (not `npm ci`: npm 11 here records rollup's
  # platform-specific optional packages in a way its own `ci` then rejects as out of sync).
  # --ignore-scripts: no package may download binaries at install time.
  npm install --no-audit --no-fund --ignore-scripts
fi
