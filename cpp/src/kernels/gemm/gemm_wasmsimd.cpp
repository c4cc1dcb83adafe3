// WASM SIMD128 GEMM kernels over the layouts of gemm.h, float activations (the int8-activation
// kernels are in gemm_s8_wasmsimd.cpp). Shared shape of every kernel:
//  for each panel of 4 output rows, for each activation row: stream the panel's blocks, keep one
//  accumulator vector per output row, fold the 4 accumulators into one vector [y0 y1 y2 y3]
//  (hsum4) at the end of a group or row, then scale / add bias with one vector op each.
// Weights never go through a per-element branch or shuffle: the block layouts put consecutive
// elements in the lanes that one AND (or one shift) extracts. Float-activation kernels first write
// the activations, scaled by the power of two each field carries, into the caller's workspace.
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_simd_util.h"

namespace webquant::kernels {
namespace {

using namespace simd_gemm;

// ---- prefill (m >= kPrefillRows) for the float-activation kernels: see gemm_simd_util.h ----

// Dequantizes panel p (rows 4p..4p+3) into out[4][kpad].
template <int kBits>
void decode_panel(const GroupGeometry& geo, const uint8_t* w, const float* scale,
                  const uint8_t* zero, size_t p, float* out) {
  const size_t kpad = geo.kpad();
  if (kBits == 8) {
    const uint8_t* wp = w + p * kGemmNr * kpad;
    const v128_t mask = wasm_i32x4_splat(0xFF), z = wasm_f32x4_splat(float(kQ8Zero));
    for (size_t r = 0; r < kGemmNr; ++r) {
      const v128_t s = wasm_f32x4_splat(scale[p * kGemmNr + r]);
      for (size_t b = 0; b < kpad / kQ8Block; ++b) {
        const v128_t v = wasm_v128_load(wp + (b * kGemmNr + r) * 16);
        float* o = out + r * kpad + b * kQ8Block;
        for (int t = 0; t < 4; ++t) {
          const v128_t c = field_f32(v, 8 * t, mask);
          wasm_v128_store(o + 4 * t, wasm_f32x4_mul(wasm_f32x4_sub(c, z), s));
        }
      }
    }
    return;
  }
  constexpr size_t kBb = kBits == 4 ? 16 : 8;  // bytes of one row's block
  const size_t bpg = geo.blocks_per_group();
  const uint8_t* wp = w + p * kGemmNr * geo.groups * bpg * kBb;
  const v128_t mask = wasm_i32x4_splat((1 << kBits) - 1);
  for (size_t g = 0; g < geo.groups; ++g) {
    for (size_t r = 0; r < kGemmNr; ++r) {
      const size_t idx = (p * geo.groups + g) * kGemmNr + r;
      const v128_t s = wasm_f32x4_splat(scale[idx]);
      const v128_t z = wasm_f32x4_splat(zero ? float(zero[idx]) : float(1 << (kBits - 1)));
      for (size_t b = 0; b < bpg; ++b) {
        const uint8_t* blk = wp + ((g * bpg + b) * kGemmNr + r) * kBb;
        float* o = out + r * kpad + g * geo.gp + b * kQLowBlock;
        if (kBits == 4) {  // nibble n of the 4 words: elements 4n .. 4n+3
          const v128_t v = wasm_v128_load(blk);
          for (int n = 0; n < 8; ++n) {
            const v128_t c = field_f32(v, 4 * n, mask);
            wasm_v128_store(o + 4 * n, wasm_f32x4_mul(wasm_f32x4_sub(c, z), s));
          }
        } else {  // field f of the 2 words: elements 2f, 2f+1
          const v128_t v = wasm_v128_load64_zero(blk);
          for (int f = 0; f < 16; ++f) {
            const v128_t c = field_f32(v, 2 * f, mask);
            wasm_v128_store64_lane(o + 2 * f, wasm_f32x4_mul(wasm_f32x4_sub(c, z), s), 0);
          }
        }
      }
    }
  }
}

// The prefill path of gemm_q8c_f32 / gemm_q4g_f32 / gemm_q2g_f32 (work: gemm_f32_workspace).
template <int kBits>
void prefill_f32(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                 const float* scale, const uint8_t* zero, const float* bias, float* y,
                 float* work) {
  const size_t n = geo.n, kpad = geo.kpad();
  float* xp = work;               // m x kpad: padded activations, not pre-scaled
  float* wd = work + m * kpad;    // 4 x kpad: the current panel, dequantized
  float* sums = wd + kGemmNr * kpad;  // groups floats (unused sums of x)
  for (size_t i = 0; i < m; ++i) prepare_row<kBits, false>(geo, x + i * geo.k, xp + i * kpad, sums);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    decode_panel<kBits>(geo, w, scale, zero, j / kGemmNr, wd);
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

}  // namespace

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
    const size_t k4 = k & ~size_t(3);
    size_t i = 0;
    for (; i + 2 <= m; i += 2) {  // two activation rows share every weight load
      const float* xa = x + i * k;
      const float* xb = xa + k;
      v128_t ya = wasm_f32x4_splat(0.0f), yb = ya;
      dot_panel_f32_rows(w0, w1, w2, w3, k4, xa, xb, &ya, &yb);
      if (k4 < k) {
        float ta[4] = {0, 0, 0, 0}, tb[4] = {0, 0, 0, 0};
        for (size_t c = k4; c < k; ++c) {
          ta[0] += xa[c] * w0[c], tb[0] += xb[c] * w0[c];
          ta[1] += xa[c] * w1[c], tb[1] += xb[c] * w1[c];
          ta[2] += xa[c] * w2[c], tb[2] += xb[c] * w2[c];
          ta[3] += xa[c] * w3[c], tb[3] += xb[c] * w3[c];
        }
        ya = wasm_f32x4_add(ya, wasm_v128_load(ta));
        yb = wasm_f32x4_add(yb, wasm_v128_load(tb));
      }
      wasm_v128_store(y + i * n + j, wasm_f32x4_add(ya, vb));
      wasm_v128_store(y + (i + 1) * n + j, wasm_f32x4_add(yb, vb));
    }
    for (; i < m; ++i) {
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
        b = wasm_f32x4_add(b, wasm_f32x4_mul(wasm_v128_load(xr + c + 4),
                                             wasm_v128_load(wr + c + 4)));
      }
      float s = sum_f32(wasm_f32x4_add(a, b));
      for (; c < k; ++c) s += xr[c] * wr[c];
      y[i * n + j] = bias ? s + bias[j] : s;
    }
  }
}

