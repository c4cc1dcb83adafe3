// WASM SIMD128 GEMM kernels over the layouts of gemm.h. Shared shape of every kernel:
//  for each panel of 4 output rows, for each activation row: stream the panel's blocks, keep one
//  accumulator vector per output row, fold the 4 accumulators into one vector [y0 y1 y2 y3]
//  (hsum4) at the end of a group or row, then scale / add bias with one vector op each.
// Weights never go through a per-element branch or shuffle: the block layouts put consecutive
// elements in the lanes that plain 32-bit (or 16-bit) shifts extract.
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm.h"

namespace webquant::kernels {
namespace {

// [sum(a) sum(b) sum(c) sum(d)] for four f32x4 (or, with the i32 version, i32x4) vectors.
inline v128_t hsum4_f32(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_f32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5),
                                   wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  const v128_t cd = wasm_f32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5),
                                   wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5),
                        wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}
inline v128_t hsum4_i32(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_i32x4_add(wasm_i32x4_shuffle(a, b, 0, 4, 1, 5),
                                   wasm_i32x4_shuffle(a, b, 2, 6, 3, 7));
  const v128_t cd = wasm_i32x4_add(wasm_i32x4_shuffle(c, d, 0, 4, 1, 5),
                                   wasm_i32x4_shuffle(c, d, 2, 6, 3, 7));
  return wasm_i32x4_add(wasm_i32x4_shuffle(ab, cd, 0, 1, 4, 5),
                        wasm_i32x4_shuffle(ab, cd, 2, 3, 6, 7));
}
// Sum of the 4 lanes, in every lane.
inline v128_t splat_sum_f32(v128_t a) {
  a = wasm_f32x4_add(a, wasm_i32x4_shuffle(a, a, 2, 3, 0, 1));
  return wasm_f32x4_add(a, wasm_i32x4_shuffle(a, a, 1, 0, 3, 2));
}
inline float sum_f32(v128_t a) { return wasm_f32x4_extract_lane(splat_sum_f32(a), 0); }

// Up to 4 floats from p (count < 4 reads only count of them; the rest are 0).
inline v128_t load_partial(const float* p, size_t count) {
  if (count >= 4) return wasm_v128_load(p);
  float t[4] = {0, 0, 0, 0};
  for (size_t r = 0; r < count; ++r) t[r] = p[r];
  return wasm_v128_load(t);
}
inline void store_partial(float* p, v128_t v, size_t count) {
  if (count >= 4) {
    wasm_v128_store(p, v);
    return;
  }
  float t[4];
  wasm_v128_store(t, v);
  for (size_t r = 0; r < count; ++r) p[r] = t[r];
}

// Four zero codes (bytes) as i32x4.
inline v128_t load_zero_codes_i32(const uint8_t* z) {
  return wasm_u32x4_extend_low_u16x8(wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(z)));
}

}  // namespace

// ---- activation quantization ----------------------------------------------------------------

void quantize_rows_f32_s8__wasmsimd(size_t m, size_t k, size_t group, size_t group_stride,
                                    const float* x, int8_t* xq, float* scale,
                                    int32_t* group_sum) {
  const size_t groups = k / group;
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
      v128_t vsum = wasm_i32x4_splat(0);
      size_t e = 0;
      for (; e + 16 <= group; e += 16) {
        v128_t q0 = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_div(wasm_v128_load(src + e), vs)));
        v128_t q1 = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_div(wasm_v128_load(src + e + 4), vs)));
        v128_t q2 = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_div(wasm_v128_load(src + e + 8), vs)));
        v128_t q3 = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_div(wasm_v128_load(src + e + 12), vs)));
        vsum = wasm_i32x4_add(vsum, wasm_i32x4_add(wasm_i32x4_add(q0, q1), wasm_i32x4_add(q2, q3)));
        // |x / s| <= 127 (+ rounding), so the saturating narrows and the -127 floor never bite.
        const v128_t q = wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q0, q1),
                                                 wasm_i16x8_narrow_i32x4(q2, q3));
        wasm_v128_store(dst + e, wasm_i8x16_max(q, lo));
      }
      int32_t sum = 0;
      for (; e < group; ++e) {
        const float v = std::nearbyint(src[e] / s);
        const int8_t q = std::isnan(v) ? 0 : static_cast<int8_t>(std::fmin(std::fmax(v, -127.0f), 127.0f));
        dst[e] = q;
        sum += q;
      }
      if (group_stride > group) std::memset(dst + group, 0, group_stride - group);
      const v128_t t = wasm_i32x4_add(vsum, wasm_i32x4_shuffle(vsum, vsum, 2, 3, 0, 1));
      sums[g] = sum + wasm_i32x4_extract_lane(t, 0) + wasm_i32x4_extract_lane(t, 1);
    }
  }
}

