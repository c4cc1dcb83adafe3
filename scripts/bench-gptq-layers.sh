#!/usr/bin/env bash
# GPTQ's per-layer work on the shapes of one SmolLM2-135M decoder block (synthetic weights and
# inputs, one thread, native -O2), extrapolated to the 30 blocks; prints JSON. Needs the native
# library: cmake -S . -B build/dev && cmake --build build/dev --target webquant_core.
#   bash scripts/bench-gptq-layers.sh [tokens=128]
set -euo pipefail
cd "$(dirname "$0")/.."
g++ -std=c++17 -O2 -Icpp/include -Icpp/src scripts/bench/gptq-layers.cpp build/dev/libwebquant_core.a -lpthread -o build/gptq-layers
build/gptq-layers "${1:-128}"
