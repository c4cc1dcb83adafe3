// The w8a16 model decode (LinearLayer::forward_model / forward_rows of int8 layers, per channel
// or per group, symmetric or not; m <= 2) on integer dot products, as gemm_q4g_x16 does for 4-bit
// weights: each 32-element block of the float activations (from the start of each group; per
// channel: of the row) is rounded to 16-bit integers with a power-of-two scale (x16_prepare_q8g,
// the same rounding as x16_prepare_q4g: simd_gemm::x16_block), and i32x4.dot_i16x8_s multiplies 8
// of them with 8 weight bytes per instruction, in exact int32 sums. The float kernel (gemm_q8g_f32)
// spends a mask, a convert, a multiply and an add per 4 weights; this one a widen, a dot product
// and an add per 8 -- the loop of the int8-activation kernels on 16-bit activations.
//
// Precision: every activation is carried to within 2^-15 of the largest |x| of its block (see
// gemm_q4g_x16_wasmsimd.cpp). Each block's sum of q (u - zu) is exact in int32 (the zero code is
// subtracted there: |sum q u|, |zu sum q| <= 32 * 32767 * 255 < 2^31), then converted to float,
// scaled by the block's 2^-e and summed in float over the group, and the group's sum is multiplied
// by its scale, so |y - x W^T| <= sum_c |w_c| 2^-15 (1 + 2^-15) max_block|x| plus float32 rounding
// of the per-block sums.
//
// Prepared row (x16_q8g_floats(geo) floats; each group of gp = round_up(G, 16) padded elements cut
// into blocks of 32, the last one 16 wide when gp / 16 is odd): [kpad / 2 floats of int16 codes,
// at the weights' positions: per 16 elements, 2 vectors of 8 in the q8 byte order (byte 4i + t holds
// element 4t + i, so vector 0 holds elements 0 4 8 12 1 5 9 13 and vector 1 elements 2 6 10 14 3 7
// 11 15)][blocks: 2^-e of each][blocks: the sum of each block's codes, as int32][1: 1.0f when the
// row holds NaN or Inf, which then gives NaN outputs, else 0].
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/gemm/gemm_q8g.h"
#include "kernels/gemm/gemm_simd_util.h"

namespace webquant::kernels {
namespace {

using namespace simd_gemm;

size_t blocks_per_group(const GroupGeometry& geo) { return (geo.gp + kQLowBlock - 1) / kQLowBlock; }

// The 16 elements a (0..7), b (8..15) in the q8 byte order, as two int16 vectors.
inline void q8_order_i16(v128_t a, v128_t b, int16_t* out) {
  wasm_v128_store(out, wasm_i16x8_shuffle(a, b, 0, 4, 8, 12, 1, 5, 9, 13));
  wasm_v128_store(out + 8, wasm_i16x8_shuffle(a, b, 2, 6, 10, 14, 3, 7, 11, 15));
}

// sum over 16 elements of u * q for the 16 weight bytes at wr, as 4 int32 partial sums.
inline v128_t dot16(const uint8_t* wr, v128_t xl, v128_t xh) {
  const v128_t v = wasm_v128_load(wr);
  return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(v), xl),
                        wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(v), xh));
}

