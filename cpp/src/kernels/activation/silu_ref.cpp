#include <cmath>

#include "kernels/kernels.h"

namespace webquant::kernels {

void silu_mul_f32__ref(float* g, const float* u, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float s = g[i] / (1.0f + std::exp(-g[i]));
    g[i] = u ? s * u[i] : s;
  }
}

}  // namespace webquant::kernels
