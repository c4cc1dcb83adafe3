// Scalar reference of the 3-bit grouped GEMM (gemm_q3g.h): written for clarity, never tuned.
#include "kernels/gemm/gemm_q3g.h"

namespace webquant::kernels {

void gemm_q3g_f32__ref(size_t m, const Q3gGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const float* zero, const float* bias, float* y,
                       float* /*work*/) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        const float s = scale[j * geo.groups + g], z = zero[j * geo.groups + g];
        float acc = 0.0f;
        for (size_t c = g * geo.group; c < g * geo.group + geo.group_len(g); ++c) {
          const float u = static_cast<float>(packed_q3g_get(geo, w, j, c));
          acc += x[i * geo.k + c] * (u - z);
        }
        t += s * acc;
      }
      y[i * geo.n + j] = t + (bias ? bias[j] : 0.0f);
    }
  }
}

}  // namespace webquant::kernels
