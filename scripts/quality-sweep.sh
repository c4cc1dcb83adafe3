#!/usr/bin/env bash
# Native sweep of HQQ / GPTQ variants on the real stories260K (scripts/bench/quality-sweep.cpp).
# Needs the native library (cmake -S . -B build/rel -DCMAKE_BUILD_TYPE=Release && cmake --build
# build/rel --target webquant_core) and the token ids (node --no-experimental-fetch
# scripts/bench/quality-sweep-tokens.mjs > build/quality-sweep-tokens.txt).
#   bash scripts/quality-sweep.sh ["int4 g32 hqq" ...]   (variant name prefixes; none = all)
set -euo pipefail
cd "$(dirname "$0")/.."
g++ -std=c++17 -O2 -Icpp/include -Icpp/src -DWQ_SHARED_DIR="\"$(pwd)/../shared\"" scripts/bench/quality-sweep.cpp \
  build/rel/libwebquant_core.a -lpthread -o build/quality-sweep
build/quality-sweep "$@"
