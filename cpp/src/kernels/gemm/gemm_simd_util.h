// Inline WASM SIMD128 helpers shared by the GEMM kernel files (gemm_wasmsimd.cpp,
// gemm_s8_wasmsimd.cpp, gemm_q8g_wasmsimd.cpp, the x16 decode kernels). Internal: include only from a file compiled when
// WEBQUANT_SIMD is 1.
#pragma once

#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/simd.h"

namespace webquant::kernels::simd_gemm {

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
// int8 activations put in the q8c weights' byte order (byte 4i + t = element 4t + i), so a dot
// product pairs each activation with its weight.
inline v128_t q8_order(v128_t x) {
  return wasm_i8x16_shuffle(x, x, 0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
}
// Bytes a[0..7] / a[8..15] interleaved with b's: a0 b0 a1 b1 ...
inline v128_t zip_lo8(v128_t a, v128_t b) {
  return wasm_i8x16_shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
inline v128_t zip_hi8(v128_t a, v128_t b) {
  return wasm_i8x16_shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}
// round_half_even(p[0..3] / s) as int32 (NaN -> 0, like the reference).
inline v128_t quantize4(const float* p, v128_t vs) {
  return wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_div(wasm_v128_load(p), vs)));
}
// Unsigned field (w >> shift) & mask as floats.
inline v128_t field_f32(v128_t w, int shift, v128_t mask) {
  return wasm_f32x4_convert_i32x4(wasm_v128_and(wasm_u32x4_shr(w, shift), mask));
}

// Keeps a loop body one basic block: V8 schedules the vector ops of a block freely and spills
// when too many are live at once.
#if defined(__clang__)
#define WQ_NO_UNROLL _Pragma("clang loop unroll(disable)")
#else
#define WQ_NO_UNROLL
#endif

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
  const v128_t b = wasm_v128_load32_zero(z);
  return wasm_i8x16_shuffle(b, wasm_i32x4_splat(0), 0, 16, 16, 16, 1, 16, 16, 16, 2, 16, 16, 16, 3,
                            16, 16, 16);
}


// Scale of element e of a block in the prepared activations: 2^-shift of the field holding it,
// as the kernel extracts it (int8: the top byte is shifted down, so its scale is 1; 4-bit:
// nibbles 4..7 are masked after a shift by 16; 2-bit: fields 4q.. after a shift by 8q).
template <int kBits>
float field_scale(size_t e) {
  int shift;
  if (kBits == 8) shift = e / 4 < 3 ? 8 * int(e / 4) : 0;
  else if (kBits == 4) shift = 4 * int((e / 4) % 4);  // second half: the word is shifted by 16
  else shift = 2 * int((e / 2) % 4);  // fields 4q..4q+3 are masked after a shift by 8q
  return std::ldexp(1.0f, -shift);
}

// Row i of the activations, for the float kernels of a kBits layout: each group copied to its
// padded slot (zeros after its length: G, or less for a ragged last group), every element times
// field_scale (if kPrescale), and the group's plain sum of x. xp: kpad floats, xsum: groups floats.
template <int kBits, bool kPrescale = true>
void prepare_row(const GroupGeometry& geo, const float* x, float* xp, float* xsum) {
  constexpr size_t kBe = kBits == 8 ? kQ8Block : kQLowBlock;
  alignas(16) float scales[kBe];
  for (size_t e = 0; e < kBe; ++e) scales[e] = kPrescale ? field_scale<kBits>(e) : 1.0f;
  for (size_t g = 0; g < geo.groups; ++g) {
    const float* src = x + g * geo.group;
    float* dst = xp + g * geo.gp;
    const size_t len = geo.group_len(g);
    v128_t sum = wasm_f32x4_splat(0.0f);
    for (size_t b = 0; b < geo.gp; b += kBe) {
      alignas(16) float tail[kBe];
      const float* s = src + b;
      if (b + kBe > len) {  // a partial (or, past a ragged group's end, empty) block: zero-padded
        for (size_t e = 0; e < kBe; ++e) tail[e] = b + e < len ? src[b + e] : 0.0f;
        s = tail;
      }
      for (size_t e = 0; e < kBe; e += 4) {
        const v128_t v = wasm_v128_load(s + e);
        sum = wasm_f32x4_add(sum, v);
        wasm_v128_store(dst + b + e, wasm_f32x4_mul(v, wasm_v128_load(scales + e)));
      }
    }
    xsum[g] = sum_f32(sum);
  }
}

// ---- prefill (m >= kPrefillRows) for the float-activation kernels ----------------------------
// Each panel is dequantized once (w = scale * (u - zu), 4 rows x kpad floats in the workspace)
// and multiplied with two activation rows at a time, so the decode cost is shared by all m rows.

