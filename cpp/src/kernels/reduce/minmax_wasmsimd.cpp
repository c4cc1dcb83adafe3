#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>

#include "kernels/kernels.h"

namespace webquant::kernels {

// pmin/pmax are single instructions on every engine but do not propagate NaN, so finiteness is
// tracked separately: the largest |x| bit pattern (sign masked off, so a signed max works) is
// >= 0x7F800000 exactly when some element is +-Inf or NaN.
MinMax minmax_f32__wasmsimd(const float* x, size_t n) {
  size_t i = 0;
  MinMax m{x[0], x[0], true};
  if (n >= 8) {
    const v128_t abs_mask = wasm_i32x4_splat(0x7FFFFFFF);
    v128_t mn0 = wasm_v128_load(x), mx0 = mn0, mn1 = mn0, mx1 = mn0;
    v128_t bits0 = wasm_i32x4_splat(0), bits1 = bits0;
    for (; i + 8 <= n; i += 8) {
      const v128_t a = wasm_v128_load(x + i);
      const v128_t b = wasm_v128_load(x + i + 4);
      mn0 = wasm_f32x4_pmin(mn0, a);
      mx0 = wasm_f32x4_pmax(mx0, a);
      mn1 = wasm_f32x4_pmin(mn1, b);
      mx1 = wasm_f32x4_pmax(mx1, b);
      bits0 = wasm_i32x4_max(bits0, wasm_v128_and(a, abs_mask));
      bits1 = wasm_i32x4_max(bits1, wasm_v128_and(b, abs_mask));
    }
    mn0 = wasm_f32x4_pmin(mn0, mn1);
    mx0 = wasm_f32x4_pmax(mx0, mx1);
    bits0 = wasm_i32x4_max(bits0, bits1);
    // Fold 4 lanes to 1.
    mn0 = wasm_f32x4_pmin(mn0, wasm_i32x4_shuffle(mn0, mn0, 2, 3, 0, 1));
    mx0 = wasm_f32x4_pmax(mx0, wasm_i32x4_shuffle(mx0, mx0, 2, 3, 0, 1));
    mn0 = wasm_f32x4_pmin(mn0, wasm_i32x4_shuffle(mn0, mn0, 1, 0, 3, 2));
    mx0 = wasm_f32x4_pmax(mx0, wasm_i32x4_shuffle(mx0, mx0, 1, 0, 3, 2));
    m.min = wasm_f32x4_extract_lane(mn0, 0);
    m.max = wasm_f32x4_extract_lane(mx0, 0);
    m.finite = !wasm_i32x4_bitmask(wasm_i32x4_gt(bits0, wasm_i32x4_splat(0x7F7FFFFF)));
  }
  for (; i < n; ++i) {
    if (!std::isfinite(x[i])) m.finite = false;
    if (x[i] < m.min) m.min = x[i];
    if (x[i] > m.max) m.max = x[i];
  }
  return m;
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
