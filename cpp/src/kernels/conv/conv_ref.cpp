// Scalar references of conv.h: one element at a time, written for clarity.
#include <cmath>

#include "kernels/conv/conv.h"

namespace webquant::kernels {
namespace {

template <typename T>
void im2col_ref(const ConvGeometry& g, size_t c0, size_t cg, size_t ld, const T* x, T* cols) {
  const size_t oh = g.oh(), ow = g.ow();
  for (size_t oy = 0; oy < oh; ++oy) {
    for (size_t ox = 0; ox < ow; ++ox) {
      T* row = cols + (oy * ow + ox) * ld;
      for (size_t col = 0; col < ld; ++col) row[col] = T(0);
      for (size_t ky = 0; ky < g.kh; ++ky) {
        for (size_t kx = 0; kx < g.kw; ++kx) {
          // Signed arithmetic: padding makes iy, ix negative at the borders.
          const long iy = long(oy * g.stride_h + ky * g.dil_h) - long(g.pad_h);
          const long ix = long(ox * g.stride_w + kx * g.dil_w) - long(g.pad_w);
          if (iy < 0 || ix < 0 || iy >= long(g.h) || ix >= long(g.w)) continue;
          for (size_t ci = 0; ci < cg; ++ci) {
            row[(ky * g.kw + kx) * cg + ci] = x[(size_t(iy) * g.w + size_t(ix)) * g.c + c0 + ci];
          }
        }
      }
    }
  }
}

}  // namespace

void im2col_hwc_f32__ref(const ConvGeometry& g, size_t c0, size_t cg, size_t ld, const float* x,
                         float* cols) {
  im2col_ref(g, c0, cg, ld, x, cols);
}
void im2col_hwc_s8__ref(const ConvGeometry& g, size_t c0, size_t cg, size_t ld, const int8_t* x,
                        int8_t* cols) {
  im2col_ref(g, c0, cg, ld, x, cols);
}

void quantize_static_f32_s8__ref(size_t n, const float* x, float scale, int8_t* q) {
  for (size_t i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] / scale);  // default rounding mode: half to even
    if (std::isnan(v)) v = 0.0f;
    if (v > 127.0f) v = 127.0f;
    if (v < -127.0f) v = -127.0f;
    q[i] = static_cast<int8_t>(v);
  }
}

}  // namespace webquant::kernels