// ---- float activations ------------------------------------------------------------------------

// int8: (w & 0xFF << 8t) is u * 2^8t for bytes t = 0..2 and w >> 24 is u for t = 3 (u = q + 128).
void gemm_q8c_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const float* bias, float* y, float* work) {
  if (m >= kPrefillRows) return prefill_f32<8>(m, geo, x, w, scale, nullptr, bias, y, work);
  const size_t n = geo.n, kp = geo.kpad(), blocks = kp / kQ8Block;
  for (size_t i = 0; i < m; ++i)
    prepare_row<8>(geo, x + i * geo.k, work + i * (kp + 1), work + i * (kp + 1) + kp);
  const v128_t m0 = wasm_i32x4_splat(0xFF), m1 = wasm_i32x4_splat(0xFF00);
  const v128_t m2 = wasm_i32x4_splat(0xFF0000), zero = wasm_f32x4_splat(float(kQ8Zero));
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + j * kp;
    const v128_t vs = wasm_v128_load(scale + j);
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const float* xr = work + i * (kp + 1);
      v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
      const uint8_t* wb = wp;
      for (size_t b = 0; b < blocks; ++b, wb += kGemmNr * kQ8Block, xr += kQ8Block) {
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
      // sum x (u - 128) = sum x u - 128 sum x; xr now points at the row's sum of x.
      const v128_t dot = wasm_f32x4_sub(hsum4_f32(a0, a1, a2, a3),
                                        wasm_f32x4_mul(zero, wasm_f32x4_splat(*xr)));
      const v128_t s = wasm_f32x4_mul(dot, vs);
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(s, vb) : s, rows);
    }
  }
}

