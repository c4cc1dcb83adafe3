// Scalar reference of the 4-bit codebook GEMM (gemm_lut4g.h): written for clarity, never tuned.
#include "kernels/gemm/gemm_lut4g.h"

namespace webquant::kernels {

void gemm_lut4g_f32__ref(size_t m, const Lut4gGeometry& geo, const float* x, const uint8_t* w,
                         const float* table, const float* scale, const float* bias, float* y,
                         float* /*work*/) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        float acc = 0.0f;
        for (size_t c = g * geo.group; c < g * geo.group + geo.group_len(g); ++c)
          acc += x[i * geo.k + c] * table[packed_lut4g_get(geo, w, j, c)];
        t += scale[j * geo.groups + g] * acc;
      }
      y[i * geo.n + j] = t + (bias ? bias[j] : 0.0f);
    }
  }
}

}  // namespace webquant::kernels
