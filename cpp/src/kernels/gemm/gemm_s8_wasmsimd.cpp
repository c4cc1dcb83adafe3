// WASM SIMD128 GEMM kernels over the layouts of gemm.h, int8 activations: the per-token
// activation quantizer and the q8c / q4g kernels with int32 dot products. Same panel shape as the
// float-activation kernels (gemm_wasmsimd.cpp): one accumulator per output row of a panel of 4,
// folded with hsum4, then scaled per row and per token.
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_simd_util.h"

namespace webquant::kernels {

using namespace simd_gemm;

// ---- activation quantization ----------------------------------------------------------------

void quantize_rows_f32_s8__wasmsimd(size_t m, size_t k, size_t group, size_t group_stride,
                                    const float* x, int8_t* xq, float* scale,
                                    int32_t* group_sum) {
  const size_t groups = (k + group - 1) / group;
  for (size_t i = 0; i < m; ++i) {
    const float* row = x + i * k;
    v128_t vmax = wasm_f32x4_splat(0.0f), vnan = wasm_i32x4_splat(0);
    size_t c = 0;
    for (; c + 4 <= k; c += 4) {
      const v128_t v = wasm_v128_load(row + c);
      vmax = wasm_f32x4_pmax(vmax, wasm_f32x4_abs(v));
      vnan = wasm_v128_or(vnan, wasm_f32x4_ne(v, v));
    }
    vmax = wasm_f32x4_pmax(vmax, wasm_i32x4_shuffle(vmax, vmax, 2, 3, 0, 1));
    vmax = wasm_f32x4_pmax(vmax, wasm_i32x4_shuffle(vmax, vmax, 1, 0, 3, 2));
    float amax = wasm_f32x4_extract_lane(vmax, 0);
    bool nan = wasm_v128_any_true(vnan);
    for (; c < k; ++c) {
      if (std::isnan(row[c])) nan = true;
      amax = std::fmax(amax, std::fabs(row[c]));
    }
    const float s = nan ? NAN : amax / 127.0f;
    scale[i] = s;
    int8_t* out = xq + i * groups * group_stride;
    int32_t* sums = group_sum + i * groups;
    if (!(s > 0.0f)) {  // zeros, or NaN: codes 0
      std::memset(out, 0, groups * group_stride);
      for (size_t g = 0; g < groups; ++g) sums[g] = 0;
      continue;
    }
    const v128_t vs = wasm_f32x4_splat(s);
    const v128_t lo = wasm_i8x16_splat(-127);
    for (size_t g = 0; g < groups; ++g) {
      const float* src = row + g * group;
      int8_t* dst = out + g * group_stride;
      const size_t len = group_length(k, group, g);  // < group for a ragged last group
      v128_t vsum = wasm_i32x4_splat(0);
      size_t e = 0;
      for (; e + 16 <= len; e += 16) {
        const v128_t q0 = quantize4(src + e, vs);
        const v128_t q1 = quantize4(src + e + 4, vs);
        const v128_t q2 = quantize4(src + e + 8, vs);
        const v128_t q3 = quantize4(src + e + 12, vs);
        vsum = wasm_i32x4_add(vsum, wasm_i32x4_add(wasm_i32x4_add(q0, q1), wasm_i32x4_add(q2, q3)));
        // |x / s| <= 127 (+ rounding), so the saturating narrows and the -127 floor never bite.
        const v128_t q = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q0, q1),
                                                 wasm_i16x8_narrow_i32x4(q2, q3));
        wasm_v128_store(dst + e, wasm_i8x16_max(q, lo));
      }
      int32_t sum = 0;
      for (; e < len; ++e) {
        const float v = std::nearbyint(src[e] / s);
        const int8_t q =
            std::isnan(v) ? 0 : static_cast<int8_t>(std::fmin(std::fmax(v, -127.0f), 127.0f));
        dst[e] = q;
        sum += q;
      }
      if (group_stride > len) std::memset(dst + len, 0, group_stride - len);
      const v128_t t = wasm_i32x4_add(vsum, wasm_i32x4_shuffle(vsum, vsum, 2, 3, 0, 1));
      sums[g] = sum + wasm_i32x4_extract_lane(t, 0) + wasm_i32x4_extract_lane(t, 1);
    }
  }
}
// ---- int8 activations ---------------------------------------------------------------------

