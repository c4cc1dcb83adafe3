// Scalar reference of the static activation row quantizer (quantize_static.h): plain loops, one
// element at a time, written for clarity.
#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/quantize_static.h"

namespace webquant::kernels {

void quantize_rows_static_f32_s8__ref(size_t m, size_t k, size_t group, size_t group_stride,
                                      const float* x, const float* inv_scales, float scale,
                                      int8_t* xq, float* xscale, int32_t* group_sum) {
  const size_t groups = (k + group - 1) / group;  // the last group ragged when group does not divide k
  for (size_t i = 0; i < m; ++i) {
    const float* row = x + i * k;
    int8_t* out = xq + i * groups * group_stride;
    int32_t* sums = group_sum + i * groups;
    bool finite = true;
    for (size_t g = 0; g < groups; ++g) {
      const size_t len = group_length(k, group, g);
      int32_t sum = 0;
      for (size_t e = 0; e < group_stride; ++e) {
        int8_t q = 0;
        if (e < len) {
          const size_t c = g * group + e;
          const float v = inv_scales != nullptr ? row[c] * inv_scales[c] : row[c];
          if (!std::isfinite(v)) finite = false;
          float r = std::nearbyint(v / scale);  // default rounding mode: half to even
          if (std::isnan(r)) r = 0.0f;
          r = std::fmin(std::fmax(r, -127.0f), 127.0f);
          q = static_cast<int8_t>(r);
        }
        out[g * group_stride + e] = q;
        sum += q;
      }
      sums[g] = sum;
    }
    xscale[i] = finite ? scale : NAN;
    if (!finite) {
      std::memset(out, 0, groups * group_stride);
      for (size_t g = 0; g < groups; ++g) sums[g] = 0;
    }
  }
}

}  // namespace webquant::kernels
