// Scalar references of the GEMM kernels: one output at a time, walking the packed layouts of
// gemm.h block by block. Written for clarity; compiled without auto-vectorization.
#include <cmath>

#include "kernels/gemm/gemm.h"

namespace webquant::kernels {
namespace {

// Byte of element e in a row's int8 block, and the code of element e in a 4/2-bit block.
inline size_t q8_byte(size_t e) {
  size_t byte;
  unsigned shift;
  block_position(8, e, &byte, &shift);
  return byte;
}

inline int block_code(const uint8_t* blk, int bits, size_t e) {
  size_t byte;
  unsigned shift;
  block_position(bits, e, &byte, &shift);
  return (blk[byte] >> shift) & ((1 << bits) - 1);
}

}  // namespace

void quantize_rows_f32_s8__ref(size_t m, size_t k, size_t group, size_t group_stride,
                               const float* x, int8_t* xq, float* scale, int32_t* group_sum) {
  const size_t groups = k / group;
  for (size_t i = 0; i < m; ++i) {
    const float* row = x + i * k;
    float amax = 0.0f;
    bool nan = false;
    for (size_t c = 0; c < k; ++c) {
      if (std::isnan(row[c])) nan = true;
      amax = std::fmax(amax, std::fabs(row[c]));
    }
    const float s = nan ? NAN : amax / 127.0f;
    scale[i] = s;
    int8_t* out = xq + i * groups * group_stride;
    for (size_t g = 0; g < groups; ++g) {
      int32_t sum = 0;
      for (size_t e = 0; e < group_stride; ++e) {
        int8_t q = 0;
        if (e < group && s > 0.0f) {
          const float v = std::nearbyint(row[g * group + e] / s);
          // NaN (an Inf element when s = Inf) becomes 0 like the SIMD saturating conversion.
          q = std::isnan(v) ? 0 : static_cast<int8_t>(std::fmin(std::fmax(v, -127.0f), 127.0f));
        }
        out[g * group_stride + e] = q;
        sum += q;
      }
      group_sum[i * groups + g] = sum;
    }
  }
}

void gemm_f32_f32__ref(size_t m, size_t n, size_t k, const float* x, const float* w,
                       const float* bias, float* y) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (size_t c = 0; c < k; ++c) acc += x[i * k + c] * w[j * k + c];
      y[i * n + j] = bias ? acc + bias[j] : acc;
    }
  }
}

void gemm_q8c_f32__ref(size_t m, size_t n, size_t k, const float* x, const int8_t* w,
                       const float* scale, const float* bias, float* y) {
  const size_t kp = round_up(k, kQ8Block);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      // Row j's first block inside its panel; consecutive blocks are 4 rows * 16 bytes apart.
      const int8_t* wr = w + (j / kGemmNr) * kGemmNr * kp + (j % kGemmNr) * kQ8Block;
      float acc = 0.0f;
      for (size_t b = 0; b < kp / kQ8Block; ++b)
        for (size_t e = 0; e < kQ8Block; ++e)
          acc += x[i * kp + b * kQ8Block + e] *
                 static_cast<float>(wr[b * kGemmNr * kQ8Block + q8_byte(e)]);
      y[i * n + j] = bias ? acc * scale[j] + bias[j] : acc * scale[j];
    }
  }
}

void gemm_q8c_s8__ref(size_t m, size_t n, size_t k, const int8_t* xq, const float* xscale,
                      const int8_t* w, const float* scale, const float* bias, float* y) {
  const size_t kp = round_up(k, kQ8Block);
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      const int8_t* wr = w + (j / kGemmNr) * kGemmNr * kp + (j % kGemmNr) * kQ8Block;
      int32_t acc = 0;
      for (size_t b = 0; b < kp / kQ8Block; ++b)
        for (size_t e = 0; e < kQ8Block; ++e)
          acc += int32_t(xq[i * kp + b * kQ8Block + e]) *
                 int32_t(wr[b * kGemmNr * kQ8Block + q8_byte(e)]);
      const float v = static_cast<float>(acc) * scale[j] * xscale[i];
      y[i * n + j] = bias ? v + bias[j] : v;
    }
  }
}

namespace {

template <int kBits>
void gemm_qg_f32_ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                     const float* scale, const uint8_t* zero, const float* bias, float* y) {
  constexpr size_t kBlockBytes = kBits == 4 ? 16 : 8;
  const size_t bpg = geo.blocks_per_group();
  const size_t panel_bytes = kGemmNr * geo.groups * bpg * kBlockBytes;
  const size_t kpad = geo.kpad();
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      const uint8_t* wr = w + (j / kGemmNr) * panel_bytes + (j % kGemmNr) * kBlockBytes;
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        const int zu = zero[qg_param_index(geo, j, g)];
        float acc = 0.0f;
        for (size_t b = 0; b < bpg; ++b) {
          const size_t blk = g * bpg + b;
          const float* xb = x + i * kpad + blk * kQLowBlock;
          for (size_t e = 0; e < kQLowBlock; ++e)
            acc += xb[e] * static_cast<float>(
                               block_code(wr + blk * kGemmNr * kBlockBytes, kBits, e) - zu);
        }
        t += acc * scale[qg_param_index(geo, j, g)];
      }
      y[i * geo.n + j] = bias ? t + bias[j] : t;
    }
  }
}

}  // namespace

void gemm_q4g_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const uint8_t* zero, const float* bias, float* y) {
  gemm_qg_f32_ref<4>(m, geo, x, w, scale, zero, bias, y);
}

void gemm_q2g_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const uint8_t* zero, const float* bias, float* y) {
  gemm_qg_f32_ref<2>(m, geo, x, w, scale, zero, bias, y);
}

void gemm_q4g_s8__ref(size_t m, const GroupGeometry& geo, const int8_t* xq, const float* xscale,
                      const int32_t* xsum, const uint8_t* w, const float* scale,
                      const uint8_t* zero, const float* bias, float* y) {
  const size_t bpg = geo.blocks_per_group();
  const size_t panel_bytes = kGemmNr * geo.groups * bpg * 16;
  const size_t kpad = geo.kpad();
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      const uint8_t* wr = w + (j / kGemmNr) * panel_bytes + (j % kGemmNr) * 16;
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        const int32_t zu = zero[qg_param_index(geo, j, g)];
        int32_t acc = 0;
        for (size_t b = 0; b < bpg; ++b) {
          const size_t blk = g * bpg + b;
          const int8_t* xb = xq + i * kpad + blk * kQLowBlock;
          for (size_t e = 0; e < kQLowBlock; ++e)
            acc += int32_t(xb[e]) * (block_code(wr + blk * kGemmNr * 16, 4, e) - zu);
        }
        t += static_cast<float>(acc) * scale[qg_param_index(geo, j, g)];
      }
      const float v = t * xscale[i];
      y[i * geo.n + j] = bias ? v + bias[j] : v;
    }
  }
}

}  // namespace webquant::kernels
