#!/usr/bin/env bash
# Native build of the core and its doctest suite. Usage: build-native.sh [release|sanitize|fuzz]
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-release}"
case "$kind" in
  release)  cmake -S . -B build/native -DCMAKE_BUILD_TYPE=Release >/dev/null
            cmake --build build/native -j"$(nproc)" ;;
  sanitize) cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DWEBQUANT_SANITIZE=ON >/dev/null
            cmake --build build/asan -j"$(nproc)" ;;
  fuzz)     CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DWEBQUANT_FUZZ=ON >/dev/null
            cmake --build build/fuzz -j"$(nproc)" ;;
  *) echo "usage: $0 [release|sanitize|fuzz]" >&2; exit 2 ;;
esac