// ---- float32 weights -----------------------------------------------------------------------

void gemm_f32_f32__wasmsimd(size_t m, size_t n, size_t k, const float* x, const float* w,
                            const float* bias, float* y) {
  const size_t k8 = k & ~size_t(7);
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    const float* w0 = w + j * k;
    const float* w1 = w0 + k;
    const float* w2 = w1 + k;
    const float* w3 = w2 + k;
    const v128_t vb = bias ? wasm_v128_load(bias + j) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const float* xr = x + i * k;
      v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
      v128_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
      size_t c = 0;
      for (; c < k8; c += 8) {
        const v128_t xa = wasm_v128_load(xr + c), xb = wasm_v128_load(xr + c + 4);
        a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xa, wasm_v128_load(w0 + c)));
        a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xa, wasm_v128_load(w1 + c)));
        a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(xa, wasm_v128_load(w2 + c)));
        a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(xa, wasm_v128_load(w3 + c)));
        b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(xb, wasm_v128_load(w0 + c + 4)));
        b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(xb, wasm_v128_load(w1 + c + 4)));
        b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(xb, wasm_v128_load(w2 + c + 4)));
        b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(xb, wasm_v128_load(w3 + c + 4)));
      }
      v128_t s = hsum4_f32(wasm_f32x4_add(a0, b0), wasm_f32x4_add(a1, b1),
                           wasm_f32x4_add(a2, b2), wasm_f32x4_add(a3, b3));
      if (c < k) {  // scalar tail, k % 8 elements
        float t[4] = {0, 0, 0, 0};
        for (; c < k; ++c) {
          t[0] += xr[c] * w0[c];
          t[1] += xr[c] * w1[c];
          t[2] += xr[c] * w2[c];
          t[3] += xr[c] * w3[c];
        }
        s = wasm_f32x4_add(s, wasm_v128_load(t));
      }
      wasm_v128_store(y + i * n + j, wasm_f32x4_add(s, vb));
    }
  }
  for (; j < n; ++j) {  // the last n % 4 rows, one at a time
    const float* wr = w + j * k;
    for (size_t i = 0; i < m; ++i) {
      const float* xr = x + i * k;
      v128_t a = wasm_f32x4_splat(0.0f), b = a;
      size_t c = 0;
      for (; c < k8; c += 8) {
        a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(xr + c), wasm_v128_load(wr + c)));
        b = wasm_f32x4_add(b, wasm_f32x4_mul(wasm_v128_load(xr + c + 4), wasm_v128_load(wr + c + 4)));
      }
      float s = sum_f32(wasm_f32x4_add(a, b));
      for (; c < k; ++c) s += xr[c] * wr[c];
      y[i * n + j] = bias ? s + bias[j] : s;
    }
  }
}

// ---- int8 weights per channel ----------------------------------------------------------------

// Lanes of the 4 int8 vectors of a 16-element block (byte t of word i = element 4t + i):
// (w << (24 - 8t)) >>s 24 sign-extends byte t of every word.
#define WQ_Q8_LANE(v, t) wasm_f32x4_convert_i32x4(wasm_i32x4_shr(wasm_i32x4_shl(v, 24 - 8 * (t)), 24))

