#include "kernels/kernels.h"

namespace webquant::kernels {

void dequantize_s8_f32__ref(const int8_t* q, size_t n, float scale, float zero_point, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = (static_cast<float>(q[i]) - zero_point) * scale;
}

void dequantize_u8_f32__ref(const uint8_t* q, size_t n, float scale, float zero_point, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = (static_cast<float>(q[i]) - zero_point) * scale;
}

}  // namespace webquant::kernels
