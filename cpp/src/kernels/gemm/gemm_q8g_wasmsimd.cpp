// WASM SIMD128 kernels of int8 per-group weights (gemm_q8g.h). They follow the q8c kernels of
// gemm_wasmsimd.cpp block for block; the difference is that the 4 row accumulators are folded
// (hsum4) at the end of every group, where the group's zero code and scale are applied.
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include "kernels/gemm/gemm_q8g.h"
#include "kernels/gemm/gemm_simd_util.h"

namespace webquant::kernels {
namespace {

using namespace simd_gemm;

// Zero codes of group g of a panel as floats / int32 (symmetric: 128).
template <bool kAsym>
inline v128_t zero_f32(const uint8_t* zp, size_t g) {
  return kAsym ? wasm_f32x4_convert_i32x4(load_zero_codes_i32(zp + g * kGemmNr))
               : wasm_f32x4_splat(float(kQ8Zero));
}
template <bool kAsym>
inline v128_t zero_i32(const uint8_t* zp, size_t g) {
  return kAsym ? load_zero_codes_i32(zp + g * kGemmNr) : wasm_i32x4_splat(kQ8Zero);
}

// Prefill: panel p (rows 4p..4p+3) dequantized into out[4][kpad], w = scale * (u - zu).
void decode_panel_q8g(const GroupGeometry& geo, const uint8_t* w, const float* scale,
                      const uint8_t* zero, size_t p, float* out) {
  const size_t kpad = geo.kpad(), bpg = geo.gp / kQ8Block;
  const uint8_t* wp = w + p * kGemmNr * kpad;
  const v128_t mask = wasm_i32x4_splat(0xFF);
  for (size_t g = 0; g < geo.groups; ++g) {
    for (size_t r = 0; r < kGemmNr; ++r) {
      const size_t idx = (p * geo.groups + g) * kGemmNr + r;
      const v128_t s = wasm_f32x4_splat(scale[idx]);
      const v128_t z = wasm_f32x4_splat(zero ? float(zero[idx]) : float(kQ8Zero));
      for (size_t b = g * bpg; b < (g + 1) * bpg; ++b) {
        const v128_t v = wasm_v128_load(wp + (b * kGemmNr + r) * kQ8Block);
        float* o = out + r * kpad + b * kQ8Block;
        for (int t = 0; t < 4; ++t) {
          const v128_t c = field_f32(v, 8 * t, mask);
          wasm_v128_store(o + 4 * t, wasm_f32x4_mul(wasm_f32x4_sub(c, z), s));
        }
      }
    }
  }
}

void prefill_q8g_f32(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                     const float* scale, const uint8_t* zero, const float* bias, float* y,
                     float* work) {
  const size_t n = geo.n, kpad = geo.kpad();
  float* xp = work;                   // m x kpad: padded activations, not pre-scaled
  float* wd = work + m * kpad;        // 4 x kpad: the current panel, dequantized
  float* sums = wd + kGemmNr * kpad;  // groups floats (unused sums of x)
  for (size_t i = 0; i < m; ++i) prepare_row<8, false>(geo, x + i * geo.k, xp + i * kpad, sums);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    decode_panel_q8g(geo, w, scale, zero, j / kGemmNr, wd);
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; i += 2) {
      const bool two = i + 1 < m;
      v128_t ya = wasm_f32x4_splat(0.0f), yb = ya;
      dot_panel_f32(wd, kpad, xp + i * kpad, two ? xp + (i + 1) * kpad : nullptr, &ya, &yb);
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(ya, vb) : ya, rows);
      if (two) store_partial(y + (i + 1) * n + j, bias ? wasm_f32x4_add(yb, vb) : yb, rows);
    }
  }
}