void gemm_q8c_f32__wasmsimd(size_t m, size_t n, size_t k, const float* x, const int8_t* w,
                            const float* scale, const float* bias, float* y) {
  const size_t kp = round_up(k, kQ8Block), blocks = kp / kQ8Block;
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const int8_t* wp = w + j * kp;
    const v128_t vs = wasm_v128_load(scale + j);
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const float* xr = x + i * kp;
      v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
      const int8_t* wb = wp;
      for (size_t b = 0; b < blocks; ++b, wb += kGemmNr * kQ8Block) {
        const v128_t x0 = wasm_v128_load(xr + b * 16), x1 = wasm_v128_load(xr + b * 16 + 4);
        const v128_t x2 = wasm_v128_load(xr + b * 16 + 8), x3 = wasm_v128_load(xr + b * 16 + 12);
#define WQ_ROW(acc, r)                                                                        \
  {                                                                                           \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                           \
    const v128_t p01 = wasm_f32x4_add(wasm_f32x4_mul(WQ_Q8_LANE(v, 0), x0),                   \
                                      wasm_f32x4_mul(WQ_Q8_LANE(v, 1), x1));                  \
    const v128_t p23 = wasm_f32x4_add(wasm_f32x4_mul(WQ_Q8_LANE(v, 2), x2),                   \
                                      wasm_f32x4_mul(wasm_f32x4_convert_i32x4(                \
                                                         wasm_i32x4_shr(v, 24)), x3));        \
    acc = wasm_f32x4_add(acc, wasm_f32x4_add(p01, p23));                                      \
  }
        WQ_ROW(a0, 0)
        WQ_ROW(a1, 1)
        WQ_ROW(a2, 2)
        WQ_ROW(a3, 3)
#undef WQ_ROW
      }
      const v128_t s = wasm_f32x4_mul(hsum4_f32(a0, a1, a2, a3), vs);
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(s, vb) : s, rows);
    }
  }
}
#undef WQ_Q8_LANE

void gemm_q8c_s8__wasmsimd(size_t m, size_t n, size_t k, const int8_t* xq, const float* xscale,
                           const int8_t* w, const float* scale, const float* bias, float* y) {
  const size_t kp = round_up(k, kQ8Block), blocks = kp / kQ8Block;
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const int8_t* wp = w + j * kp;
    const v128_t vs = wasm_v128_load(scale + j);
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const int8_t* xr = xq + i * kp;
      v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
      const int8_t* wb = wp;
      for (size_t b = 0; b < blocks; ++b, wb += kGemmNr * kQ8Block) {
        // Put the activations in the weights' byte order; the dot product pairs lane with lane.
        const v128_t xv = wasm_v128_load(xr + b * 16);
        const v128_t xp = wasm_i8x16_shuffle(xv, xv, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        const v128_t xl = wasm_i16x8_extend_low_i8x16(xp), xh = wasm_i16x8_extend_high_i8x16(xp);
#define WQ_ROW(acc, r)                                                                        \
  {                                                                                           \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                           \
    acc = wasm_i32x4_add(acc, wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(v), xl), \
                                             wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(v), xh))); \
  }
        WQ_ROW(a0, 0)
        WQ_ROW(a1, 1)
        WQ_ROW(a2, 2)
        WQ_ROW(a3, 3)
#undef WQ_ROW
      }
      // float(acc) * scale[j] * xscale[i] (+ bias), in the reference's order.
      const v128_t s = wasm_f32x4_mul(
          wasm_f32x4_mul(wasm_f32x4_convert_i32x4(hsum4_i32(a0, a1, a2, a3)), vs),
          wasm_f32x4_splat(xscale[i]));
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(s, vb) : s, rows);
    }
  }
}

// ---- 4-bit weights per group, float activations ----------------------------------------------

// sum_c x_c (u_c - zu) = sum_c x_c u_c - zu * sum_c x_c: the codes go to float unshifted and the
// zero code is applied once per group and row, with the group's sum of x (computed alongside).
void gemm_q4g_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.blocks_per_group();
  const size_t panel_bytes = kGemmNr * geo.groups * bpg * 16;
  const v128_t mask = wasm_i32x4_splat(0x0F);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + (j / kGemmNr) * panel_bytes;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = zero + (j / kGemmNr) * geo.groups * kGemmNr;
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const float* xb = x + i * kpad;
      const uint8_t* wb = wp;
      v128_t t = wasm_f32x4_splat(0.0f);
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0, ax = a0;
        for (size_t b = 0; b < bpg; ++b, xb += kQLowBlock, wb += kGemmNr * 16) {
          // Two halves of 16 elements (nibbles 0..3, then 4..7 of each word) keep the live
          // vectors within 16 registers.
          {
            const v128_t x0 = wasm_v128_load(xb), x1 = wasm_v128_load(xb + 4);
            const v128_t x2 = wasm_v128_load(xb + 8), x3 = wasm_v128_load(xb + 12);
            ax = wasm_f32x4_add(ax, wasm_f32x4_add(wasm_f32x4_add(x0, x1), wasm_f32x4_add(x2, x3)));
#define WQ_ROW(acc, r)                                                                         \
  {                                                                                            \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                            \
    const v128_t c0 = wasm_f32x4_convert_i32x4(wasm_v128_and(v, mask));                        \
    const v128_t c1 = wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(v, 4), mask));     \
    const v128_t c2 = wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(v, 8), mask));     \
    const v128_t c3 = wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(v, 12), mask));    \
    acc = wasm_f32x4_add(acc, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(c0, x0),            \
                                                            wasm_f32x4_mul(c1, x1)),           \
                                             wasm_f32x4_add(wasm_f32x4_mul(c2, x2),            \
                                                            wasm_f32x4_mul(c3, x3))));         \
  }
            WQ_ROW(a0, 0)
            WQ_ROW(a1, 1)
            WQ_ROW(a2, 2)
            WQ_ROW(a3, 3)
