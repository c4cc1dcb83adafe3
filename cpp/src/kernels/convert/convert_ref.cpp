#include "kernels/kernels.h"
#include "webquant/convert.h"

namespace webquant::kernels {

void convert_f32_f16__ref(const float* x, size_t n, uint16_t* y) {
  for (size_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}
void convert_f16_f32__ref(const uint16_t* x, size_t n, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}
void convert_f32_bf16__ref(const float* x, size_t n, uint16_t* y) {
  for (size_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}
void convert_bf16_f32__ref(const uint16_t* x, size_t n, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

}  // namespace webquant::kernels
