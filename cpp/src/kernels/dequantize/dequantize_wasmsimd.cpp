#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include "kernels/kernels.h"

namespace webquant::kernels {
namespace {

// float(q) is built from bits instead of f32x4.convert_i32x4_s: clang 14 folds the widening and
// the conversion into a <4 x i16> -> float conversion that it scalarizes lane by lane. The bits
// 0x4B000000 | u (0 <= u < 2^23) are the float 2^23 + u, so subtracting 2^23 gives float(u)
// exactly; s8 is biased by 128 first. The rest is the reference's two roundings, in order.
inline void store_affine(float* y, v128_t biased_bits, v128_t bias, v128_t vz, v128_t vs) {
  const v128_t f = wasm_f32x4_sub(biased_bits, bias);
  wasm_v128_store(y, wasm_f32x4_mul(wasm_f32x4_sub(f, vz), vs));
}

}  // namespace

void dequantize_s8_f32__wasmsimd(const int8_t* q, size_t n, float scale, float zero_point,
                                 float* y) {
  const v128_t vs = wasm_f32x4_splat(scale);
  const v128_t vz = wasm_f32x4_splat(zero_point);
  size_t i = 0;
  const v128_t magic = wasm_i32x4_splat(0x4B000000);
  const v128_t bias = wasm_f32x4_splat(8388608.0f + 128.0f);
  for (; i + 16 <= n; i += 16) {
    // q + 128 in [0, 255], as bytes: flip the sign bit.
    const v128_t b = wasm_v128_xor(wasm_v128_load(q + i), wasm_i8x16_splat(int8_t(0x80)));
    const v128_t lo = wasm_u16x8_extend_low_u8x16(b);
    const v128_t hi = wasm_u16x8_extend_high_u8x16(b);
    store_affine(y + i, wasm_v128_or(wasm_u32x4_extend_low_u16x8(lo), magic), bias, vz, vs);
    store_affine(y + i + 4, wasm_v128_or(wasm_u32x4_extend_high_u16x8(lo), magic), bias, vz, vs);
    store_affine(y + i + 8, wasm_v128_or(wasm_u32x4_extend_low_u16x8(hi), magic), bias, vz, vs);
    store_affine(y + i + 12, wasm_v128_or(wasm_u32x4_extend_high_u16x8(hi), magic), bias, vz, vs);
  }
  for (; i < n; ++i) y[i] = (static_cast<float>(q[i]) - zero_point) * scale;
}

void dequantize_u8_f32__wasmsimd(const uint8_t* q, size_t n, float scale, float zero_point,
                                 float* y) {
  const v128_t vs = wasm_f32x4_splat(scale);
  const v128_t vz = wasm_f32x4_splat(zero_point);
  size_t i = 0;
  const v128_t magic = wasm_i32x4_splat(0x4B000000);
  const v128_t bias = wasm_f32x4_splat(8388608.0f);
  for (; i + 16 <= n; i += 16) {
    const v128_t b = wasm_v128_load(q + i);
    const v128_t lo = wasm_u16x8_extend_low_u8x16(b);
    const v128_t hi = wasm_u16x8_extend_high_u8x16(b);
    store_affine(y + i, wasm_v128_or(wasm_u32x4_extend_low_u16x8(lo), magic), bias, vz, vs);
    store_affine(y + i + 4, wasm_v128_or(wasm_u32x4_extend_high_u16x8(lo), magic), bias, vz, vs);
    store_affine(y + i + 8, wasm_v128_or(wasm_u32x4_extend_low_u16x8(hi), magic), bias, vz, vs);
    store_affine(y + i + 12, wasm_v128_or(wasm_u32x4_extend_high_u16x8(hi), magic), bias, vz, vs);
  }
  for (; i < n; ++i) y[i] = (static_cast<float>(q[i]) - zero_point) * scale;
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
