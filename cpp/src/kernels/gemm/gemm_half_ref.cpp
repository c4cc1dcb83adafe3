// Scalar references of the half-precision-weight GEMM kernels (gemm.h): one output at a time,
// each weight widened with the core's scalar conversion, float32 products and sums in order.
// Written for clarity; compiled without auto-vectorization.
#include "kernels/gemm/gemm.h"
#include "webquant/convert.h"

namespace webquant::kernels {
namespace {

template <float (*Widen)(uint16_t)>
void gemm_half_ref(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                   const float* bias, float* y) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (size_t c = 0; c < k; ++c) acc += x[i * k + c] * Widen(w[j * k + c]);
      y[i * n + j] = bias ? acc + bias[j] : acc;
    }
  }
}

}  // namespace

size_t gemm_half_workspace(size_t m, size_t k) { return m >= 3 ? kGemmNr * k : 0; }

void gemm_f16_f32__ref(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                       const float* bias, float* y, float* /*work*/) {
  gemm_half_ref<fp16_to_fp32>(m, n, k, x, w, bias, y);
}

void gemm_bf16_f32__ref(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                        const float* bias, float* y, float* /*work*/) {
  gemm_half_ref<bf16_to_fp32>(m, n, k, x, w, bias, y);
}

}  // namespace webquant::kernels
