// Element-wise kernels. Every kernel has a plain scalar reference (`__ref`, written for clarity,
// compiled without auto-vectorization, never tuned) and a WASM SIMD128 version (`__wasmsimd`, which
// carries its own scalar tail). `best::` picks the SIMD one when this build has SIMD.
// Naming follows XNNPACK: <op>_<input>_<output>[_<variant>]__<isa>.
// All pointers must be valid for n elements; outputs never alias inputs.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd.h"

namespace webquant::kernels {

// ---- reduce: min and max of n >= 1 floats, and whether every value is finite. ----
struct MinMax {
  float min;
  float max;
  bool finite;  // false if any NaN or +-Inf was seen (min/max are then unspecified)
};
MinMax minmax_f32__ref(const float* x, size_t n);
MinMax minmax_f32__wasmsimd(const float* x, size_t n);

// ---- reduce: the index of the first maximum of n >= 1 floats, and whether every value is finite
// (the index is unspecified when one is not: NaN and Inf need the caller's own rules). ----
struct ArgMax {
  size_t index;
  bool finite;
};
ArgMax argmax_f32__ref(const float* x, size_t n);
ArgMax argmax_f32__wasmsimd(const float* x, size_t n);

// ---- math: e^x and SiLU over n floats (kernels/math/exp_scalar.h): y = e^x (x and y may be the
// same array), bit for bit musl's expf, so the wasm builds give std::exp's results; SiLU in place,
// x = x / (1 + e^-x), times u[i] when u is not null (the gated MLP's act(gate) * up). ----
void exp_f32__ref(const float* x, float* y, size_t n);
void exp_f32__wasmsimd(const float* x, float* y, size_t n);
void silu_f32__ref(float* x, const float* u, size_t n);
void silu_f32__wasmsimd(float* x, const float* u, size_t n);

// ---- quantize: q = clamp(nearest_even(x / scale + zero_point), qmin, qmax). ----
// The result is written as its low byte: int8 two's complement for signed ranges, uint8 otherwise.
// zero_point, qmin, qmax are integers given as floats (exact). x must be finite.
void quantize_f32_q8__ref(const float* x, size_t n, float scale, float zero_point, float qmin,
                          float qmax, uint8_t* q);
void quantize_f32_q8__wasmsimd(const float* x, size_t n, float scale, float zero_point, float qmin,
                               float qmax, uint8_t* q);

// Per-element parameters (per-channel along the last axis): scale[i], zero_point[i] for x[i].
void quantize_f32_q8_vparams__ref(const float* x, size_t n, const float* scale,
                                  const float* zero_point, float qmin, float qmax, uint8_t* q);
void quantize_f32_q8_vparams__wasmsimd(const float* x, size_t n, const float* scale,
                                       const float* zero_point, float qmin, float qmax,
                                       uint8_t* q);

// ---- dequantize: y = (float(q) - zero_point) * scale. ----
void dequantize_s8_f32__ref(const int8_t* q, size_t n, float scale, float zero_point, float* y);
void dequantize_s8_f32__wasmsimd(const int8_t* q, size_t n, float scale, float zero_point, float* y);
void dequantize_u8_f32__ref(const uint8_t* q, size_t n, float scale, float zero_point, float* y);
void dequantize_u8_f32__wasmsimd(const uint8_t* q, size_t n, float scale, float zero_point,
                                 float* y);

// ---- convert: fp32 <-> fp16 / bf16 (semantics in webquant/convert.h). ----
void convert_f32_f16__ref(const float* x, size_t n, uint16_t* y);
void convert_f32_f16__wasmsimd(const float* x, size_t n, uint16_t* y);
void convert_f16_f32__ref(const uint16_t* x, size_t n, float* y);
void convert_f16_f32__wasmsimd(const uint16_t* x, size_t n, float* y);
void convert_f32_bf16__ref(const float* x, size_t n, uint16_t* y);
void convert_f32_bf16__wasmsimd(const float* x, size_t n, uint16_t* y);
void convert_bf16_f32__ref(const uint16_t* x, size_t n, float* y);
void convert_bf16_f32__wasmsimd(const uint16_t* x, size_t n, float* y);

// ---- pack / unpack of b-bit unsigned codes (layout in webquant/pack.h). ----
// pack: n codes (only the low b bits of each are used) -> packed_size(n, b) bytes, padding zero.
// unpack: packed_size(n, b) bytes -> n codes.
void pack_u2__ref(const uint8_t* codes, size_t n, uint8_t* packed);
void pack_u2__wasmsimd(const uint8_t* codes, size_t n, uint8_t* packed);
void unpack_u2__ref(const uint8_t* packed, size_t n, uint8_t* codes);
void unpack_u2__wasmsimd(const uint8_t* packed, size_t n, uint8_t* codes);
void pack_u3__ref(const uint8_t* codes, size_t n, uint8_t* packed);
void pack_u3__wasmsimd(const uint8_t* codes, size_t n, uint8_t* packed);
void unpack_u3__ref(const uint8_t* packed, size_t n, uint8_t* codes);
void unpack_u3__wasmsimd(const uint8_t* packed, size_t n, uint8_t* codes);
void pack_u4__ref(const uint8_t* codes, size_t n, uint8_t* packed);
void pack_u4__wasmsimd(const uint8_t* codes, size_t n, uint8_t* packed);
void unpack_u4__ref(const uint8_t* packed, size_t n, uint8_t* codes);
void unpack_u4__wasmsimd(const uint8_t* packed, size_t n, uint8_t* codes);


#if !WEBQUANT_SIMD
// Baseline build: no SIMD kernels are compiled; every __wasmsimd name means the reference.
#define minmax_f32__wasmsimd minmax_f32__ref
#define argmax_f32__wasmsimd argmax_f32__ref
#define exp_f32__wasmsimd exp_f32__ref
#define silu_f32__wasmsimd silu_f32__ref
#define quantize_f32_q8__wasmsimd quantize_f32_q8__ref
#define quantize_f32_q8_vparams__wasmsimd quantize_f32_q8_vparams__ref
#define dequantize_s8_f32__wasmsimd dequantize_s8_f32__ref
#define dequantize_u8_f32__wasmsimd dequantize_u8_f32__ref
#define convert_f32_f16__wasmsimd convert_f32_f16__ref
#define convert_f16_f32__wasmsimd convert_f16_f32__ref
#define convert_f32_bf16__wasmsimd convert_f32_bf16__ref
#define convert_bf16_f32__wasmsimd convert_bf16_f32__ref
#define pack_u2__wasmsimd pack_u2__ref
#define unpack_u2__wasmsimd unpack_u2__ref
#define pack_u3__wasmsimd pack_u3__ref
#define unpack_u3__wasmsimd unpack_u3__ref
#define pack_u4__wasmsimd pack_u4__ref
#define unpack_u4__wasmsimd unpack_u4__ref
#endif

#if WEBQUANT_SIMD
#define WQ_BEST(name) name##__wasmsimd
#else
#define WQ_BEST(name) name##__ref
#endif

}  // namespace webquant::kernels
