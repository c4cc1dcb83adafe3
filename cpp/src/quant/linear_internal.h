// Internal pieces shared by the linear-layer files (linear_layers.cpp, linear_q8g.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "webquant/linear.h"

namespace webquant::linear_detail {

// describe() of a quantized layer: "<scheme> g<G> sym", "<scheme> per-channel asym",
// "<scheme> per-channel (172 % 32 != 0) sym", plus ", activations int8 per token" for A8 schemes.
std::string describe_quantized(LinearScheme scheme, int group, int in_features,
                               const std::string& fallback, bool asymmetric);

// int8 weights in groups (or per channel with zero points / a fallback note) on the q8g kernels:
// w8a16 or w8a8. q: [out, in] int8 codes; scales, zero_points: [out, in / group] (signed zero
// points, all 0 when symmetric). The caller has validated everything.
std::unique_ptr<LinearLayer> make_linear_q8g(LinearScheme scheme, bool asymmetric, int out, int in,
                                             int group, const int8_t* q, const float* scales,
                                             const int32_t* zero_points, std::vector<float> bias,
                                             std::string fallback);

// y[m, out] = x[m, in] W^T (+ bias) with W [out, in] in the half type `type` (kF16 / kBF16), on
// the threaded half-precision GEMM (also the tied output head reading a half embedding).
void forward_half(FloatType type, const uint16_t* w, int out_features, int in_features,
                  const float* bias, const float* x, size_t m, float* y);
// n values between float32 and the half type (the convert kernels: exact widening; narrowing
// rounds to nearest even).
void widen_half(FloatType type, const uint16_t* h, size_t n, float* out);
void narrow_half(FloatType type, const float* x, size_t n, uint16_t* out);

}  // namespace webquant::linear_detail
