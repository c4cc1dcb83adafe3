// Linear quantization, exactly as the "Quantization Fundamentals / in Depth" courses define it
// (see shared design doc quantization.md):
//   q  = clamp(round_half_even(r / s + z), qmin, qmax)
//   r' = s * (q - z)
// Asymmetric: s = (rmax - rmin) / (qmax - qmin), z = clamp(round(qmin - rmin / s), qmin, qmax).
// Symmetric:  s = max|r| / qmax_pos, z = 0 for signed types; for unsigned types z is the mid code
//             2^(b-1) and s = max|r| / (qmax - z), i.e. the signed grid shifted (PyTorch quint8).
// Degenerate runs: a constant run c != 0 has its range widened to include 0 (asymmetric) and
// gets s = |c| / m, m the largest power of two <= qmax - qmin (asymmetric) or <= qmax - z
// (symmetric), so c round-trips exactly; an all-zero run gets s = 1 and z = clamp(0)
// (asymmetric) or the mode's fixed z. A scale below FLT_MIN is raised to FLT_MIN.
// Non-constant runs follow the course formula as is: an all-positive run in asymmetric mode gets
// z clamped to qmin (the course's behaviour; PyTorch's observers would widen the range to 0).
// NaN or Inf in the input is a kNonFinite error, never quantized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "webquant/status.h"

namespace webquant {

enum class QuantMode : int { kSymmetric = 0, kAsymmetric = 1 };
enum class Granularity : int { kPerTensor = 0, kPerChannel = 1, kPerGroup = 2 };

struct QuantScheme {
  int bits = 8;            // 2, 3, 4 or 8
  bool is_signed = true;   // int<bits> or uint<bits>
  QuantMode mode = QuantMode::kSymmetric;
  Granularity granularity = Granularity::kPerTensor;
  int axis = 0;            // per-channel: the channel axis (negative counts from the end)
  int group_size = 0;      // per-group: G, consecutive elements along the last axis
  bool pad = false;        // per-group: allow last_dim % G != 0 (the last group of a row is short:
                           // last_dim - (ng - 1) G elements, ng = ceil(last_dim / G); linear layers
                           // use the same "ragged" convention, LinearQuantSpec::ragged)
};

// Validates bits/axis/group size against a shape; kInvalidArgument with a message otherwise.
Status validate_scheme(const QuantScheme& scheme, const std::vector<int64_t>& shape);

// A quantized tensor, owning its storage.
//  codes: numel bytes, row-major like the input; int8 two's complement when scheme.is_signed,
//         uint8 otherwise. Every code lies in [qmin, qmax] of the scheme's bit width.
//  scales / zero_points: one per (tensor | channel | group); zero_points are integer codes.
//  param_shape: per-tensor {1}; per-channel {shape[axis]}; per-group {numel / last, ceil(last / G)}.
struct QuantizedTensor {
  std::vector<int64_t> shape;
  QuantScheme scheme;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
  std::vector<int64_t> param_shape;

  size_t numel() const { return codes.size(); }
  int32_t code(size_t i) const {
    return scheme.is_signed ? static_cast<int32_t>(static_cast<int8_t>(codes[i])) : codes[i];
  }
};

// The course's get_q_scale_and_zero_point for one run of n values (n >= 1).
Status compute_scale_zero_point(const float* x, size_t n, int bits, bool is_signed, QuantMode mode,
                                float* scale, int32_t* zero_point);

// Same, for `count` runs of `run` contiguous values, run k starting at x[k * stride]
// (run == 1: x[0], x[stride], ...): per-channel along a non-last axis.
Status compute_scale_zero_point_strided(const float* x, size_t count, size_t run, size_t stride,
                                        int bits, bool is_signed, QuantMode mode, float* scale,
                                        int32_t* zero_point);

// Quantizes a row-major float tensor. numel must be >= 1 and match shape.
Status quantize(const float* x, const std::vector<int64_t>& shape, const QuantScheme& scheme,
                QuantizedTensor* out);

// Quantizes with given scales/zero points (param_shape must match what the scheme implies).
// scales must be finite and > 0, zero points within [qmin, qmax] (symmetric: exactly the fixed z).
Status quantize_with_params(const float* x, const std::vector<int64_t>& shape,
                            const QuantScheme& scheme, const std::vector<float>& scales,
                            const std::vector<int32_t>& zero_points, QuantizedTensor* out);

// r' = s * (q - z) for every element; out has q.numel() floats. q must be consistent (as
// quantize leaves it); otherwise out is filled with NaN.
void dequantize(const QuantizedTensor& q, float* out);

// Error of a round trip: MSE, max |a - b|, SQNR = 10 log10(sum a^2 / sum (a-b)^2) in dB
// (+inf when the error is exactly zero).
struct ErrorMetrics {
  double mse = 0;
  double max_abs = 0;
  double sqnr_db = 0;
};
ErrorMetrics error_metrics(const float* reference, const float* approx, size_t n);

}  // namespace webquant