// [y0 y1 y2 y3] for activation row xa (and xb when not null) against 4 float rows w0..w3 over
// kp elements (a multiple of 4).
inline void dot_panel_f32_rows(const float* w0, const float* w1, const float* w2,
                               const float* w3, size_t kp, const float* xa, const float* xb,
                               v128_t* ya, v128_t* yb) {
  v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
  if (xb) {
    v128_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (size_t c = 0; c < kp; c += 4) {
      const v128_t u = wasm_v128_load(xa + c), v = wasm_v128_load(xb + c);
      const v128_t q0 = wasm_v128_load(w0 + c), q1 = wasm_v128_load(w1 + c);
      const v128_t q2 = wasm_v128_load(w2 + c), q3 = wasm_v128_load(w3 + c);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(q0, u));
      b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(q0, v));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(q1, u));
      b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(q1, v));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(q2, u));
      b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(q2, v));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(q3, u));
      b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(q3, v));
    }
    *yb = hsum4_f32(b0, b1, b2, b3);
  } else {
    for (size_t c = 0; c < kp; c += 4) {
      const v128_t u = wasm_v128_load(xa + c);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(w0 + c), u));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(w1 + c), u));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load(w2 + c), u));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load(w3 + c), u));
    }
  }
  *ya = hsum4_f32(a0, a1, a2, a3);
}
inline void dot_panel_f32(const float* wd, size_t kp, const float* xa, const float* xb,
                          v128_t* ya, v128_t* yb) {
  dot_panel_f32_rows(wd, wd + kp, wd + 2 * kp, wd + 3 * kp, kp, xa, xb, ya, yb);
}

// ---- 16-bit integer activations (the x16 model decode: gemm_q4g_x16, gemm_q8g_x16) ----------
// One block of 32 activations rounded to int16 with a power-of-two scale: with max|x| in
// [2^(E-1), 2^E), e = 15 - E and q = round(x 2^e) (the narrow clamps a maximum that rounds to 32768),
// so every element is carried to within 2^-15 of the block's largest |x|.
struct X16Block {
  v128_t h[4];       // elements 8i .. 8i + 7 of the block in h[i] (natural order)
  float inv = 0.0f;  // 2^-e
  int32_t qsum = 0;  // sum of the 32 codes as stored (exact)
  bool finite = true;  // false: the block held NaN or Inf (then every code is 0)
};

// Largest |v| of p[0..31]; NaN if any is NaN (std::fmax would drop it).
inline float x16_block_max_abs(const float* p) {
  v128_t m = wasm_f32x4_abs(wasm_v128_load(p));
  for (size_t i = 4; i < kQLowBlock; i += 4)
    m = wasm_f32x4_max(m, wasm_f32x4_abs(wasm_v128_load(p + i)));
  alignas(16) float t[4];
  wasm_v128_store(t, m);
  float mx = 0.0f;
  for (float v : t) mx = std::isnan(v) || v > mx ? v : mx;
  return mx;
}

// blk: 32 floats, 16-byte aligned (zero where the block is padding); cleared when not finite.
inline X16Block x16_block(float* blk) {
  X16Block r;
  float mx = x16_block_max_abs(blk);
  if (!std::isfinite(mx)) {
    r.finite = false;  // the codes are never read; keep them defined
    std::memset(blk, 0, kQLowBlock * sizeof(float));
    mx = 0.0f;
  }
  int e = 0;
  if (mx > 0.0f) {
    int ex;
    std::frexp(mx, &ex);           // mx in [2^(ex-1), 2^ex)
    e = ex < -85 ? 100 : 15 - ex;  // a block below 2^-86 keeps 2^e a normal float
  }
  r.inv = std::ldexp(1.0f, -e);
  const v128_t up = wasm_f32x4_splat(std::ldexp(1.0f, e));
  v128_t q[8];
  for (int i = 0; i < 8; ++i) {
    const v128_t t = wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(blk + 4 * i), up));
    q[i] = wasm_i32x4_trunc_sat_f32x4(t);  // |t| <= 32768; the narrow below clamps 32768
  }
  for (int i = 0; i < 4; ++i) r.h[i] = wasm_i16x8_narrow_i32x4(q[2 * i], q[2 * i + 1]);
  // The block's sum as the kernels see it (the clamped codes): exact in int32.
  const v128_t ones = wasm_i16x8_splat(1);
  const v128_t qs = wasm_i32x4_add(
      wasm_i32x4_add(wasm_i32x4_dot_i16x8(r.h[0], ones), wasm_i32x4_dot_i16x8(r.h[1], ones)),
      wasm_i32x4_add(wasm_i32x4_dot_i16x8(r.h[2], ones), wasm_i32x4_dot_i16x8(r.h[3], ones)));
  alignas(16) int32_t qt[4];
  wasm_v128_store(qt, qs);
  r.qsum = qt[0] + qt[1] + qt[2] + qt[3];
  return r;
}

// The float offsets of one panel's rows (x16 kernels with float group offsets, the GGUF
// float-minimum layers): offset row-major [n, groups], the panel starting at row j with `rows`
// valid rows (a short last panel repeats its first row, whose lanes are never stored).
struct RowOffsets {
  const float* r[kGemmNr] = {};
  v128_t at(size_t g) const { return wasm_f32x4_make(r[0][g], r[1][g], r[2][g], r[3][g]); }
};
inline RowOffsets row_offsets(const float* offset, size_t j, size_t rows, size_t groups) {
  RowOffsets o;
  for (size_t r = 0; r < kGemmNr; ++r) o.r[r] = offset + (j + (r < rows ? r : 0)) * groups;
  return o;
}

}  // namespace webquant::kernels::simd_gemm
