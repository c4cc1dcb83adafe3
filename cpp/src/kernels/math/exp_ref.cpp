// Scalar references of the exp kernels (kernels.h): the shared expf of exp_scalar.h, one
// element at a time.
#include "kernels/kernels.h"
#include "kernels/math/exp_scalar.h"

namespace webquant::kernels {

void exp_f32__ref(const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = exp_detail::expf_scalar(x[i]);
}

void silu_f32__ref(float* x, const float* u, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float s = x[i] / (1.0f + exp_detail::expf_scalar(-x[i]));
    x[i] = u != nullptr ? s * u[i] : s;
  }
}

}  // namespace webquant::kernels
