#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>

#include "kernels/kernels.h"

namespace webquant::kernels {

// Lane j of accumulator a (b) sees the elements i = 8t + j (8t + 4 + j) in increasing order and
// replaces its best only on a strictly greater value, so each lane holds the first maximum of its
// elements; the lanes are then folded by value, the lower index winning ties. Finiteness is
// tracked as in minmax_f32: the largest |x| bit pattern is >= 0x7F800000 exactly when some
// element is +-Inf or NaN (the index is then unspecified; the caller takes another path).
ArgMax argmax_f32__wasmsimd(const float* x, size_t n) {
  ArgMax r{0, true};
  size_t i = 0;
  float best = x[0];
  if (n >= 8) {
    const v128_t abs_mask = wasm_i32x4_splat(0x7FFFFFFF);
    v128_t va = wasm_v128_load(x), vb = wasm_v128_load(x + 4);
    v128_t ia = wasm_i32x4_make(0, 1, 2, 3), ib = wasm_i32x4_make(4, 5, 6, 7);
    v128_t cur_a = ia, cur_b = ib;
    const v128_t step = wasm_i32x4_splat(8);
    v128_t bits = wasm_i32x4_max(wasm_v128_and(va, abs_mask), wasm_v128_and(vb, abs_mask));
    for (i = 8; i + 8 <= n; i += 8) {
      const v128_t a = wasm_v128_load(x + i);
      const v128_t b = wasm_v128_load(x + i + 4);
      cur_a = wasm_i32x4_add(cur_a, step);
      cur_b = wasm_i32x4_add(cur_b, step);
      const v128_t gt_a = wasm_f32x4_gt(a, va);
      const v128_t gt_b = wasm_f32x4_gt(b, vb);
      va = wasm_v128_bitselect(a, va, gt_a);
      vb = wasm_v128_bitselect(b, vb, gt_b);
      ia = wasm_v128_bitselect(cur_a, ia, gt_a);
      ib = wasm_v128_bitselect(cur_b, ib, gt_b);
      bits = wasm_i32x4_max(bits, wasm_i32x4_max(wasm_v128_and(a, abs_mask), wasm_v128_and(b, abs_mask)));
    }
    r.finite = !wasm_i32x4_bitmask(wasm_i32x4_gt(bits, wasm_i32x4_splat(0x7F7FFFFF)));
    float vals[8];
    int32_t idx[8];
    wasm_v128_store(vals, va);
    wasm_v128_store(vals + 4, vb);
    wasm_v128_store(idx, ia);
    wasm_v128_store(idx + 4, ib);
    best = vals[0];
    r.index = static_cast<size_t>(idx[0]);
    for (int l = 1; l < 8; ++l) {
      const size_t li = static_cast<size_t>(idx[l]);
      if (vals[l] > best || (vals[l] == best && li < r.index)) {
        best = vals[l];
        r.index = li;
      }
    }
  }
  for (; i < n; ++i) {
    if (!std::isfinite(x[i])) r.finite = false;
    if (x[i] > best) {
      best = x[i];
      r.index = i;
    }
  }
  return r;
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