void gemm_q8c_s8__wasmsimd(size_t m, const GroupGeometry& geo, const int8_t* xq,
                           const float* xscale, const int32_t* xsum, const uint8_t* w,
                           const float* scale, const float* bias, float* y) {
  const size_t n = geo.n, kp = geo.kpad(), blocks = kp / kQ8Block;
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + j * kp;
    const v128_t vs = wasm_v128_load(scale + j);
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    // 128 * sum xq: the zero code's share of sum xq u. Then float(acc) * scale[j] * xscale[i]
    // (+ bias), in the reference's order.
    auto zero_term = [&](size_t i) { return wasm_i32x4_splat(int32_t(kQ8Zero) * xsum[i]); };
    auto finish = [&](v128_t acc, size_t i) {
      const v128_t s = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(acc), vs),
                                      wasm_f32x4_splat(xscale[i]));
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(s, vb) : s, rows);
    };
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {  // prefill: two activation rows share each weight vector
      const int8_t* xa = xq + i * kp;
      const int8_t* xb = xa + kp;
      v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
      v128_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      const uint8_t* wb = wp;
      for (size_t b = 0; b < blocks; ++b, wb += kGemmNr * kQ8Block) {
        const v128_t ua = wasm_v128_load(xa + b * 16), ub = wasm_v128_load(xb + b * 16);
        const v128_t pa = q8_order(ua), pb = q8_order(ub);
        const v128_t al = wasm_i16x8_extend_low_i8x16(pa), ah = wasm_i16x8_extend_high_i8x16(pa);
        const v128_t bl = wasm_i16x8_extend_low_i8x16(pb), bh = wasm_i16x8_extend_high_i8x16(pb);
#define WQ_ROW(acca, accb, r)                                                                  \
  {                                                                                            \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                            \
    const v128_t vl = wasm_u16x8_extend_low_u8x16(v), vh = wasm_u16x8_extend_high_u8x16(v);    \
    acca = wasm_i32x4_add(acca, wasm_i32x4_add(wasm_i32x4_dot_i16x8(vl, al),                   \
                                               wasm_i32x4_dot_i16x8(vh, ah)));                 \
    accb = wasm_i32x4_add(accb, wasm_i32x4_add(wasm_i32x4_dot_i16x8(vl, bl),                   \
                                               wasm_i32x4_dot_i16x8(vh, bh)));                 \
  }
        WQ_ROW(a0, b0, 0)
        WQ_ROW(a1, b1, 1)
        WQ_ROW(a2, b2, 2)
        WQ_ROW(a3, b3, 3)
#undef WQ_ROW
      }
      finish(wasm_i32x4_sub(hsum4_i32(a0, a1, a2, a3), zero_term(i)), i);
      finish(wasm_i32x4_sub(hsum4_i32(b0, b1, b2, b3), zero_term(i + 1)), i + 1);
    }
    for (; i < m; ++i) {
      const int8_t* xr = xq + i * kp;
      v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
      const uint8_t* wb = wp;
      for (size_t b = 0; b < blocks; ++b, wb += kGemmNr * kQ8Block) {
        // Put the activations in the weights' byte order; the dot product pairs lane with lane.
        const v128_t xv = wasm_v128_load(xr + b * 16);
        const v128_t xp = q8_order(xv);
        const v128_t xl = wasm_i16x8_extend_low_i8x16(xp), xh = wasm_i16x8_extend_high_i8x16(xp);
#define WQ_ROW(acc, r)                                                                        \
  {                                                                                           \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                           \
    const v128_t vl = wasm_u16x8_extend_low_u8x16(v), vh = wasm_u16x8_extend_high_u8x16(v); \
    acc = wasm_i32x4_add(acc, wasm_i32x4_add(wasm_i32x4_dot_i16x8(vl, xl),                   \
                                             wasm_i32x4_dot_i16x8(vh, xh)));                 \
  }
        WQ_ROW(a0, 0)
        WQ_ROW(a1, 1)
        WQ_ROW(a2, 2)
        WQ_ROW(a3, 3)
#undef WQ_ROW
      }
      // sum xq (u - 128) = sum xq u - 128 sum xq, exact.
      finish(wasm_i32x4_sub(hsum4_i32(a0, a1, a2, a3), zero_term(i)), i);
    }
  }
}

