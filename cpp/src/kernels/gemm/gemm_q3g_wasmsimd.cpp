// WASM SIMD128 version of the 3-bit grouped GEMM (gemm_q3g.h). Per activation row it prepares
// two pre-scaled copies of x in the padded geometry: xl[p] = x * 2^-(2 (p % 16)) for the low-bit
// fields and xh[p] = x * 4 * 2^-(p % 32) for the high bits, so `word & mask` converted to float
// times them gives x * u exactly as the planes store it (powers of two are exact). Then
//   y[i, j] = sum_g scale * (sum x u - zero * sum x) + bias.
#include "kernels/gemm/gemm_q3g.h"

#if WEBQUANT_SIMD
#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm_simd_util.h"

namespace webquant::kernels {
namespace {

uint32_t word_at(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);  // little-endian (wasm, x86)
  return v;
}

// Dot product of one group's codes (blocks of 12 bytes) with the prepared activations.
float group_dot(const uint8_t* b, size_t blocks, const float* xl, const float* xh) {
  const v128_t m_lo0 = wasm_i32x4_make(3, 3 << 2, 3 << 4, 3 << 6);
  v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = wasm_f32x4_splat(0.0f);
  for (size_t blk = 0; blk < blocks; ++blk, b += kQ3BlockBytes, xl += kQ3Block, xh += kQ3Block) {
    const v128_t lo0 = wasm_i32x4_splat(int32_t(word_at(b)));
    const v128_t lo1 = wasm_i32x4_splat(int32_t(word_at(b + 4)));
    const v128_t hi = wasm_i32x4_splat(int32_t(word_at(b + 8)));
    WQ_NO_UNROLL
    for (int t = 0; t < 4; ++t) {
      // Elements 4t..4t+3 (low word 0) and 16+4t.. (low word 1): fields at bits 8t + 2l.
      const v128_t mlo = wasm_i32x4_shl(m_lo0, 8 * t);
      const v128_t f0 = wasm_f32x4_convert_u32x4(wasm_v128_and(lo0, mlo));
      const v128_t f1 = wasm_f32x4_convert_u32x4(wasm_v128_and(lo1, mlo));
      acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(f0, wasm_v128_load(xl + 4 * t)));
      acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(f1, wasm_v128_load(xl + 16 + 4 * t)));
      // High bits of the same elements: bits 4t + l and 16 + 4t + l.
      const v128_t mh0 = wasm_i32x4_shl(wasm_i32x4_make(1, 2, 4, 8), 4 * t);
      const v128_t mh1 = wasm_i32x4_shl(mh0, 16);
      const v128_t h0 = wasm_f32x4_convert_u32x4(wasm_v128_and(hi, mh0));
      const v128_t h1 = wasm_f32x4_convert_u32x4(wasm_v128_and(hi, mh1));
      acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(h0, wasm_v128_load(xh + 4 * t)));
      acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(h1, wasm_v128_load(xh + 16 + 4 * t)));
    }
  }
  return simd_gemm::sum_f32(wasm_f32x4_add(acc0, acc1));
}

}  // namespace

void gemm_q3g_f32__wasmsimd(size_t m, const Q3gGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const float* zero, const float* bias, float* y,
                            float* work) {
  const size_t kpad = geo.kpad(), blocks = geo.gp / kQ3Block;
  float* xl = work;
  float* xh = work + kpad;
  float* xsum = work + 2 * kpad;
  alignas(16) float sl[kQ3Block], sh[kQ3Block];
  for (size_t e = 0; e < kQ3Block; ++e) {
    sl[e] = std::ldexp(1.0f, -2 * int(e % 16));
    sh[e] = std::ldexp(4.0f, -int(e));
  }
  for (size_t i = 0; i < m; ++i) {
    const float* xr = x + i * geo.k;
    for (size_t g = 0; g < geo.groups; ++g) {
      float s = 0.0f;
      const size_t len = geo.group_len(g);  // < G for a ragged last group
      for (size_t p = 0; p < geo.gp; ++p) {
        const float v = p < len ? xr[g * geo.group + p] : 0.0f;
        s += v;
        xl[g * geo.gp + p] = v * sl[p % kQ3Block];
        xh[g * geo.gp + p] = v * sh[p % kQ3Block];
      }
      xsum[g] = s;
    }
    for (size_t j = 0; j < geo.n; ++j) {
      const uint8_t* row = w + j * geo.row_bytes();
      const float* sc = scale + j * geo.groups;
      const float* zr = zero + j * geo.groups;
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        const float d = group_dot(row + g * blocks * kQ3BlockBytes, blocks, xl + g * geo.gp,
                                  xh + g * geo.gp);
        t += sc[g] * (d - zr[g] * xsum[g]);
      }
      y[i * geo.n + j] = t + (bias ? bias[j] : 0.0f);
    }
  }
}

}  // namespace webquant::kernels
#endif
