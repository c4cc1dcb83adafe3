// Linear layers for GGUF block types with a float minimum per sub-block (Q4_1, Q5_1, Q4_K, Q5_K):
// x = s * u - mn, u an unsigned code in [0, 2^bits), s and mn float32 per group of 32.
//
// mn / s is not an integer, so no integer zero point holds it. The layer is a symmetric integer
// layer on the signed codes c plus one float offset per group:
//   s > 0:  c = u - 2^(bits-1),       x = |s| c + (s 2^(bits-1) - mn)
//   s < 0:  c = 2^(bits-1) - 1 - u,   x = |s| c + (s (2^(bits-1) - 1) - mn)
//   s = 0:  c = 0 (scale 1),          x = -mn
// so y = inner(x) + sum_g offset[j, g] * (sum of x over group g): the inner layer runs on
// webquant's existing kernels (w4a16 g32 for 4-bit codes, w8a16 g32 for 5-bit), the offsets on the
// f32 GEMM kernel over the group sums (1/32 of the work). dequantize_weight() gives s * u - mn,
// ggml's float value bit for bit; the forward pass differs from it at float32 rounding level (the
// offset s 2^(bits-1) - mn is rounded once).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "webquant/linear.h"

namespace webquant::linear_detail {

struct GgufAffineWeight {
  int bits = 4;                // 4 or 5
  int out_features = 0;
  int in_features = 0;         // a multiple of 32
  std::vector<uint8_t> codes;  // [out, in] unsigned u
  std::vector<float> scales;   // [out, in / 32] s, any sign
  std::vector<float> mins;     // [out, in / 32] mn
  std::string type_name;       // e.g. "Q4_K", for describe()
};

// kInvalidArgument for sizes, codes out of range, or non-finite scales / mins.
Status make_linear_gguf_affine(const GgufAffineWeight& w, std::unique_ptr<LinearLayer>* out);

}  // namespace webquant::linear_detail