// ---- 4-bit weights per group, int8 activations -----------------------------------------------

// Read as 16-bit lanes, lane 2i of a block holds nibbles 0..3 of word i (elements 4f + i) and lane
// 2i+1 nibbles 4..7 (elements 16 + 4f + i); (v >> 4f) & 15 gives both. The activations are
// interleaved to match: bytes x[0..15] and x[16..31] zipped, then widened to 16 bits.
namespace {
template <bool kAsym>
void q4g_s8(size_t m, const GroupGeometry& geo, const int8_t* xq,
                           const float* xscale, const int32_t* xsum, const uint8_t* w,
                           const float* scale, const uint8_t* zero, const float* bias, float* y) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.blocks_per_group();
  const size_t panel_bytes = kGemmNr * geo.groups * bpg * 16;
  const v128_t mask = wasm_i16x8_splat(0x0F);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + (j / kGemmNr) * panel_bytes;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = kAsym ? zero + (j / kGemmNr) * geo.groups * kGemmNr : nullptr;
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    auto zero_codes = [&](size_t g) {
      return kAsym ? load_zero_codes_i32(zp + g * kGemmNr) : wasm_i32x4_splat(8);
    };
    auto finish = [&](v128_t t, size_t i) {
      const v128_t s = wasm_f32x4_mul(t, wasm_f32x4_splat(xscale[i]));
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(s, vb) : s, rows);
    };
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {  // prefill: two activation rows share each weight vector
      const int8_t* xa = xq + i * kpad;
      const int8_t* xc = xa + kpad;
      const int32_t* sa = xsum + i * geo.groups;
      const int32_t* sc = sa + geo.groups;
      const uint8_t* wb = wp;
      v128_t ta = wasm_f32x4_splat(0.0f), tc = ta;
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        v128_t c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        // Nibbles 0, 1 of every block of the group, then nibbles 2, 3: half the live vectors.
#define WQ_ROW(acca, accc, r, n0, n1)                                                           \
  {                                                                                             \
    const v128_t v = wasm_v128_load(wh + (r) * 16);                                             \
    const v128_t u0 = wasm_v128_and(wasm_u16x8_shr(v, 4 * (n0)), mask);                         \
    const v128_t u1 = (n1) == 3 ? wasm_u16x8_shr(v, 12)                                         \
                                : wasm_v128_and(wasm_u16x8_shr(v, 4 * (n1)), mask);             \
    acca = wasm_i32x4_add(acca, wasm_i32x4_add(wasm_i32x4_dot_i16x8(u0, pa0),                   \
                                               wasm_i32x4_dot_i16x8(u1, pa1)));                 \
    accc = wasm_i32x4_add(accc, wasm_i32x4_add(wasm_i32x4_dot_i16x8(u0, pc0),                   \
                                               wasm_i32x4_dot_i16x8(u1, pc1)));                 \
  }
#define WQ_HALF(hi)                                                                             \
  for (size_t b = 0; b < bpg; ++b) {                                                            \
    const uint8_t* wh = wb + b * kGemmNr * 16;                                                  \
    const int8_t* xha = xa + (g * bpg + b) * kQLowBlock;                                        \
    const int8_t* xhc = xc + (g * bpg + b) * kQLowBlock;                                        \
    const v128_t la = wasm_v128_load(xha), ha = wasm_v128_load(xha + 16);                       \
    const v128_t lc = wasm_v128_load(xhc), hc = wasm_v128_load(xhc + 16);                       \
    const v128_t ia = (hi) ? zip_hi8(la, ha) : zip_lo8(la, ha);                                 \
    const v128_t ic = (hi) ? zip_hi8(lc, hc) : zip_lo8(lc, hc);                                 \
    const v128_t pa0 = wasm_i16x8_extend_low_i8x16(ia), pa1 = wasm_i16x8_extend_high_i8x16(ia); \
    const v128_t pc0 = wasm_i16x8_extend_low_i8x16(ic), pc1 = wasm_i16x8_extend_high_i8x16(ic); \
    WQ_ROW(a0, c0, 0, 2 * (hi), 2 * (hi) + 1)                                                   \
    WQ_ROW(a1, c1, 1, 2 * (hi), 2 * (hi) + 1)                                                   \
    WQ_ROW(a2, c2, 2, 2 * (hi), 2 * (hi) + 1)                                                   \
    WQ_ROW(a3, c3, 3, 2 * (hi), 2 * (hi) + 1)                                                   \
  }
        WQ_HALF(0)
        WQ_HALF(1)
#undef WQ_HALF
#undef WQ_ROW
        wb += bpg * kGemmNr * 16;
        const v128_t z = zero_codes(g);
        const v128_t s = wasm_v128_load(sp + g * kGemmNr);
        const v128_t da = wasm_i32x4_sub(hsum4_i32(a0, a1, a2, a3),
                                         wasm_i32x4_mul(z, wasm_i32x4_splat(sa[g])));
        const v128_t dc = wasm_i32x4_sub(hsum4_i32(c0, c1, c2, c3),
                                         wasm_i32x4_mul(z, wasm_i32x4_splat(sc[g])));
        ta = wasm_f32x4_add(ta, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(da), s));
        tc = wasm_f32x4_add(tc, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dc), s));
      }
      finish(ta, i);
      finish(tc, i + 1);
    }
    for (; i < m; ++i) {
      const int8_t* xb = xq + i * kpad;
      const int32_t* xs = xsum + i * geo.groups;
      const uint8_t* wb = wp;
      v128_t t = wasm_f32x4_splat(0.0f);
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t b = 0; b < bpg; ++b, xb += kQLowBlock, wb += kGemmNr * 16) {
          const v128_t xl = wasm_v128_load(xb), xh = wasm_v128_load(xb + 16);
          const v128_t il = zip_lo8(xl, xh), ih = zip_hi8(xl, xh);
          const v128_t x0 = wasm_i16x8_extend_low_i8x16(il), x1 = wasm_i16x8_extend_high_i8x16(il);
          const v128_t x2 = wasm_i16x8_extend_low_i8x16(ih), x3 = wasm_i16x8_extend_high_i8x16(ih);
#define WQ_ROW(acc, r)                                                                           \
  {                                                                                              \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                              \
    const v128_t u0 = wasm_v128_and(v, mask), u1 = wasm_v128_and(wasm_u16x8_shr(v, 4), mask);  \
    const v128_t u2 = wasm_v128_and(wasm_u16x8_shr(v, 8), mask), u3 = wasm_u16x8_shr(v, 12);     \
    const v128_t d01 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(u0, x0), wasm_i32x4_dot_i16x8(u1, x1)); \
    const v128_t d23 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(u2, x2), wasm_i32x4_dot_i16x8(u3, x3)); \
    acc = wasm_i32x4_add(acc, wasm_i32x4_add(d01, d23));                                         \
  }
          WQ_ROW(a0, 0)
          WQ_ROW(a1, 1)
          WQ_ROW(a2, 2)
          WQ_ROW(a3, 3)
#undef WQ_ROW
        }
        // sum xq (u - zu) = sum xq u - zu * sum xq, exactly, in int32.
        const v128_t dot = wasm_i32x4_sub(hsum4_i32(a0, a1, a2, a3),
                                          wasm_i32x4_mul(zero_codes(g), wasm_i32x4_splat(xs[g])));
        t = wasm_f32x4_add(t, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot),
                                             wasm_v128_load(sp + g * kGemmNr)));
      }
      finish(t, i);
    }
  }
}
}  // namespace

void gemm_q4g_s8__wasmsimd(size_t m, const GroupGeometry& geo, const int8_t* xq,
                           const float* xscale, const int32_t* xsum, const uint8_t* w,
                           const float* scale, const uint8_t* zero, const float* bias, float* y) {
  if (zero)
    q4g_s8<true>(m, geo, xq, xscale, xsum, w, scale, zero, bias, y);
  else
    q4g_s8<false>(m, geo, xq, xscale, xsum, w, scale, zero, bias, y);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
