// One include for WASM SIMD128 intrinsics. In an Emscripten build with -msimd128 this is the real
// <wasm_simd128.h>; in a native build SIMDe provides the same names, so the same kernels compile
// and run under the sanitizers. The baseline (no-SIMD) WASM build sets WEBQUANT_SIMD to 0 and the
// __wasmsimd kernels are not compiled at all.
#pragma once

#if defined(__EMSCRIPTEN__)
#if defined(__wasm_simd128__)
#include <wasm_simd128.h>
#define WEBQUANT_SIMD 1
#else
#define WEBQUANT_SIMD 0
#endif
#else
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/wasm/simd128.h>
#define WEBQUANT_SIMD 1
#endif
