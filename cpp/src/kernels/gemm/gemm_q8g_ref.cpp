// Scalar references of the int8 per-group GEMM kernels (gemm_q8g.h): one output at a time, one
// element at a time through the packed layout. Written for clarity; compiled without
// auto-vectorization.
#include "kernels/gemm/gemm_q8g.h"

namespace webquant::kernels {
namespace {

// Unsigned code u of (row j, column c): padded column pc = g * Gp + e, then its block and byte.
int code_at(const GroupGeometry& geo, const uint8_t* w, size_t j, size_t c) {
  const size_t pc = (c / geo.group) * geo.gp + c % geo.group;
  size_t byte;
  unsigned shift;
  block_position(8, pc % kQ8Block, &byte, &shift);
  const size_t off = (j / kGemmNr) * kGemmNr * geo.kpad() + (pc / kQ8Block) * kGemmNr * kQ8Block +
                     (j % kGemmNr) * kQ8Block + byte;
  return w[off];
}

int zero_code(const uint8_t* zero, size_t p) { return zero ? zero[p] : kQ8Zero; }

}  // namespace

void gemm_q8g_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const uint8_t* zero, const float* bias, float* y,
                       float* work) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        const size_t p = qg_param_index(geo, j, g);
        const int zu = zero_code(zero, p);
        float acc = 0.0f;
        for (size_t e = 0; e < geo.group_len(g); ++e) {
          const size_t c = g * geo.group + e;
          acc += x[i * geo.k + c] * static_cast<float>(code_at(geo, w, j, c) - zu);
        }
        t += acc * scale[p];
      }
      y[i * geo.n + j] = bias ? t + bias[j] : t;
    }
  }
}

void gemm_q8g_s8__ref(size_t m, const GroupGeometry& geo, const int8_t* xq, const float* xscale,
                      const int32_t* xsum, const uint8_t* w, const float* scale,
                      const uint8_t* zero, const float* bias, float* y) {
  for (size_t i = 0; i < m; ++i) {
    const int8_t* xr = xq + i * geo.kpad();
    for (size_t j = 0; j < geo.n; ++j) {
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        const size_t p = qg_param_index(geo, j, g);
        const int zu = zero_code(zero, p);
        int32_t acc = 0;
        for (size_t e = 0; e < geo.group_len(g); ++e)
          acc += int32_t(xr[g * geo.gp + e]) * (code_at(geo, w, j, g * geo.group + e) - zu);
        t += static_cast<float>(acc) * scale[p];
      }
      const float v = t * xscale[i];
      y[i * geo.n + j] = bias ? v + bias[j] : v;
    }
  }
}

}  // namespace webquant::kernels
