#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include "kernels/kernels.h"

namespace webquant::kernels {
namespace {

// y = (float(q) - zero_point) * scale for 4 int32 lanes: the same two roundings as the reference.
inline void store_affine(float* y, v128_t q32, v128_t vz, v128_t vs) {
  wasm_v128_store(y, wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_convert_i32x4(q32), vz), vs));
}

}  // namespace

void dequantize_s8_f32__wasmsimd(const int8_t* q, size_t n, float scale, float zero_point,
                                 float* y) {
  const v128_t vs = wasm_f32x4_splat(scale);
  const v128_t vz = wasm_f32x4_splat(zero_point);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const v128_t b = wasm_v128_load(q + i);
    const v128_t lo = wasm_i16x8_extend_low_i8x16(b);
    const v128_t hi = wasm_i16x8_extend_high_i8x16(b);
    store_affine(y + i, wasm_i32x4_extend_low_i16x8(lo), vz, vs);
    store_affine(y + i + 4, wasm_i32x4_extend_high_i16x8(lo), vz, vs);
    store_affine(y + i + 8, wasm_i32x4_extend_low_i16x8(hi), vz, vs);
    store_affine(y + i + 12, wasm_i32x4_extend_high_i16x8(hi), vz, vs);
  }
  for (; i < n; ++i) y[i] = (static_cast<float>(q[i]) - zero_point) * scale;
}

void dequantize_u8_f32__wasmsimd(const uint8_t* q, size_t n, float scale, float zero_point,
                                 float* y) {
  const v128_t vs = wasm_f32x4_splat(scale);
  const v128_t vz = wasm_f32x4_splat(zero_point);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const v128_t b = wasm_v128_load(q + i);
    const v128_t lo = wasm_u16x8_extend_low_u8x16(b);
    const v128_t hi = wasm_u16x8_extend_high_u8x16(b);
    store_affine(y + i, wasm_u32x4_extend_low_u16x8(lo), vz, vs);
    store_affine(y + i + 4, wasm_u32x4_extend_high_u16x8(lo), vz, vs);
    store_affine(y + i + 8, wasm_u32x4_extend_low_u16x8(hi), vz, vs);
    store_affine(y + i + 12, wasm_u32x4_extend_high_u16x8(hi), vz, vs);
  }
  for (; i < n; ++i) y[i] = (static_cast<float>(q[i]) - zero_point) * scale;
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