#undef WQ_ROW
          }
          {
            const v128_t x4 = wasm_v128_load(xb + 16), x5 = wasm_v128_load(xb + 20);
            const v128_t x6 = wasm_v128_load(xb + 24), x7 = wasm_v128_load(xb + 28);
            ax = wasm_f32x4_add(ax, wasm_f32x4_add(wasm_f32x4_add(x4, x5), wasm_f32x4_add(x6, x7)));
#define WQ_ROW(acc, r)                                                                         \
  {                                                                                            \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                            \
    const v128_t c4 = wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(v, 16), mask));    \
    const v128_t c5 = wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(v, 20), mask));    \
    const v128_t c6 = wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(v, 24), mask));    \
    const v128_t c7 = wasm_f32x4_convert_i32x4(wasm_u32x4_shr(v, 28));                         \
    acc = wasm_f32x4_add(acc, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(c4, x4),            \
                                                            wasm_f32x4_mul(c5, x5)),           \
                                             wasm_f32x4_add(wasm_f32x4_mul(c6, x6),            \
                                                            wasm_f32x4_mul(c7, x7))));         \
  }
            WQ_ROW(a0, 0)
            WQ_ROW(a1, 1)
            WQ_ROW(a2, 2)
            WQ_ROW(a3, 3)
#undef WQ_ROW
          }
        }
        const v128_t zu = wasm_f32x4_convert_i32x4(load_zero_codes_i32(zp + g * kGemmNr));
        const v128_t dot = wasm_f32x4_sub(hsum4_f32(a0, a1, a2, a3),
                                          wasm_f32x4_mul(zu, splat_sum_f32(ax)));
        t = wasm_f32x4_add(t, wasm_f32x4_mul(dot, wasm_v128_load(sp + g * kGemmNr)));
      }
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(t, vb) : t, rows);
    }
  }
}

// ---- 2-bit weights per group, float activations ----------------------------------------------

// A 16-byte load covers two rows' blocks: words [r.w0 r.w1 r+1.w0 r+1.w1]. Field f of every word
// holds elements (2f, 2f+1) of both rows, which meet the activations (x[2f] x[2f+1]) loaded twice
// (load64_splat). Accumulators hold [r r r+1 r+1] partial sums.
void gemm_q2g_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.blocks_per_group();
  const size_t panel_bytes = kGemmNr * geo.groups * bpg * 8;
  const v128_t mask = wasm_i32x4_splat(0x03);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + (j / kGemmNr) * panel_bytes;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = zero + (j / kGemmNr) * geo.groups * kGemmNr;
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const float* xb = x + i * kpad;
      const uint8_t* wb = wp;
      v128_t t = wasm_f32x4_splat(0.0f);
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a01 = wasm_f32x4_splat(0.0f), a23 = a01, ax = a01;
        for (size_t b = 0; b < bpg; ++b, xb += kQLowBlock, wb += kGemmNr * 8) {
          const v128_t v01 = wasm_v128_load(wb), v23 = wasm_v128_load(wb + 16);
          // 16 fields in 4 quads; each quad's products are summed in a tree before the
          // accumulator, so the accumulators see 4 dependent adds per block, not 16.
          for (int q = 0; q < 4; ++q) {
            v128_t s01 = wasm_f32x4_splat(0.0f), s23 = s01, sx = s01;
#define WQ_FIELD(f)                                                                          \
  {                                                                                          \
    const v128_t xd = wasm_v128_load64_splat(xb + 2 * (f));                                  \
    sx = wasm_f32x4_add(sx, xd);                                                             \
    s01 = wasm_f32x4_add(s01, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(                       \
                                  wasm_v128_and(wasm_u32x4_shr(v01, 2 * (f)), mask)), xd));  \
    s23 = wasm_f32x4_add(s23, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(                       \
                                  wasm_v128_and(wasm_u32x4_shr(v23, 2 * (f)), mask)), xd));  \
  }
            WQ_FIELD(4 * q + 0)
            WQ_FIELD(4 * q + 1)
            WQ_FIELD(4 * q + 2)
            WQ_FIELD(4 * q + 3)
