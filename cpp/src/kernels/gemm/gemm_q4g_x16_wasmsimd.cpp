// The w4a16 model decode (LinearLayer::forward_model / forward_rows, m <= 2) on integer dot
// products: each 32-element block of the float activations is rounded to 16-bit integers with a
// power-of-two scale (x16_prepare_q4g), and i32x4.dot_i16x8_s multiplies 8 of them with 8 of the
// 4-bit codes per instruction, in exact int32 sums. The float kernel (gemm_q4g_f32) spends a
// convert, a multiply and an add per 4 weights; this one a dot product and an add per 8.
//
// Precision: per block, with max|x| in [2^(E-1), 2^E), e = 15 - E and q = round(x 2^e) clamped to
// [-32767, 32767], so |x - q 2^-e| <= 2^-16 * 2 max|x| = max|x| 2^-15 (times 1 + 2^-15 for a
// maximum that rounds to 32768 and is clamped). Every activation is carried to within 2^-15 of the
// largest |x| of its block: finer than float16 activations for the block's large elements (float16
// keeps 11 bits) and far finer than bfloat16's 8 bits for all of them. The zero code is applied to
// the sum of the rounded activations (sum x (u - zu) ~ sum q u 2^-e - zu sum q 2^-e), so the
// result is the product of the dequantized weights with the rounded activations up to float32
// rounding of the per-block sums: |y - x W^T| <= sum_c |w_c| 2^-15 (1 + 2^-15) max_block|x| + that.
//
// Prepared row (x16_floats(geo) floats): [kpad / 2 floats of int16 codes: per block of 32
// elements, 4 vectors of 8, lane l of vector n = element 16 (l % 2) + 4n + l / 2 of the block,
// which is the element nibble n of int16 lane l of the block's weights holds][kpad / 32: 2^-e of
// each block][groups: sum of q 2^-e over each group][1: 1.0f when the row holds NaN or Inf, which
// then gives NaN outputs, else 0].
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_simd_util.h"

namespace webquant::kernels {
namespace {

using namespace simd_gemm;

// The 4 int16 vectors of 8 consecutive elements a..d of a block, in the nibble order.
inline void nibble_order(v128_t a, v128_t b, v128_t c, v128_t d, int16_t* out) {
  wasm_v128_store(out, wasm_i16x8_shuffle(a, c, 0, 8, 1, 9, 2, 10, 3, 11));
  wasm_v128_store(out + 8, wasm_i16x8_shuffle(a, c, 4, 12, 5, 13, 6, 14, 7, 15));
  wasm_v128_store(out + 16, wasm_i16x8_shuffle(b, d, 0, 8, 1, 9, 2, 10, 3, 11));
  wasm_v128_store(out + 24, wasm_i16x8_shuffle(b, d, 4, 12, 5, 13, 6, 14, 7, 15));
}

}  // namespace

size_t x16_floats(const GroupGeometry& geo) {
  return geo.kpad() / 2 + geo.kpad() / kQLowBlock + geo.groups + 1;
}

void x16_prepare_q4g(const GroupGeometry& geo, const float* x, float* xp) {
  const size_t kpad = geo.kpad();
  int16_t* codes = reinterpret_cast<int16_t*>(xp);
  float* inv = xp + kpad / 2;
  float* xsum = inv + kpad / kQLowBlock;
  bool finite = true;
  for (size_t g = 0; g < geo.groups; ++g) {
    const float* src = x + g * geo.group;
    const size_t len = geo.group_len(g);
    float sum = 0.0f;
    for (size_t b = 0; b < geo.gp; b += kQLowBlock) {
      alignas(16) float blk[kQLowBlock];
      for (size_t i = 0; i < kQLowBlock; ++i) blk[i] = b + i < len ? src[b + i] : 0.0f;
      const X16Block r = x16_block(blk);
      finite = finite && r.finite;
      const size_t blk_index = (g * geo.gp + b) / kQLowBlock;
      inv[blk_index] = r.inv;
      sum += float(r.qsum) * r.inv;
      nibble_order(r.h[0], r.h[1], r.h[2], r.h[3], codes + blk_index * kQLowBlock);
    }
    xsum[g] = sum;
  }
  xp[x16_floats(geo) - 1] = finite ? 0.0f : 1.0f;
}

namespace {

// sum over the block of q * u for one row's 16 code bytes at wr: int16 lane l, nibble n meets
// lane l of x_n (4 partial sums).
inline v128_t row_dot(const uint8_t* wr, v128_t mask, v128_t x0, v128_t x1, v128_t x2, v128_t x3) {
  const v128_t v = wasm_v128_load(wr);
  const v128_t c0 = wasm_v128_and(v, mask);
  const v128_t c1 = wasm_v128_and(wasm_u16x8_shr(v, 4), mask);
  const v128_t c2 = wasm_v128_and(wasm_u16x8_shr(v, 8), mask);
  const v128_t c3 = wasm_u16x8_shr(v, 12);
  return wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_dot_i16x8(c0, x0), wasm_i32x4_dot_i16x8(c1, x1)),
                        wasm_i32x4_add(wasm_i32x4_dot_i16x8(c2, x2), wasm_i32x4_dot_i16x8(c3, x3)));
}

