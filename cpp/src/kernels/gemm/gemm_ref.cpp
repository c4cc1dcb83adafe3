// Scalar references of the GEMM kernels: one output at a time, walking the packed layouts of
// gemm.h block by block. Written for clarity; compiled without auto-vectorization.
#include <cmath>

#include "kernels/gemm/gemm.h"

namespace webquant::kernels {
namespace {

// Code of element e of one row's block (int8: the unsigned byte u = q + 128).
inline int block_code(const uint8_t* blk, int bits, size_t e) {
  size_t byte;
  unsigned shift;
  block_position(bits, e, &byte, &shift);
  return bits == 8 ? blk[byte] : (blk[byte] >> shift) & ((1 << bits) - 1);
}

// Bytes of one row's block and the elements it holds.
inline size_t block_bytes(int bits) { return bits == 8 ? 16 : bits == 4 ? 16 : 8; }
inline size_t block_elems(int bits) { return bits == 8 ? kQ8Block : kQLowBlock; }

// First block of row j (blocks of one row are kGemmNr * block_bytes apart).
inline const uint8_t* row_start(const GroupGeometry& geo, int bits, const uint8_t* w, size_t j) {
  const size_t row_blocks = geo.kpad() / block_elems(bits);
  return w + (j / kGemmNr) * kGemmNr * row_blocks * block_bytes(bits) +
         (j % kGemmNr) * block_bytes(bits);
}

// sum_{c in group g} x[c] * (u[c] - zu) for row j (wr = row_start), x pointing at the group's
// first activation; the padding at the end of the group's last block (and after the codes of a
// ragged last group) is skipped.
template <int bits, typename X, typename Acc>
Acc dot_group(const GroupGeometry& geo, const X* x, const uint8_t* wr, size_t g, int zu) {
  const size_t be = block_elems(bits), first = g * geo.gp / be;
  Acc acc = 0;
  for (size_t e = 0; e < geo.group_len(g); ++e) {
    const uint8_t* blk = wr + (first + e / be) * kGemmNr * block_bytes(bits);
    acc += static_cast<Acc>(x[e]) * static_cast<Acc>(block_code(blk, bits, e % be) - zu);
  }
  return acc;
}

// sum_g scale[j, g] * sum_{c in g} x[c] (u - zu): the float-activation kernels (int8: one group,
// scale[j], zero code 128; zero == nullptr: the symmetric code 2^(bits-1)).
template <int bits>
float dot_groups_f32(const GroupGeometry& geo, const float* x, const uint8_t* w,
                     const float* scale, const uint8_t* zero, size_t j) {
  const uint8_t* wr = row_start(geo, bits, w, j);
  float t = 0.0f;
  for (size_t g = 0; g < geo.groups; ++g) {
    const size_t p = qg_param_index(geo, j, g);
    const float acc = dot_group<bits, float, float>(geo, x + g * geo.group, wr, g,
                                                    zero ? zero[p] : 1 << (bits - 1));
    t += acc * (bits == 8 ? scale[j] : scale[p]);
  }
  return t;
}

}  // namespace

void quantize_rows_f32_s8__ref(size_t m, size_t k, size_t group, size_t group_stride,
                               const float* x, int8_t* xq, float* scale, int32_t* group_sum) {
  const size_t groups = (k + group - 1) / group;
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
      const size_t len = group_length(k, group, g);
      int32_t sum = 0;
      for (size_t e = 0; e < group_stride; ++e) {
        int8_t q = 0;
        if (e < len && s > 0.0f) {
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

void gemm_q8c_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const float* bias, float* y, float* work) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      const float v = dot_groups_f32<8>(geo, x + i * geo.k, w, scale, nullptr, j);  // zu = 128
      y[i * geo.n + j] = bias ? v + bias[j] : v;
    }
  }
}

void gemm_q4g_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const uint8_t* zero, const float* bias, float* y,
                       float* work) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      const float v = dot_groups_f32<4>(geo, x + i * geo.k, w, scale, zero, j);
      y[i * geo.n + j] = bias ? v + bias[j] : v;
    }
  }
}

void gemm_q2g_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const uint8_t* zero, const float* bias, float* y,
                       float* work) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      const float v = dot_groups_f32<2>(geo, x + i * geo.k, w, scale, zero, j);
      y[i * geo.n + j] = bias ? v + bias[j] : v;
    }
  }
}

void gemm_q8c_s8__ref(size_t m, const GroupGeometry& geo, const int8_t* xq, const float* xscale,
                      const int32_t* xsum, const uint8_t* w, const float* scale, const float* bias,
                      float* y) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      const int32_t acc = dot_group<8, int8_t, int32_t>(geo, xq + i * geo.kpad(),
                                                     row_start(geo, 8, w, j), 0, kQ8Zero);
      const float v = static_cast<float>(acc) * scale[j] * xscale[i];
      y[i * geo.n + j] = bias ? v + bias[j] : v;
    }
  }
}

void gemm_q4g_s8__ref(size_t m, const GroupGeometry& geo, const int8_t* xq, const float* xscale,
                      const int32_t* xsum, const uint8_t* w, const float* scale,
                      const uint8_t* zero, const float* bias, float* y) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < geo.n; ++j) {
      const uint8_t* wr = row_start(geo, 4, w, j);
      float t = 0.0f;
      for (size_t g = 0; g < geo.groups; ++g) {
        const size_t p = qg_param_index(geo, j, g);
        const int32_t acc =
            dot_group<4, int8_t, int32_t>(geo, xq + i * geo.kpad() + g * geo.gp, wr, g,
                                          zero ? zero[p] : 8);
        t += static_cast<float>(acc) * scale[p];
      }
      const float v = t * xscale[i];
      y[i * geo.n + j] = bias ? v + bias[j] : v;
    }
  }
}

}  // namespace webquant::kernels