#undef WQ_FIELD
            a01 = wasm_f32x4_add(a01, s01);
            a23 = wasm_f32x4_add(a23, s23);
            ax = wasm_f32x4_add(ax, sx);
          }
        }
        // [r0 r0' r1 r1'] + [r2 ...] -> [r0 r1 r2 r3]; ax lanes 0 + 1 are the group's sum of x.
        const v128_t rowsum = wasm_f32x4_add(wasm_i32x4_shuffle(a01, a23, 0, 2, 4, 6),
                                             wasm_i32x4_shuffle(a01, a23, 1, 3, 5, 7));
        const v128_t sx = wasm_f32x4_add(wasm_i32x4_shuffle(ax, ax, 0, 0, 0, 0),
                                         wasm_i32x4_shuffle(ax, ax, 1, 1, 1, 1));
        const v128_t zu = wasm_f32x4_convert_i32x4(load_zero_codes_i32(zp + g * kGemmNr));
        const v128_t dot = wasm_f32x4_sub(rowsum, wasm_f32x4_mul(zu, sx));
        t = wasm_f32x4_add(t, wasm_f32x4_mul(dot, wasm_v128_load(sp + g * kGemmNr)));
      }
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(t, vb) : t, rows);
    }
  }
}

// ---- 4-bit weights per group, int8 activations -----------------------------------------------

// Read as 16-bit lanes, lane 2i of a block holds nibbles 0..3 of word i (elements 4f + i) and lane
// 2i+1 nibbles 4..7 (elements 16 + 4f + i); (v >> 4f) & 15 gives both. The activations are
// interleaved to match: bytes x[0..15] and x[16..31] zipped, then widened to 16 bits.
void gemm_q4g_s8__wasmsimd(size_t m, const GroupGeometry& geo, const int8_t* xq,
                           const float* xscale, const int32_t* xsum, const uint8_t* w,
                           const float* scale, const uint8_t* zero, const float* bias, float* y) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.blocks_per_group();
  const size_t panel_bytes = kGemmNr * geo.groups * bpg * 16;
  const v128_t mask = wasm_i16x8_splat(0x0F);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + (j / kGemmNr) * panel_bytes;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = zero + (j / kGemmNr) * geo.groups * kGemmNr;
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const int8_t* xb = xq + i * kpad;
      const int32_t* xs = xsum + i * geo.groups;
      const uint8_t* wb = wp;
      v128_t t = wasm_f32x4_splat(0.0f);
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        for (size_t b = 0; b < bpg; ++b, xb += kQLowBlock, wb += kGemmNr * 16) {
          const v128_t xl = wasm_v128_load(xb), xh = wasm_v128_load(xb + 16);
          const v128_t il = wasm_i8x16_shuffle(xl, xh, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
          const v128_t ih = wasm_i8x16_shuffle(xl, xh, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          const v128_t x0 = wasm_i16x8_extend_low_i8x16(il), x1 = wasm_i16x8_extend_high_i8x16(il);
          const v128_t x2 = wasm_i16x8_extend_low_i8x16(ih), x3 = wasm_i16x8_extend_high_i8x16(ih);
#define WQ_ROW(acc, r)                                                                           \
  {                                                                                              \
    const v128_t v = wasm_v128_load(wb + (r) * 16);                                              \
    const v128_t d01 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(v, mask), x0),          \
                                      wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u16x8_shr(v, 4), mask), x1)); \
    const v128_t d23 = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(wasm_u16x8_shr(v, 8), mask), x2), \
                                      wasm_i32x4_dot_i16x8(wasm_u16x8_shr(v, 12), x3));          \
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
                                          wasm_i32x4_mul(load_zero_codes_i32(zp + g * kGemmNr),
                                                         wasm_i32x4_splat(xs[g])));
        t = wasm_f32x4_add(t, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dot),
                                             wasm_v128_load(sp + g * kGemmNr)));
      }
      const v128_t s = wasm_f32x4_mul(t, wasm_f32x4_splat(xscale[i]));
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(s, vb) : s, rows);
    }
  }
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
