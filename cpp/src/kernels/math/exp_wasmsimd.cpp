// WASM SIMD exp kernels (kernels.h): the expf of exp_scalar.h two lanes at a time in f64x2 (the
// same double operations in the same order, so the same bits), the table read per lane. A vector
// of 4 holding any |x| >= 88, NaN or Inf takes the scalar path for all 4 (its special cases).
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include "kernels/kernels.h"
#include "kernels/math/exp_scalar.h"

namespace webquant::kernels {
namespace {

using namespace exp_detail;

inline v128_t exp_f64x2(v128_t xd) {
  const v128_t z = wasm_f64x2_mul(wasm_f64x2_splat(kInvLn2N), xd);
  const v128_t shifted = wasm_f64x2_add(z, wasm_f64x2_splat(kShift));  // its bits: ki
  const v128_t kd = wasm_f64x2_sub(shifted, wasm_f64x2_splat(kShift));
  const v128_t r = wasm_f64x2_sub(z, kd);
  const uint64_t k0 = static_cast<uint64_t>(wasm_i64x2_extract_lane(shifted, 0));
  const uint64_t k1 = static_cast<uint64_t>(wasm_i64x2_extract_lane(shifted, 1));
  const v128_t tab = wasm_i64x2_make(static_cast<int64_t>(kTable[k0 % kN]),
                                     static_cast<int64_t>(kTable[k1 % kN]));
  const v128_t s = wasm_i64x2_add(tab, wasm_i64x2_shl(shifted, 52 - kTableBits));
  const v128_t p = wasm_f64x2_add(wasm_f64x2_mul(wasm_f64x2_splat(kC0), r), wasm_f64x2_splat(kC1));
  const v128_t r2 = wasm_f64x2_mul(r, r);
  v128_t y = wasm_f64x2_add(wasm_f64x2_mul(wasm_f64x2_splat(kC2), r), wasm_f64x2_splat(1.0));
  y = wasm_f64x2_add(wasm_f64x2_mul(p, r2), y);
  return wasm_f64x2_mul(y, s);
}

// e^x for 4 lanes with no special case among them.
inline v128_t exp_f32x4(v128_t x) {
  const v128_t lo = exp_f64x2(wasm_f64x2_promote_low_f32x4(x));
  const v128_t hi = exp_f64x2(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(x, x, 2, 3, 2, 3)));
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0,
                            1, 4, 5);
}

inline bool any_special(v128_t x) {
  const v128_t a = wasm_v128_and(x, wasm_i32x4_splat(0x7fffffff));
  return wasm_v128_any_true(wasm_u32x4_ge(a, wasm_i32x4_splat(static_cast<int32_t>(kSpecialAbsBits))));
}

}  // namespace

void exp_f32__wasmsimd(const float* x, float* y, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    if (any_special(v)) {
      for (size_t e = i; e < i + 4; ++e) y[e] = expf_scalar(x[e]);
    } else {
      wasm_v128_store(y + i, exp_f32x4(v));
    }
  }
  for (; i < n; ++i) y[i] = expf_scalar(x[i]);
}

void silu_f32__wasmsimd(float* x, const float* u, size_t n) {
  size_t i = 0;
  const v128_t one = wasm_f32x4_splat(1.0f);
  for (; i + 4 <= n; i += 4) {
    const v128_t v = wasm_v128_load(x + i);
    const v128_t neg = wasm_f32x4_neg(v);
    if (any_special(neg)) {
      silu_f32__ref(x + i, u != nullptr ? u + i : nullptr, 4);
      continue;
    }
    v128_t s = wasm_f32x4_div(v, wasm_f32x4_add(one, exp_f32x4(neg)));
    if (u != nullptr) s = wasm_f32x4_mul(s, wasm_v128_load(u + i));
    wasm_v128_store(x + i, s);
  }
  silu_f32__ref(x + i, u != nullptr ? u + i : nullptr, n - i);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
