#include <cmath>

#include "kernels/kernels.h"

namespace webquant::kernels {

// std::nearbyint rounds half to even in the default rounding mode, like torch.round.
void quantize_f32_q8__ref(const float* x, size_t n, float scale, float zero_point, float qmin,
                          float qmax, uint8_t* q) {
  for (size_t i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] / scale + zero_point);
    v = std::fmin(std::fmax(v, qmin), qmax);
    q[i] = static_cast<uint8_t>(static_cast<int32_t>(v));
  }
}

void quantize_f32_q8_vparams__ref(const float* x, size_t n, const float* scale,
                                  const float* zero_point, float qmin, float qmax, uint8_t* q) {
  for (size_t i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] / scale[i] + zero_point[i]);
    v = std::fmin(std::fmax(v, qmin), qmax);
    q[i] = static_cast<uint8_t>(static_cast<int32_t>(v));
  }
}

}  // namespace webquant::kernels
