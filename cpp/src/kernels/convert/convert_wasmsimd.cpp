// The scalar algorithms of core/convert.cpp, lane by lane: every step is an exact integer op or
// one IEEE fp32 op in round-to-nearest-even, so each lane matches the scalar bit for bit.
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include "kernels/convert/half_simd.h"
#include "kernels/kernels.h"
#include "webquant/convert.h"

namespace webquant::kernels {
namespace {

using namespace half_simd;

// 4 floats -> 4 halves in the low 16 bits of each 32-bit lane (FP16 library algorithm). The
// scalar code works on w + w (exponent in the top byte); here the same quantities are taken from
// |x|'s bits (exponent at bits 23..30), where signed compares and max are single instructions.
inline v128_t f32_to_f16_bits(v128_t x) {
  const v128_t abs_bits = wasm_v128_and(x, wasm_i32x4_splat(0x7FFFFFFF));
  const v128_t base0 = wasm_f32x4_mul(wasm_f32x4_mul(abs_bits, wasm_f32x4_splat(0x1.0p+112f)),
                                      wasm_f32x4_splat(0x1.0p-110f));
  // (max(shl1_w & 0xFF000000, 0x71000000) >> 1) + 0x07800000 of the scalar code.
  v128_t bias = wasm_v128_and(abs_bits, wasm_i32x4_splat(0x7F800000));
  bias = wasm_i32x4_max(bias, wasm_i32x4_splat(0x38800000));
  bias = wasm_i32x4_add(bias, wasm_i32x4_splat(0x07800000));
  const v128_t base = wasm_f32x4_add(bias, base0);
  const v128_t exp_bits = wasm_v128_and(wasm_u32x4_shr(base, 13), wasm_i32x4_splat(0x7C00));
  const v128_t mantissa_bits = wasm_v128_and(base, wasm_i32x4_splat(0x0FFF));
  const v128_t nonsign = wasm_i32x4_add(exp_bits, mantissa_bits);
  const v128_t is_nan = wasm_i32x4_gt(abs_bits, wasm_i32x4_splat(0x7F800000));
  const v128_t sign = wasm_u32x4_shr(wasm_v128_xor(x, abs_bits), 16);
  return wasm_v128_or(sign, wasm_v128_bitselect(wasm_i32x4_splat(0x7E00), nonsign, is_nan));
}

// c10::BFloat16 round_to_nearest_even, 4 lanes, result in the low 16 bits.
inline v128_t f32_to_bf16_bits(v128_t x) {
  const v128_t lsb = wasm_v128_and(wasm_u32x4_shr(x, 16), wasm_i32x4_splat(1));
  const v128_t r = wasm_u32x4_shr(wasm_i32x4_add(wasm_i32x4_add(x, wasm_i32x4_splat(0x7FFF)), lsb), 16);
  return wasm_v128_bitselect(wasm_i32x4_splat(0x7FC0), r, wasm_f32x4_ne(x, x));
}

}  // namespace

// The 32-bit lanes hold values in [0, 0xFFFF], so the saturating u16 narrow is exact.
void convert_f32_f16__wasmsimd(const float* x, size_t n, uint16_t* y) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v128_t a = f32_to_f16_bits(wasm_v128_load(x + i));
    const v128_t b = f32_to_f16_bits(wasm_v128_load(x + i + 4));
    wasm_v128_store(y + i, wasm_u16x8_narrow_i32x4(a, b));
  }
  for (; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void convert_f16_f32__wasmsimd(const uint16_t* x, size_t n, float* y) {
  const v128_t zero = wasm_i32x4_splat(0);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v128_t h = wasm_v128_load(x + i);
    wasm_v128_store(y + i, f16_hi_to_f32(spread_low(zero, h)));
    wasm_v128_store(y + i + 4, f16_hi_to_f32(spread_high(zero, h)));
  }
  for (; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void convert_f32_bf16__wasmsimd(const float* x, size_t n, uint16_t* y) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const v128_t a = f32_to_bf16_bits(wasm_v128_load(x + i));
    const v128_t b = f32_to_bf16_bits(wasm_v128_load(x + i + 4));
    wasm_v128_store(y + i, wasm_u16x8_narrow_i32x4(a, b));
  }
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

void convert_bf16_f32__wasmsimd(const uint16_t* x, size_t n, float* y) {
  const v128_t zero = wasm_i32x4_splat(0);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const v128_t a = wasm_v128_load(x + i);
    const v128_t b = wasm_v128_load(x + i + 8);
    wasm_v128_store(y + i, spread_low(zero, a));
    wasm_v128_store(y + i + 4, spread_high(zero, a));
    wasm_v128_store(y + i + 8, spread_low(zero, b));
    wasm_v128_store(y + i + 12, spread_high(zero, b));
  }
  for (; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
