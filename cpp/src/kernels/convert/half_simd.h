// Inline WASM SIMD128 half -> float helpers shared by the convert kernels and the half-precision
// GEMM kernels. There are no half instructions in SIMD128: fp16 is widened with integer bit ops and
// one fp32 multiply (exact), bf16 is a 16-bit shift. Internal: include only where WEBQUANT_SIMD is 1.
#pragma once

#include "kernels/simd.h"

namespace webquant::kernels::half_simd {

// 4 halves, each in the high 16 bits of a 32-bit lane (low bits zero) -> 4 floats, bit-identical
// to fp16_to_fp32 (normals rebias through one multiply by 2^-112; subnormals via the 0.5 trick).
inline v128_t f16_hi_to_f32(v128_t w) {
  const v128_t nonsign = wasm_v128_and(w, wasm_i32x4_splat(0x7FFF0000));
  const v128_t sign = wasm_v128_xor(w, nonsign);
  const v128_t normalized =
      wasm_f32x4_mul(wasm_i32x4_add(wasm_u32x4_shr(nonsign, 3), wasm_i32x4_splat(0xE0 << 23)),
                     wasm_f32x4_splat(0x1.0p-112f));
  const v128_t denormalized = wasm_f32x4_sub(
      wasm_v128_or(wasm_u32x4_shr(nonsign, 16), wasm_i32x4_splat(126 << 23)), wasm_f32x4_splat(0.5f));
  // Exponent field zero <=> nonsign < 2^26 (signed compare is fine: bit 31 is clear).
  const v128_t is_sub = wasm_i32x4_lt(nonsign, wasm_i32x4_splat(1 << 26));
  return wasm_v128_or(sign, wasm_v128_bitselect(denormalized, normalized, is_sub));
}

// Halves 0..3 (spread_low) or 4..7 (spread_high) of h, each moved to the high 16 bits of a
// 32-bit lane with zeros below (for bf16 that already is the float).
inline v128_t spread_low(v128_t zero, v128_t h) {
  return wasm_i16x8_shuffle(zero, h, 0, 8, 1, 9, 2, 10, 3, 11);
}
inline v128_t spread_high(v128_t zero, v128_t h) {
  return wasm_i16x8_shuffle(zero, h, 4, 12, 5, 13, 6, 14, 7, 15);
}

}  // namespace webquant::kernels::half_simd
