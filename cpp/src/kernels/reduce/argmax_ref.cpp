#include <cmath>

#include "kernels/kernels.h"

namespace webquant::kernels {

ArgMax argmax_f32__ref(const float* x, size_t n) {
  ArgMax r{0, true};
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) r.finite = false;
    if (x[i] > x[r.index]) r.index = i;  // strictly greater: the lowest index wins ties
  }
  return r;
}

}  // namespace webquant::kernels
