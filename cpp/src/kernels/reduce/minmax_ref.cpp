#include <cmath>

#include "kernels/kernels.h"

namespace webquant::kernels {

MinMax minmax_f32__ref(const float* x, size_t n) {
  MinMax m{x[0], x[0], true};
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) m.finite = false;
    if (x[i] < m.min) m.min = x[i];
    if (x[i] > m.max) m.max = x[i];
  }
  return m;
}

}  // namespace webquant::kernels