// 4-bit: (w & 0xF << 4n) is u * 2^4n for nibbles n = 0..3; the same masks on w >> 16 give nibbles
// 4..7. The loop body is half a block (16 elements, 4 vectors per row): V8 schedules the pure
// vector ops of one loop body freely, and a whole block's 32 live vectors would spill.
namespace {
template <bool kAsym>
void q4g_f32(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
             const float* scale, const uint8_t* zero, const float* bias, float* y, float* work) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.blocks_per_group();
  const size_t stride = kpad + geo.groups, panel_bytes = kGemmNr * geo.groups * bpg * 16;
  for (size_t i = 0; i < m; ++i)
    prepare_row<4>(geo, x + i * geo.k, work + i * stride, work + i * stride + kpad);
  const v128_t m0 = wasm_i32x4_splat(0xF), m1 = wasm_i32x4_splat(0xF0);
  const v128_t m2 = wasm_i32x4_splat(0xF00), m3 = wasm_i32x4_splat(0xF000);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + (j / kGemmNr) * panel_bytes;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = kAsym ? zero + (j / kGemmNr) * geo.groups * kGemmNr : nullptr;
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const float* xb = work + i * stride;
      const float* xs = xb + kpad;
      const uint8_t* wb = wp;
      v128_t t = wasm_f32x4_splat(0.0f);
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
        // Elements 0..15 of every block of the group (nibbles 0..3), then 16..31 (the same masks
        // after a shift by 16): two loops with constant shifts, each body one half block.
#define WQ_ROW(acc, r, shift)                                                                    \
  {                                                                                              \
    const v128_t v = wasm_u32x4_shr(wasm_v128_load(wh + (r) * 16), shift);                       \
    const v128_t c0 = wasm_f32x4_convert_i32x4(wasm_v128_and(v, m0));                            \
    const v128_t c1 = wasm_f32x4_convert_i32x4(wasm_v128_and(v, m1));                            \
    const v128_t c2 = wasm_f32x4_convert_i32x4(wasm_v128_and(v, m2));                            \
    const v128_t c3 = wasm_f32x4_convert_i32x4(wasm_v128_and(v, m3));                            \
    acc = wasm_f32x4_add(acc, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(c0, x0),              \
                                                            wasm_f32x4_mul(c1, x1)),             \
                                             wasm_f32x4_add(wasm_f32x4_mul(c2, x2),              \
                                                            wasm_f32x4_mul(c3, x3))));           \
  }
#define WQ_HALF(shift)                                                                           \
  for (size_t b = 0; b < bpg; ++b) {                                                             \
    const uint8_t* wh = wb + b * kGemmNr * 16;                                                   \
    const float* xh = xb + b * kQLowBlock + (shift);                                             \
    const v128_t x0 = wasm_v128_load(xh), x1 = wasm_v128_load(xh + 4);                           \
    const v128_t x2 = wasm_v128_load(xh + 8), x3 = wasm_v128_load(xh + 12);                      \
    WQ_ROW(a0, 0, shift)                                                                         \
    WQ_ROW(a1, 1, shift)                                                                         \
    WQ_ROW(a2, 2, shift)                                                                         \
    WQ_ROW(a3, 3, shift)                                                                         \
  }
        WQ_HALF(0)
        WQ_HALF(16)
#undef WQ_HALF
#undef WQ_ROW
        xb += bpg * kQLowBlock;
        wb += bpg * kGemmNr * 16;
        const v128_t zu = kAsym ? wasm_f32x4_convert_i32x4(load_zero_codes_i32(zp + g * kGemmNr))
                                : wasm_f32x4_splat(8.0f);
        const v128_t dot = wasm_f32x4_sub(hsum4_f32(a0, a1, a2, a3),
                                          wasm_f32x4_mul(zu, wasm_f32x4_splat(xs[g])));
        t = wasm_f32x4_add(t, wasm_f32x4_mul(dot, wasm_v128_load(sp + g * kGemmNr)));
      }
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(t, vb) : t, rows);
    }
  }
}
}  // namespace

void gemm_q4g_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y,
                            float* work) {
  if (m >= kPrefillRows)
    prefill_f32<4>(m, geo, x, w, scale, zero, bias, y, work);
  else if (zero)
    q4g_f32<true>(m, geo, x, w, scale, zero, bias, y, work);
  else
    q4g_f32<false>(m, geo, x, w, scale, zero, bias, y, work);
}

