// WASM SIMD128 static activation row quantizer (quantize_static.h): per row one pass over x that
// multiplies by the input scales' reciprocals, divides by the scale, rounds half to even, clamps,
// narrows to int8, sums each group's codes and tracks finiteness, 16 elements per step (then 4,
// then scalar). Bit-identical to the reference: the same float32 multiply and division per element,
// f32x4.nearest rounds half to even like nearbyint, and the clamp to +-127 precedes the exact
// integer conversion.
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/quantize_static.h"

#if WEBQUANT_SIMD
#include <cmath>
#include <cstring>

namespace webquant::kernels {
namespace {

struct StaticConsts {
  v128_t s, hi, lo, inf;
};

// Codes of 4 values as int32 lanes; ok &= |v| < inf (false for NaN and +-Inf).
template <bool kInv>
inline v128_t quantize_static4(const float* x, const float* inv, const StaticConsts& k, v128_t* ok) {
  v128_t v = wasm_v128_load(x);
  if (kInv) v = wasm_f32x4_mul(v, wasm_v128_load(inv));
  *ok = wasm_v128_and(*ok, wasm_f32x4_lt(wasm_f32x4_abs(v), k.inf));
  v128_t t = wasm_f32x4_nearest(wasm_f32x4_div(v, k.s));
  t = wasm_f32x4_pmin(t, k.hi);  // a NaN first operand stays NaN; trunc_sat maps it to 0
  t = wasm_f32x4_pmax(t, k.lo);
  return wasm_i32x4_trunc_sat_f32x4(t);
}

// The rows, with (kInv) or without input scales.
template <bool kInv>
void static_rows(size_t m, size_t k, size_t group, size_t group_stride, const float* x,
                 const float* inv_scales, float scale, int8_t* xq, float* xscale,
                 int32_t* group_sum) {
  const size_t groups = (k + group - 1) / group;  // the last group ragged when group does not divide k
  const StaticConsts kc{wasm_f32x4_splat(scale), wasm_f32x4_splat(127.0f), wasm_f32x4_splat(-127.0f),
                        wasm_f32x4_splat(INFINITY)};
  for (size_t i = 0; i < m; ++i) {
    const float* row = x + i * k;
    int8_t* out = xq + i * groups * group_stride;
    int32_t* sums = group_sum + i * groups;
    v128_t ok = wasm_i32x4_splat(-1);
    bool finite = true;
    for (size_t g = 0; g < groups; ++g) {
      const float* src = row + g * group;
      const float* inv = kInv ? inv_scales + g * group : nullptr;
      int8_t* dst = out + g * group_stride;
      const size_t len = group_length(k, group, g);
      v128_t vsum = wasm_i32x4_splat(0);
      size_t e = 0;
      for (; e + 16 <= len; e += 16) {
        const v128_t q0 = quantize_static4<kInv>(src + e, inv + (kInv ? e : 0), kc, &ok);
        const v128_t q1 = quantize_static4<kInv>(src + e + 4, inv + (kInv ? e + 4 : 0), kc, &ok);
        const v128_t q2 = quantize_static4<kInv>(src + e + 8, inv + (kInv ? e + 8 : 0), kc, &ok);
        const v128_t q3 = quantize_static4<kInv>(src + e + 12, inv + (kInv ? e + 12 : 0), kc, &ok);
        vsum = wasm_i32x4_add(vsum, wasm_i32x4_add(wasm_i32x4_add(q0, q1), wasm_i32x4_add(q2, q3)));
        // Codes lie in [-127, 127]: the saturating narrows are exact.
        wasm_v128_store(dst + e, wasm_i8x16_narrow_i16x8(wasm_i16x8_narrow_i32x4(q0, q1),
                                                         wasm_i16x8_narrow_i32x4(q2, q3)));
      }
      for (; e + 4 <= len; e += 4) {
        const v128_t q0 = quantize_static4<kInv>(src + e, inv + (kInv ? e : 0), kc, &ok);
        vsum = wasm_i32x4_add(vsum, q0);
        const v128_t h = wasm_i16x8_narrow_i32x4(q0, q0);
        wasm_v128_store32_lane(dst + e, wasm_i8x16_narrow_i16x8(h, h), 0);
      }
      int32_t sum = 0;
      for (; e < len; ++e) {
        const float v = kInv ? src[e] * inv[e] : src[e];
        if (!std::isfinite(v)) finite = false;
        float r = std::nearbyint(v / scale);
        if (std::isnan(r)) r = 0.0f;
        r = std::fmin(std::fmax(r, -127.0f), 127.0f);
        dst[e] = static_cast<int8_t>(r);
        sum += dst[e];
      }
      if (group_stride > len) std::memset(dst + len, 0, group_stride - len);
      const v128_t t = wasm_i32x4_add(vsum, wasm_i32x4_shuffle(vsum, vsum, 2, 3, 0, 1));
      sums[g] = sum + wasm_i32x4_extract_lane(t, 0) + wasm_i32x4_extract_lane(t, 1);
    }
    finite = finite && wasm_i32x4_all_true(ok);
    xscale[i] = finite ? scale : NAN;
    if (!finite) {
      std::memset(out, 0, groups * group_stride);
      for (size_t g = 0; g < groups; ++g) sums[g] = 0;
    }
  }
}

}  // namespace

void quantize_rows_static_f32_s8__wasmsimd(size_t m, size_t k, size_t group, size_t group_stride,
                                           const float* x, const float* inv_scales, float scale,
                                           int8_t* xq, float* xscale, int32_t* group_sum) {
  if (inv_scales != nullptr) {
    static_rows<true>(m, k, group, group_stride, x, inv_scales, scale, xq, xscale, group_sum);
  } else {
    static_rows<false>(m, k, group, group_stride, x, nullptr, scale, xq, xscale, group_sum);
  }
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
