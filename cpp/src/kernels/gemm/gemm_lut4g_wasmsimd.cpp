// WASM SIMD128 version of the 4-bit codebook GEMM (gemm_lut4g.h): 16 indices decoded per step
// by swizzling the four byte planes of the float table, then re-interleaved into floats.
#include "kernels/gemm/gemm_lut4g.h"

#if WEBQUANT_SIMD
#include <cstring>

#include "kernels/gemm/gemm_simd_util.h"

namespace webquant::kernels {
namespace {

using simd_gemm::zip_hi8;
using simd_gemm::zip_lo8;

inline v128_t zip_lo16(v128_t a, v128_t b) {
  return wasm_i16x8_shuffle(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
}
inline v128_t zip_hi16(v128_t a, v128_t b) {
  return wasm_i16x8_shuffle(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
}

}  // namespace

void gemm_lut4g_f32__wasmsimd(size_t m, const Lut4gGeometry& geo, const float* x,
                              const uint8_t* w, const float* table, const float* scale,
                              const float* bias, float* y, float* work) {
  // Byte plane p of the table: byte p of each of the 16 floats (little-endian).
  alignas(16) uint8_t planes[4][16];
  for (int e = 0; e < 16; ++e) {
    uint8_t b[4];
    std::memcpy(b, &table[e], 4);
    for (int p = 0; p < 4; ++p) planes[p][e] = b[p];
  }
  const v128_t t0 = wasm_v128_load(planes[0]), t1 = wasm_v128_load(planes[1]);
  const v128_t t2 = wasm_v128_load(planes[2]), t3 = wasm_v128_load(planes[3]);
  const v128_t low4 = wasm_i8x16_splat(0x0F);
  const size_t steps = geo.gp / kLut4Block;
  for (size_t i = 0; i < m; ++i) {
    // The activation row in the padded geometry (zeros after each group's G values, or after the
    // shorter length of a ragged last group).
    const float* xr = x + i * geo.k;
    for (size_t g = 0; g < geo.groups; ++g)
      for (size_t p = 0; p < geo.gp; ++p)
        work[g * geo.gp + p] = p < geo.group_len(g) ? xr[g * geo.group + p] : 0.0f;
    for (size_t j = 0; j < geo.n; ++j) {
      const uint8_t* row = w + j * geo.row_bytes();
      const float* sc = scale + j * geo.groups;
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        const uint8_t* b = row + g * geo.gp / 2;
        const float* xp = work + g * geo.gp;
        v128_t acc0 = wasm_f32x4_splat(0.0f), acc1 = wasm_f32x4_splat(0.0f);
        for (size_t s = 0; s < steps; ++s, b += 8, xp += kLut4Block) {
          const v128_t bytes = wasm_v128_load64_zero(b);
          // Indices of elements 0..15 in order: low nibble of byte t, then its high nibble.
          const v128_t idx = zip_lo8(wasm_v128_and(bytes, low4), wasm_u8x16_shr(bytes, 4));
          const v128_t p0 = wasm_i8x16_swizzle(t0, idx), p1 = wasm_i8x16_swizzle(t1, idx);
          const v128_t p2 = wasm_i8x16_swizzle(t2, idx), p3 = wasm_i8x16_swizzle(t3, idx);
          const v128_t a = zip_lo8(p0, p1), c = zip_lo8(p2, p3);  // elements 0..7
          const v128_t d = zip_hi8(p0, p1), e = zip_hi8(p2, p3);  // elements 8..15
          acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(zip_lo16(a, c), wasm_v128_load(xp)));
          acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(zip_hi16(a, c), wasm_v128_load(xp + 4)));
          acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(zip_lo16(d, e), wasm_v128_load(xp + 8)));
          acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(zip_hi16(d, e), wasm_v128_load(xp + 12)));
        }
        t += sc[g] * simd_gemm::sum_f32(wasm_f32x4_add(acc0, acc1));
      }
      y[i * geo.n + j] = t + (bias ? bias[j] : 0.0f);
    }
  }
}

}  // namespace webquant::kernels
#endif