// Decode (m < 3). (w & 0xFF << 8t) is u * 2^8t for bytes t = 0..2 and w >> 24 is u for t = 3;
// prepare_row<8> pre-scales the activations by the inverse powers of two. Small groups (G = 32:
// two blocks) would spend more on a 4-row reduction per group than on the group itself, so each
// row keeps its own total: at the end of a group its accumulator is scaled by the row's group
// scale and added in (no cross-lane work), and the zero codes' share, sum_g s zu sum_{c in g} x,
// is one vector multiply-add per group over the panel's 4 rows. One reduction per panel.
template <bool kAsym>
void q8g_f32(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
             const float* scale, const uint8_t* zero, const float* bias, float* y, float* work) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.gp / kQ8Block, stride = kpad + geo.groups;
  for (size_t i = 0; i < m; ++i)
    prepare_row<8>(geo, x + i * geo.k, work + i * stride, work + i * stride + kpad);
  const v128_t m0 = wasm_i32x4_splat(0xFF), m1 = wasm_i32x4_splat(0xFF00);
  const v128_t m2 = wasm_i32x4_splat(0xFF0000);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + j * kpad;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = kAsym ? zero + (j / kGemmNr) * geo.groups * kGemmNr : nullptr;
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const float* xr = work + i * stride;
      const float* xs = xr + kpad;
      const uint8_t* wb = wp;
      v128_t t0 = wasm_f32x4_splat(0.0f), t1 = t0, t2 = t0, t3 = t0, zt = t0;
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
        for (size_t b = 0; b < bpg; ++b, wb += kGemmNr * kQ8Block, xr += kQ8Block) {
          const v128_t x0 = wasm_v128_load(xr), x1 = wasm_v128_load(xr + 4);
          const v128_t x2 = wasm_v128_load(xr + 8), x3 = wasm_v128_load(xr + 12);
#define WQ_ROW(acc, r)                                                                          \
  {                                                                                             \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                             \
    const v128_t p01 = wasm_f32x4_add(                                                          \
        wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_v128_and(v, m0)), x0),                     \
        wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_v128_and(v, m1)), x1));                    \
    const v128_t p23 = wasm_f32x4_add(                                                          \
        wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_v128_and(v, m2)), x2),                     \
        wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_u32x4_shr(v, 24)), x3));                   \
    acc = wasm_f32x4_add(acc, wasm_f32x4_add(p01, p23));                                        \
  }
          WQ_ROW(a0, 0)
          WQ_ROW(a1, 1)
          WQ_ROW(a2, 2)
          WQ_ROW(a3, 3)
#undef WQ_ROW
        }
        const v128_t s = wasm_v128_load(sp + g * kGemmNr);  // the 4 rows' scales of group g
        t0 = wasm_f32x4_add(t0, wasm_f32x4_mul(a0, wasm_i32x4_shuffle(s, s, 0, 0, 0, 0)));
        t1 = wasm_f32x4_add(t1, wasm_f32x4_mul(a1, wasm_i32x4_shuffle(s, s, 1, 1, 1, 1)));
        t2 = wasm_f32x4_add(t2, wasm_f32x4_mul(a2, wasm_i32x4_shuffle(s, s, 2, 2, 2, 2)));
        t3 = wasm_f32x4_add(t3, wasm_f32x4_mul(a3, wasm_i32x4_shuffle(s, s, 3, 3, 3, 3)));
        // s * zu * sum x of the group, for the 4 rows at once.
        zt = wasm_f32x4_add(zt, wasm_f32x4_mul(wasm_f32x4_mul(s, zero_f32<kAsym>(zp, g)),
                                               wasm_f32x4_splat(xs[g])));
      }
      const v128_t r = wasm_f32x4_sub(hsum4_f32(t0, t1, t2, t3), zt);
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(r, vb) : r, rows);
    }
  }
}

