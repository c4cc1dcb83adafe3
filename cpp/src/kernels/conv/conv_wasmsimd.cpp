// WASM SIMD128 versions of conv.h (see the header for layouts); each carries its scalar tail.
#include "kernels/conv/conv.h"

#if WEBQUANT_SIMD
#include <cmath>
#include <cstring>

namespace webquant::kernels {
namespace {

template <typename T>
inline void copy_run(T* dst, const T* src, size_t n) {
  constexpr size_t kLanes = 16 / sizeof(T);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) wasm_v128_store(dst + i, wasm_v128_load(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}
template <typename T>
inline void zero_run(T* dst, size_t n) {
  constexpr size_t kLanes = 16 / sizeof(T);
  const v128_t z = wasm_i32x4_splat(0);
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) wasm_v128_store(dst + i, z);
  for (; i < n; ++i) dst[i] = T(0);
}

template <typename T>
void im2col_simd(const ConvGeometry& g, size_t c0, size_t cg, size_t ld, const T* x, T* cols) {
  const size_t oh = g.oh(), ow = g.ow(), k = g.kh * g.kw * cg;
  for (size_t oy = 0; oy < oh; ++oy) {
    for (size_t ox = 0; ox < ow; ++ox) {
      T* row = cols + (oy * ow + ox) * ld;
      for (size_t ky = 0; ky < g.kh; ++ky) {
        const long iy = long(oy * g.stride_h + ky * g.dil_h) - long(g.pad_h);
        for (size_t kx = 0; kx < g.kw; ++kx) {
          const long ix = long(ox * g.stride_w + kx * g.dil_w) - long(g.pad_w);
          T* dst = row + (ky * g.kw + kx) * cg;
          if (iy < 0 || ix < 0 || iy >= long(g.h) || ix >= long(g.w)) {
            zero_run(dst, cg);
          } else {
            copy_run(dst, x + (size_t(iy) * g.w + size_t(ix)) * g.c + c0, cg);
          }
        }
      }
      zero_run(row + k, ld - k);
    }
  }
}

}  // namespace

void im2col_hwc_f32__wasmsimd(const ConvGeometry& g, size_t c0, size_t cg, size_t ld,
                              const float* x, float* cols) {
  im2col_simd(g, c0, cg, ld, x, cols);
}
void im2col_hwc_s8__wasmsimd(const ConvGeometry& g, size_t c0, size_t cg, size_t ld,
                             const int8_t* x, int8_t* cols) {
  im2col_simd(g, c0, cg, ld, x, cols);
}

void quantize_static_f32_s8__wasmsimd(size_t n, const float* x, float scale, int8_t* q) {
  const v128_t s = wasm_f32x4_splat(scale);
  const v128_t hi = wasm_f32x4_splat(127.0f), lo = wasm_f32x4_splat(-127.0f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    v128_t r[4];
    for (int j = 0; j < 4; ++j) {
      v128_t v = wasm_f32x4_nearest(wasm_f32x4_div(wasm_v128_load(x + i + 4 * j), s));
      // pmin/pmax keep a NaN first operand; trunc_sat then maps NaN to 0, as the reference.
      v = wasm_f32x4_pmin(v, hi);
      v = wasm_f32x4_pmax(v, lo);
      r[j] = wasm_i32x4_trunc_sat_f32x4(v);
    }
    const v128_t a = wasm_i16x8_narrow_i32x4(r[0], r[1]);
    const v128_t b = wasm_i16x8_narrow_i32x4(r[2], r[3]);
    wasm_v128_store(q + i, wasm_i8x16_narrow_i16x8(a, b));
  }
  for (; i < n; ++i) {
    float v = std::nearbyint(x[i] / scale);
    if (std::isnan(v)) v = 0.0f;
    if (v > 127.0f) v = 127.0f;
    if (v < -127.0f) v = -127.0f;
    q[i] = static_cast<int8_t>(v);
  }
}

}  // namespace webquant::kernels
#endif
