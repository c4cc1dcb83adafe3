// SiLU with a vector exponential: silu(x) = x / (1 + e) for x > 0 and x e / (1 + e) otherwise, with
// e = exp(-|x|) <= 1, so nothing overflows. exp is Cephes' expf: n = round(z log2 e), r = z - n ln 2
// in two parts (Cody-Waite), a degree-5 polynomial for exp(r) on |r| <= ln2 / 2, then 2^n put in
// the exponent bits; below z = -87 (where 2^n would leave the normal range) e is 0, so silu there
// is -0 where the reference gives a value below 1e-36 in magnitude. NaN stays NaN, silu(+inf) =
// +inf, silu(-inf) = NaN as in the reference (-inf / inf).
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>

#include "kernels/kernels.h"

namespace webquant::kernels {
namespace {

inline v128_t silu4(v128_t x) {
  const v128_t z = wasm_f32x4_neg(wasm_f32x4_abs(x));
  const v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(z, wasm_f32x4_splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(z, wasm_f32x4_mul(n, wasm_f32x4_splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, wasm_f32x4_splat(-2.12194440e-4f)));
  v128_t p = wasm_f32x4_splat(1.9875691500e-4f);
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.3981999507e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(8.3334519073e-3f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(4.1665795894e-2f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(1.6666665459e-1f));
  p = wasm_f32x4_add(wasm_f32x4_mul(p, r), wasm_f32x4_splat(5.0000001201e-1f));
  p = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(wasm_f32x4_mul(p, r), r), r),
                     wasm_f32x4_splat(1.0f));
  const v128_t two_n =
      wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  v128_t e = wasm_f32x4_mul(p, two_n);
  e = wasm_v128_andnot(e, wasm_f32x4_lt(z, wasm_f32x4_splat(-87.0f)));
  const v128_t num = wasm_v128_bitselect(x, wasm_f32x4_mul(x, e), wasm_f32x4_gt(x, wasm_f32x4_splat(0.0f)));
  return wasm_f32x4_div(num, wasm_f32x4_add(wasm_f32x4_splat(1.0f), e));
}

}  // namespace

void silu_mul_f32__wasmsimd(float* g, const float* u, size_t n) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t s = silu4(wasm_v128_load(g + i));
    if (u) s = wasm_f32x4_mul(s, wasm_v128_load(u + i));
    wasm_v128_store(g + i, s);
  }
  if (i < n) {  // the tail through one padded vector
    float t[4] = {0, 0, 0, 0};
    for (size_t j = i; j < n; ++j) t[j - i] = g[j];
    v128_t s = silu4(wasm_v128_load(t));
    wasm_v128_store(t, s);
    for (size_t j = i; j < n; ++j) g[j] = u ? t[j - i] * u[j] : t[j - i];
  }
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