// int8 activations: one or two activation rows per pass over a panel (kTwo: prefill pairs).
template <bool kAsym>
void q8g_s8(size_t m, const GroupGeometry& geo, const int8_t* xq, const float* xscale,
            const int32_t* xsum, const uint8_t* w, const float* scale, const uint8_t* zero,
            const float* bias, float* y) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.gp / kQ8Block;
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + j * kpad;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = kAsym ? zero + (j / kGemmNr) * geo.groups * kGemmNr : nullptr;
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    auto finish = [&](v128_t t, size_t i) {
      const v128_t s = wasm_f32x4_mul(t, wasm_f32x4_splat(xscale[i]));
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(s, vb) : s, rows);
    };
    // float(sum xq u - zu * xsum) * scale, added to t (the reference's order).
    auto fold = [&](v128_t t, v128_t acc, size_t g, int32_t sum) {
      const v128_t d = wasm_i32x4_sub(acc, wasm_i32x4_mul(zero_i32<kAsym>(zp, g),
                                                          wasm_i32x4_splat(sum)));
      return wasm_f32x4_add(t, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(d),
                                              wasm_v128_load(sp + g * kGemmNr)));
    };
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {  // prefill: two activation rows share each weight vector
      const int8_t* xa = xq + i * kpad;
      const int8_t* xb = xa + kpad;
      const int32_t* sa = xsum + i * geo.groups;
      const int32_t* sb = sa + geo.groups;
      const uint8_t* wb = wp;
      v128_t ta = wasm_f32x4_splat(0.0f), tb = ta;
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        v128_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
        for (size_t b = g * bpg; b < (g + 1) * bpg; ++b, wb += kGemmNr * kQ8Block) {
          const v128_t pa = q8_order(wasm_v128_load(xa + b * 16));
          const v128_t pb = q8_order(wasm_v128_load(xb + b * 16));
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
        ta = fold(ta, hsum4_i32(a0, a1, a2, a3), g, sa[g]);
        tb = fold(tb, hsum4_i32(b0, b1, b2, b3), g, sb[g]);
      }
      finish(ta, i);
      finish(tb, i + 1);
    }
    for (; i < m; ++i) {
      const int8_t* xr = xq + i * kpad;
      const int32_t* xs = xsum + i * geo.groups;
      const uint8_t* wb = wp;
      v128_t t = wasm_f32x4_splat(0.0f);
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t b = g * bpg; b < (g + 1) * bpg; ++b, wb += kGemmNr * kQ8Block) {
          // The activations in the weights' byte order; the dot product pairs lane with lane.
          const v128_t xp = q8_order(wasm_v128_load(xr + b * 16));
          const v128_t xl = wasm_i16x8_extend_low_i8x16(xp), xh = wasm_i16x8_extend_high_i8x16(xp);
#define WQ_ROW(acc, r)                                                                        \
  {                                                                                           \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                           \
    const v128_t vl = wasm_u16x8_extend_low_u8x16(v), vh = wasm_u16x8_extend_high_u8x16(v);   \
    acc = wasm_i32x4_add(acc, wasm_i32x4_add(wasm_i32x4_dot_i16x8(vl, xl),                   \
                                             wasm_i32x4_dot_i16x8(vh, xh)));                 \
  }
          WQ_ROW(a0, 0)
          WQ_ROW(a1, 1)
          WQ_ROW(a2, 2)
          WQ_ROW(a3, 3)
#undef WQ_ROW
        }
        t = fold(t, hsum4_i32(a0, a1, a2, a3), g, xs[g]);
      }
      finish(t, i);
    }
  }
}

}  // namespace

void gemm_q8g_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y,
                            float* work) {
  if (m >= kPrefillRows)
    prefill_q8g_f32(m, geo, x, w, scale, zero, bias, y, work);
  else if (zero)
    q8g_f32<true>(m, geo, x, w, scale, zero, bias, y, work);
  else
    q8g_f32<false>(m, geo, x, w, scale, zero, bias, y, work);
}

void gemm_q8g_s8__wasmsimd(size_t m, const GroupGeometry& geo, const int8_t* xq,
                           const float* xscale, const int32_t* xsum, const uint8_t* w,
                           const float* scale, const uint8_t* zero, const float* bias, float* y) {
  if (zero)
    q8g_s8<true>(m, geo, xq, xscale, xsum, w, scale, zero, bias, y);
  else
    q8g_s8<false>(m, geo, xq, xscale, xsum, w, scale, zero, bias, y);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