// 2-bit: a 16-byte load covers two rows' blocks, words [r.w0 r.w1 r+1.w0 r+1.w1]; field f of every
// word holds elements (2f, 2f+1) of both rows, which meet the activations (x[2f] x[2f+1]) loaded
// twice (load64_splat). Accumulators hold [r r r+1 r+1] partial sums. The loop body is a quarter
// block: fields 4q..4q+3, masked with 3 << 2f' after a shift by 8q.
namespace {
template <bool kAsym>
void q2g_f32(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
             const float* scale, const uint8_t* zero, const float* bias, float* y, float* work) {
  const size_t n = geo.n, kpad = geo.kpad(), bpg = geo.blocks_per_group();
  const size_t stride = kpad + geo.groups, panel_bytes = kGemmNr * geo.groups * bpg * 8;
  for (size_t i = 0; i < m; ++i)
    prepare_row<2>(geo, x + i * geo.k, work + i * stride, work + i * stride + kpad);
  const v128_t m0 = wasm_i32x4_splat(0x3), m1 = wasm_i32x4_splat(0xC);
  const v128_t m2 = wasm_i32x4_splat(0x30), m3 = wasm_i32x4_splat(0xC0);
  for (size_t j = 0; j < n; j += kGemmNr) {
    const size_t rows = n - j < kGemmNr ? n - j : kGemmNr;
    const uint8_t* wp = w + (j / kGemmNr) * panel_bytes;
    const float* sp = scale + (j / kGemmNr) * geo.groups * kGemmNr;
    const uint8_t* zp = kAsym ? zero + (j / kGemmNr) * geo.groups * kGemmNr : nullptr;
    const v128_t vb = bias ? load_partial(bias + j, rows) : wasm_f32x4_splat(0.0f);
    for (size_t i = 0; i < m; ++i) {
      const float* xb = work + i * stride;
      const float* xs = xb + kpad;
      const uint8_t* wb = wp;
      v128_t t = wasm_f32x4_splat(0.0f);
      for (size_t g = 0; g < geo.groups; ++g) {
        v128_t a01 = wasm_f32x4_splat(0.0f), a23 = a01;
WQ_NO_UNROLL
        for (size_t q = 0; q < 4 * bpg; ++q, xb += 8) {
          const uint32_t shift = uint32_t(q & 3) * 8;
          const uint8_t* wq = wb + (q >> 2) * kGemmNr * 8;
          const v128_t v01 = wasm_u32x4_shr(wasm_v128_load(wq), shift);
          const v128_t v23 = wasm_u32x4_shr(wasm_v128_load(wq + 16), shift);
          const v128_t xa = wasm_v128_load64_splat(xb), xb2 = wasm_v128_load64_splat(xb + 2);
          const v128_t xc = wasm_v128_load64_splat(xb + 4), xd = wasm_v128_load64_splat(xb + 6);
#define WQ_CODE(v, mk) wasm_f32x4_convert_i32x4(wasm_v128_and(v, mk))
#define WQ_PAIR(acc, v)                                                                      \
  acc = wasm_f32x4_add(                                                                      \
      acc, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(WQ_CODE(v, m0), xa),                 \
                                         wasm_f32x4_mul(WQ_CODE(v, m1), xb2)),               \
                          wasm_f32x4_add(wasm_f32x4_mul(WQ_CODE(v, m2), xc),                 \
                                         wasm_f32x4_mul(WQ_CODE(v, m3), xd))));
          WQ_PAIR(a01, v01)
          WQ_PAIR(a23, v23)
#undef WQ_PAIR
#undef WQ_CODE
        }
        wb += bpg * kGemmNr * 8;
        // [r0 r0' r1 r1'] + [r2 ...] -> [r0 r1 r2 r3].
        const v128_t rowsum = wasm_f32x4_add(wasm_i32x4_shuffle(a01, a23, 0, 2, 4, 6),
                                             wasm_i32x4_shuffle(a01, a23, 1, 3, 5, 7));
        const v128_t zu = kAsym ? wasm_f32x4_convert_i32x4(load_zero_codes_i32(zp + g * kGemmNr))
                                : wasm_f32x4_splat(2.0f);
        const v128_t dot = wasm_f32x4_sub(rowsum, wasm_f32x4_mul(zu, wasm_f32x4_splat(xs[g])));
        t = wasm_f32x4_add(t, wasm_f32x4_mul(dot, wasm_v128_load(sp + g * kGemmNr)));
      }
      store_partial(y + i * n + j, bias ? wasm_f32x4_add(t, vb) : t, rows);
    }
  }
}
}  // namespace

void gemm_q2g_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y,
                            float* work) {
  if (m >= kPrefillRows)
    prefill_f32<2>(m, geo, x, w, scale, zero, bias, y, work);
  else if (zero)
    q2g_f32<true>(m, geo, x, w, scale, zero, bias, y, work);
  else
    q2g_f32<false>(m, geo, x, w, scale, zero, bias, y, work);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