// One prepared row against every panel: per block and row one load of 16 code bytes, 6 ops into 4
// vectors of 8 codes (int16 lane l, nibble n), 4 dot products and 4 adds. kOffset: plus
// offset[j, g] * (sum of the rounded x over group g), offset row-major [n, groups].
template <bool kAsym, bool kOffset>
void q4g_x16(const GroupGeometry& geo, const float* xp, const uint8_t* w, const float* scale,
             const uint8_t* zero, const float* offset, const float* bias, float* y) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.blocks_per_group();
  const size_t panel_bytes = kGemmNr * geo.groups * bpg * 16;
  const int16_t* codes = reinterpret_cast<const int16_t*>(xp);
  const float* inv = xp + kpad / 2;
  const float* xsum = inv + kpad / kQLowBlock;
  if (xp[x16_floats(geo) - 1] != 0.0f) {  // NaN or Inf in x: no finite output
    for (size_t j = 0; j < n; ++j) y[j] = std::nanf("");
    return;
  }
  const v128_t mask = wasm_i16x8_splat(0xF);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wb = w + (j / kGemmNr) * panel_bytes;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = kAsym ? zero + (j / kGemmNr) * geo.groups * kGemmNr : nullptr;
    const RowOffsets off = kOffset ? row_offsets(offset, j, rows, geo.groups) : RowOffsets{};
    const int16_t* xb = codes;
    const float* ib = inv;
    v128_t t = wasm_f32x4_splat(0.0f);
    for (size_t g = 0; g < geo.groups; ++g) {
      v128_t sum;
      if (bpg == 1) {  // one block: reduce the 4 rows in int32, scale once
        const v128_t x0 = wasm_v128_load(xb), x1 = wasm_v128_load(xb + 8);
        const v128_t x2 = wasm_v128_load(xb + 16), x3 = wasm_v128_load(xb + 24);
        auto dot = [&](size_t r) { return row_dot(wb + 16 * r, mask, x0, x1, x2, x3); };
        const v128_t h = hsum4_i32(dot(0), dot(1), dot(2), dot(3));
        sum = wasm_f32x4_mul(wasm_f32x4_convert_i32x4(h), wasm_f32x4_splat(*ib));
        wb += kGemmNr * 16, xb += kQLowBlock, ++ib;
      } else {  // each block's int32 sums scaled by its own 2^-e, in float
        v128_t f0 = wasm_f32x4_splat(0.0f), f1 = f0, f2 = f0, f3 = f0;
WQ_NO_UNROLL
        for (size_t b = 0; b < bpg; ++b, wb += kGemmNr * 16, xb += kQLowBlock, ++ib) {
          const v128_t x0 = wasm_v128_load(xb), x1 = wasm_v128_load(xb + 8);
          const v128_t x2 = wasm_v128_load(xb + 16), x3 = wasm_v128_load(xb + 24);
          const v128_t s = wasm_f32x4_splat(*ib);
          auto dot = [&](size_t r) {
            return wasm_f32x4_mul(
                wasm_f32x4_convert_i32x4(row_dot(wb + 16 * r, mask, x0, x1, x2, x3)), s);
          };
          f0 = wasm_f32x4_add(f0, dot(0));
          f1 = wasm_f32x4_add(f1, dot(1));
          f2 = wasm_f32x4_add(f2, dot(2));
          f3 = wasm_f32x4_add(f3, dot(3));
        }
        sum = hsum4_f32(f0, f1, f2, f3);
      }
      // sum x (u - zu) ~ sum_blocks 2^-e (sum q u - zu sum q).
      const v128_t zu = kAsym ? wasm_f32x4_convert_i32x4(load_zero_codes_i32(zp + g * kGemmNr))
                              : wasm_f32x4_splat(8.0f);
      const v128_t dot = wasm_f32x4_sub(sum, wasm_f32x4_mul(zu, wasm_f32x4_splat(xsum[g])));
      t = wasm_f32x4_add(t, wasm_f32x4_mul(dot, wasm_v128_load(sp + g * kGemmNr)));
      if (kOffset) t = wasm_f32x4_add(t, wasm_f32x4_mul(off.at(g), wasm_f32x4_splat(xsum[g])));
    }
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    store_partial(y + j, bias ? wasm_f32x4_add(t, vb) : t, rows);
  }
}

}  // namespace

void gemm_q4g_x16__wasmsimd(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y) {
  if (zero) q4g_x16<true, false>(geo, xp, w, scale, zero, nullptr, bias, y);
  else q4g_x16<false, false>(geo, xp, w, scale, zero, nullptr, bias, y);
}

void gemm_q4g_x16_offset__wasmsimd(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                                   const float* scale, const float* offset, const float* bias,
                                   float* y) {
  q4g_x16<false, true>(geo, xp, w, scale, nullptr, offset, bias, y);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