// One prepared row against every panel: per 16 weights and row one load, two widenings, two dot
// products and two adds; per block of 32 and panel, the rows' int32 sums reduced together, the
// zero codes' share subtracted, one convert, one multiply by 2^-e and one add; per group and panel
// one multiply by the scales and one add. kOffset: plus offset[j, g] * (sum of the rounded x over
// group g, summed block by block as x16_prepare_q4g does), offset row-major [n, groups].
template <bool kAsym, bool kOffset>
void q8g_x16(const GroupGeometry& geo, const float* xp, const uint8_t* w, const float* scale,
             const uint8_t* zero, const float* offset, const float* bias, float* y) {
  const size_t n = geo.n, kp = geo.kpad(), subs = geo.gp / kQ8Block;
  const size_t blocks = geo.groups * blocks_per_group(geo);
  const int16_t* codes = reinterpret_cast<const int16_t*>(xp);
  const float* inv = xp + kp / 2;
  const float* qsums = inv + blocks;  // int32 values, read bit for bit
  auto qsum_at = [qsums](size_t b) {
    int32_t q;
    std::memcpy(&q, qsums + b, sizeof q);
    return q;
  };
  auto qsum = [&](size_t b) { return wasm_i32x4_splat(qsum_at(b)); };
  // The rounded x summed over each group (kOffset only; the same for every panel).
  thread_local std::vector<float> gsum;
  gsum.resize(kOffset ? geo.groups : 0);
  for (size_t g = 0, b = 0; g < gsum.size(); ++g) {
    float s = 0.0f;
    for (size_t i = 0; i < blocks_per_group(geo); ++i, ++b) s += float(qsum_at(b)) * inv[b];
    gsum[g] = s;
  }
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wb = w + j * kp;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = kAsym ? zero + (j / kGemmNr) * geo.groups * kGemmNr : nullptr;
    const RowOffsets off = kOffset ? row_offsets(offset, j, rows, geo.groups) : RowOffsets{};
    const int16_t* xb = codes;
    size_t b = 0;
    v128_t t = wasm_f32x4_splat(0.0f);
    for (size_t g = 0; g < geo.groups; ++g) {
      const v128_t zu = kAsym ? load_zero_codes_i32(zp + g * kGemmNr) : wasm_i32x4_splat(kQ8Zero);
      v128_t acc = wasm_f32x4_splat(0.0f);
      size_t s = 0;
WQ_NO_UNROLL
      for (; s + 2 <= subs; s += 2, ++b, wb += 2 * kGemmNr * kQ8Block, xb += kQLowBlock) {
        const v128_t x0 = wasm_v128_load(xb), x1 = wasm_v128_load(xb + 8);
        const v128_t x2 = wasm_v128_load(xb + 16), x3 = wasm_v128_load(xb + 24);
        auto row = [&](size_t r) {
          return wasm_i32x4_add(dot16(wb + 16 * r, x0, x1),
                                dot16(wb + kGemmNr * kQ8Block + 16 * r, x2, x3));
        };
        const v128_t h = wasm_i32x4_sub(hsum4_i32(row(0), row(1), row(2), row(3)),
                                        wasm_i32x4_mul(zu, qsum(b)));
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(h),
                                                 wasm_f32x4_splat(inv[b])));
      }
      if (s < subs) {  // the group's last 16 elements: a block of their own
        const v128_t x0 = wasm_v128_load(xb), x1 = wasm_v128_load(xb + 8);
        auto row = [&](size_t r) { return dot16(wb + 16 * r, x0, x1); };
        const v128_t h = wasm_i32x4_sub(hsum4_i32(row(0), row(1), row(2), row(3)),
                                        wasm_i32x4_mul(zu, qsum(b)));
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(h),
                                                 wasm_f32x4_splat(inv[b])));
        ++b, wb += kGemmNr * kQ8Block, xb += kQ8Block;
      }
      t = wasm_f32x4_add(t, wasm_f32x4_mul(acc, wasm_v128_load(sp + g * kGemmNr)));
      if (kOffset) t = wasm_f32x4_add(t, wasm_f32x4_mul(off.at(g), wasm_f32x4_splat(gsum[g])));
    }
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    store_partial(y + j, bias ? wasm_f32x4_add(t, vb) : t, rows);
  }
}

}  // namespace

size_t x16_q8g_floats(const GroupGeometry& geo) {
  return geo.kpad() / 2 + 2 * geo.groups * blocks_per_group(geo) + 1;
}

void x16_prepare_q8g(const GroupGeometry& geo, const float* x, float* xp) {
  const size_t bpg = blocks_per_group(geo), blocks = geo.groups * bpg;
  int16_t* codes = reinterpret_cast<int16_t*>(xp);
  float* inv = xp + geo.kpad() / 2;
  float* qsums = inv + blocks;  // int32 values, written bit for bit
  bool finite = true;
  for (size_t g = 0; g < geo.groups; ++g) {
    const float* src = x + g * geo.group;
    const size_t len = geo.group_len(g);
    for (size_t bb = 0; bb < bpg; ++bb) {
      const size_t c0 = bb * kQLowBlock, b = g * bpg + bb;
      alignas(16) float blk[kQLowBlock];
      for (size_t i = 0; i < kQLowBlock; ++i) blk[i] = c0 + i < len ? src[c0 + i] : 0.0f;
      const X16Block r = x16_block(blk);
      finite = finite && r.finite;
      inv[b] = r.inv;
      std::memcpy(qsums + b, &r.qsum, sizeof r.qsum);
      int16_t* out = codes + g * geo.gp + c0;
      q8_order_i16(r.h[0], r.h[1], out);
      if (c0 + kQ8Block < geo.gp) q8_order_i16(r.h[2], r.h[3], out + kQ8Block);  // else past gp
    }
  }
  xp[x16_q8g_floats(geo) - 1] = finite ? 0.0f : 1.0f;
}

void gemm_q8g_x16__wasmsimd(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y) {
  if (xp[x16_q8g_floats(geo) - 1] != 0.0f) {  // NaN or Inf in x: no finite output
    for (size_t j = 0; j < geo.n; ++j) y[j] = std::nanf("");
    return;
  }
  if (zero) q8g_x16<true, false>(geo, xp, w, scale, zero, nullptr, bias, y);
  else q8g_x16<false, false>(geo, xp, w, scale, zero, nullptr, bias, y);
}

void gemm_q8g_x16_offset__wasmsimd(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                                   const float* scale, const float* offset, const float* bias,
                                   float* y) {
  if (xp[x16_q8g_floats(geo) - 1] != 0.0f) {
    for (size_t j = 0; j < geo.n; ++j) y[j] = std::nanf("");
    return;
  }
  q8g_x16<false, true>(geo, xp, w, scale, nullptr, offset, bias, y);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
