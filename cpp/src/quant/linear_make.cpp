// Building linear layers (webquant/linear.h): make_linear_quantized quantizes float weights with
// the chosen scheme and method, make_linear_from_quantized validates stored integer data; both
// pick the layer class (linear_layers.cpp, linear_qg.cpp, linear_q8g.cpp, ...) for the scheme.
#include <cmath>
#include <string>
#include <vector>

#include "quant/calibration_internal.h"
#include "quant/linear_internal.h"
#include "webquant/linear.h"
#include "webquant/quant.h"

namespace webquant {
namespace {

// int32 accumulation of int8 x int8 products stays exact up to this many terms
// (127 * 128 * k < 2^31); int8 asymmetric weights have |q - z| <= 255 (127 * 255 * k < 2^31).
constexpr int kMaxA8PerChannelK = 131072;
constexpr int kMaxA8AsymInt8K = 65536;

// Quantizes W [n, k] with the library's own quantize() (signed int<bits>, per channel along axis
// 0 when group == k, else per group, padded: a ragged last group when group does not divide k), so
// dequantize_weight equals quantize -> dequantize exactly.
Status quantize_weight(const float* w, size_t n, size_t k, int bits, bool asymmetric, size_t group,
                       QuantizedTensor* qt) {
  QuantScheme qs;
  qs.bits = bits;
  qs.is_signed = true;
  qs.mode = asymmetric ? QuantMode::kAsymmetric : QuantMode::kSymmetric;
  if (group == k) {
    qs.granularity = Granularity::kPerChannel;
    qs.axis = 0;
  } else {
    qs.granularity = Granularity::kPerGroup;
    qs.group_size = static_cast<int>(group);
    qs.pad = k % group != 0;
  }
  return quantize(w, {static_cast<int64_t>(n), static_cast<int64_t>(k)}, qs, qt);
}

Status check_finite(const float* v, size_t n, int cols, const char* what) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) {
      std::string where = cols > 0 ? "[" + std::to_string(i / cols) + ", " +
                                         std::to_string(i % cols) + "]"
                                   : "[" + std::to_string(i) + "]";
      return Status::Error(StatusCode::kNonFinite,
                           std::string(what) + where + " is " + (std::isnan(v[i]) ? "NaN" : "Inf") +
                               ": a linear layer cannot be built from non-finite values");
    }
  }
  return Status::Ok();
}

bool valid_scheme(LinearScheme s) {
  const int v = static_cast<int>(s);
  return v >= 0 && v <= static_cast<int>(LinearScheme::kLut4A16);
}

Status check_sizes(int out_features, int in_features) {
  if (out_features < 1 || in_features < 1)
    return Status::Error(StatusCode::kInvalidArgument,
                         "linear layer needs out_features >= 1 and in_features >= 1 (got " +
                             std::to_string(out_features) + " x " + std::to_string(in_features) +
                             ")");
  return Status::Ok();
}

Status check_a8_size(LinearScheme scheme, int group, bool asymmetric) {
  const int limit = scheme == LinearScheme::kW8A8 && asymmetric ? kMaxA8AsymInt8K
                                                                  : kMaxA8PerChannelK;
  if (linear_detail::scheme_a8(scheme) && group > limit)
    return Status::Error(StatusCode::kInvalidArgument,
                         std::string(linear_scheme_name(scheme)) + (asymmetric ? " asym" : "") +
                             " accumulates " + std::to_string(group) +
                             " int8 products per group in int32; at most " +
                             std::to_string(limit) + " are exact");
  return Status::Ok();
}

}  // namespace

Status make_linear_quantized(const float* w, int out_features, int in_features, const float* bias,
                             const LinearQuantSpec& spec, std::unique_ptr<LinearLayer>* out,
                             std::string* note) {
  if (note) note->clear();
  if (!out) return Status::Error(StatusCode::kInvalidArgument, "out must not be null");
  if (!w) return Status::Error(StatusCode::kInvalidArgument, "weight pointer is null");
  WQ_RETURN_IF_ERROR(check_sizes(out_features, in_features));
  if (!valid_scheme(spec.scheme))
    return Status::Error(StatusCode::kInvalidArgument,
                         "unknown linear scheme " + std::to_string(static_cast<int>(spec.scheme)) +
                             " (expected f32, f16, bf16, w8a16, w4a16, w2a16, w8a8, w4a8, w3a16 or lut4a16)");
  const size_t n = out_features, k = in_features;
  WQ_RETURN_IF_ERROR(check_finite(w, n * k, in_features, "weight"));
  if (bias) WQ_RETURN_IF_ERROR(check_finite(bias, n, 0, "bias"));
  if (spec.scheme == LinearScheme::kF32) {
    *out = make_linear_f32(w, out_features, in_features, bias);
    return Status::Ok();
  }
  if (spec.scheme == LinearScheme::kF16 || spec.scheme == LinearScheme::kBF16) {
    const FloatType t = spec.scheme == LinearScheme::kF16 ? FloatType::kF16 : FloatType::kBF16;
    std::vector<uint16_t> h(n * k);
    linear_detail::narrow_half(t, w, n * k, h.data());
    *out = make_linear_half(t, std::move(h), out_features, in_features, bias);
    return Status::Ok();
  }
  if (spec.method != QuantMethod::kRtn && spec.method != QuantMethod::kHqq)
    return Status::Error(StatusCode::kInvalidArgument,
                         "unknown quantization method " +
                             std::to_string(static_cast<int>(spec.method)) +
                             " (expected rtn or hqq; gptq and awq are calibrated: quantize_calibrated)");
  if (spec.method == QuantMethod::kHqq)
    WQ_RETURN_IF_ERROR(linear_detail::check_hqq_spec(spec.scheme, spec.asymmetric));
  if (spec.range_search != 0 && spec.method != QuantMethod::kHqq)
    return Status::Error(StatusCode::kInvalidArgument,
                         "range_search (HQQ's range search) applies to method hqq only");
  if (spec.range_search < 0 || spec.range_search > 100)
    return Status::Error(StatusCode::kInvalidArgument,
                         "range_search must be in [0, 100] (got " +
                             std::to_string(spec.range_search) + ")");
  const bool lut = spec.scheme == LinearScheme::kLut4A16;
  if (lut != (spec.codebook != Codebook::kNone) || static_cast<int>(spec.codebook) < 0 ||
      static_cast<int>(spec.codebook) > 3)
    return Status::Error(StatusCode::kInvalidArgument,
                         lut ? "lut4a16 needs a codebook (nf4, log4 or kmeans4)"
                             : std::string("a codebook applies to lut4a16 only, not ") +
                                   linear_scheme_name(spec.scheme));
  if (lut && spec.asymmetric)
    return Status::Error(StatusCode::kInvalidArgument,
                         "codebook layers scale each group by its absmax: mode asymmetric does not apply");
  const int bits = linear_detail::scheme_bits(spec.scheme);
  std::vector<float> bias_v = bias ? std::vector<float>(bias, bias + n) : std::vector<float>();

  if (spec.group_size < 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "group_size must be >= 1, or 0 for per-channel scales (got " +
                             std::to_string(spec.group_size) + ")");
  int group = spec.group_size == 0 ? in_features : spec.group_size;
  std::string fallback;
  if (spec.ragged && group > in_features) group = in_features;  // one (whole) group per row
  if (in_features % group != 0 && !spec.ragged) {
    fallback = std::to_string(in_features) + " % " + std::to_string(group) + " != 0";
    if (note)
      *note = "in_features " + std::to_string(in_features) + " is not a multiple of group_size " +
              std::to_string(group) + ": using per-channel scales (one group of " +
              std::to_string(in_features) + " per output row)";
    group = in_features;
  }
  WQ_RETURN_IF_ERROR(check_a8_size(spec.scheme, group, spec.asymmetric));
  if (lut)
    return linear_detail::make_linear_lut4(w, out_features, in_features, group, spec.codebook,
                                           std::move(bias_v), std::move(fallback), out);
  if (spec.method == QuantMethod::kHqq)
    return linear_detail::make_linear_hqq(w, out_features, in_features, group, spec.scheme, bits,
                                          std::move(bias_v), std::move(fallback),
                                          spec.range_search, out);
  QuantizedTensor qt;
  WQ_RETURN_IF_ERROR(quantize_weight(w, n, k, bits, spec.asymmetric, group, &qt));
  if (bits == 8) {
    *out = linear_detail::make_linear_q8(spec.scheme, spec.asymmetric, out_features, in_features,
                                         group, reinterpret_cast<const int8_t*>(qt.codes.data()),
                                         qt.scales.data(), qt.zero_points.data(),
                                         std::move(bias_v), std::move(fallback));
    return Status::Ok();
  }
  if (bits == 3) {
    const std::vector<float> zf(qt.zero_points.begin(), qt.zero_points.end());
    *out = linear_detail::make_linear_q3g(QuantMethod::kRtn, spec.asymmetric, out_features,
                                          in_features, group,
                                          reinterpret_cast<const int8_t*>(qt.codes.data()),
                                          qt.scales.data(), zf.data(), std::move(bias_v),
                                          std::move(fallback));
    return Status::Ok();
  }
  *out = linear_detail::make_linear_qg(spec.scheme, bits, spec.asymmetric, out_features,
                                       in_features, group,
                                       reinterpret_cast<const int8_t*>(qt.codes.data()),
                                       qt.scales.data(), qt.zero_points.data(), std::move(bias_v),
                                       std::move(fallback));
  return Status::Ok();
}

Status make_linear_from_quantized(const LinearQuantizedData& d,
                                  std::unique_ptr<LinearLayer>* out) {
  if (!out) return Status::Error(StatusCode::kInvalidArgument, "out must not be null");
  WQ_RETURN_IF_ERROR(check_sizes(d.out_features, d.in_features));
  // Static int8 activations (with or without input scales, which that layer applies itself).
  if (d.activation_scale != 0.0f) return linear_detail::make_linear_static_a8(d, out);
  if (!d.input_scales.empty()) {  // AWQ: the plain layer behind per-input-channel scales
    if (d.input_scales.size() != static_cast<size_t>(d.in_features))
      return Status::Error(StatusCode::kShapeMismatch,
                           "input_scales has " + std::to_string(d.input_scales.size()) +
                               " values, expected in_features = " + std::to_string(d.in_features));
    for (size_t i = 0; i < d.input_scales.size(); ++i)
      if (!std::isfinite(d.input_scales[i]) || !(d.input_scales[i] > 0.0f))
        return Status::Error(StatusCode::kInvalidArgument,
                             "input scale " + std::to_string(d.input_scales[i]) + " at index " +
                                 std::to_string(i) + " must be finite and > 0");
    LinearQuantizedData plain = d;
    plain.input_scales.clear();
    std::unique_ptr<LinearLayer> inner;
    WQ_RETURN_IF_ERROR(make_linear_from_quantized(plain, &inner));
    *out = calib_detail::make_linear_input_scaled(std::move(inner), d.input_scales);
    return Status::Ok();
  }
  if (!valid_scheme(d.scheme) || is_float_scheme(d.scheme))
    return Status::Error(StatusCode::kInvalidArgument,
                         "quantized linear data needs a quantized scheme (w8a16, w4a16, w2a16, "
                         "w8a8 or w4a8)");
  const int bits = linear_detail::scheme_bits(d.scheme);
  const std::string name = linear_scheme_name(d.scheme);
  if (d.bits != bits)
    return Status::Error(StatusCode::kInvalidArgument, name + " stores " + std::to_string(bits) +
                                                           "-bit codes, got bits = " +
                                                           std::to_string(d.bits));
  if (d.group_size < 1 || d.group_size > d.in_features)
    return Status::Error(StatusCode::kInvalidArgument,
                         "group_size " + std::to_string(d.group_size) +
                             " must be in [1, in_features = " + std::to_string(d.in_features) + "]");
  WQ_RETURN_IF_ERROR(check_a8_size(d.scheme, d.group_size, d.asymmetric));
  // ceil: a ragged last group when group_size does not divide in_features (LinearQuantizedData).
  const size_t n = d.out_features, k = d.in_features, groups = (k + d.group_size - 1) / d.group_size;
  if (d.q.size() != n * k || d.scales.size() != n * groups || d.zero_points.size() != n * groups ||
      (!d.bias.empty() && d.bias.size() != n))
    return Status::Error(StatusCode::kShapeMismatch,
                         "quantized linear data sizes do not match " + std::to_string(n) + " x " +
                             std::to_string(k) + " with " + std::to_string(groups) +
                             " group(s) per row (q, scales, zero_points, bias)");
  const bool hqq = d.method == QuantMethod::kHqq;
  if (d.method != QuantMethod::kRtn && !hqq)
    return Status::Error(StatusCode::kInvalidArgument,
                         "unknown quantization method " + std::to_string(static_cast<int>(d.method)));
  if (hqq) WQ_RETURN_IF_ERROR(linear_detail::check_hqq_spec(d.scheme, d.asymmetric));
  if (hqq ? d.range_search < 0 || d.range_search > 100 : d.range_search != 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         hqq ? "range_search must be in [0, 100] (got " +
                                   std::to_string(d.range_search) + ")"
                             : std::string("range_search is a record of method hqq's grid only"));
  if ((d.scheme == LinearScheme::kLut4A16) != (d.codebook != Codebook::kNone) ||
      (d.scheme != LinearScheme::kLut4A16 && !d.table.empty()))
    return Status::Error(StatusCode::kInvalidArgument,
                         "a codebook and its table belong to lut4a16 layers (and lut4a16 needs them)");
  if (hqq ? d.zero_points_f.size() != n * groups : !d.zero_points_f.empty())
    return Status::Error(StatusCode::kShapeMismatch,
                         hqq ? "method hqq needs " + std::to_string(n * groups) +
                                   " float zero points (zero_points_f), got " +
                                   std::to_string(d.zero_points_f.size())
                             : std::string("float zero points (zero_points_f) are only for "
                                           "method hqq"));
  if (hqq) {
    for (size_t i = 0; i < d.zero_points_f.size(); ++i)
      if (!std::isfinite(d.zero_points_f[i]) || d.zero_points[i] != 0)
        return Status::Error(StatusCode::kInvalidArgument,
                             "hqq zero point at index " + std::to_string(i) +
                                 " must be finite (and its integer zero_points entry 0)");
  }
  const int32_t qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
  for (size_t i = 0; i < d.q.size(); ++i)
    if (d.q[i] < qmin || d.q[i] > qmax)
      return Status::Error(StatusCode::kInvalidArgument,
                           "code " + std::to_string(d.q[i]) + " at index " + std::to_string(i) +
                               " is outside int" + std::to_string(bits) + " [" +
                               std::to_string(qmin) + ", " + std::to_string(qmax) + "]");
  for (size_t i = 0; i < d.scales.size(); ++i) {
    if (!std::isfinite(d.scales[i]) || !(d.scales[i] > 0.0f))
      return Status::Error(StatusCode::kInvalidArgument,
                           "scale " + std::to_string(d.scales[i]) + " at index " +
                               std::to_string(i) + " must be finite and > 0");
    const int32_t z = d.zero_points[i];
    if (hqq) continue;
    if (z < qmin || z > qmax || (!d.asymmetric && z != 0))
      return Status::Error(StatusCode::kInvalidArgument,
                           "zero point " + std::to_string(z) + " at index " + std::to_string(i) +
                               (d.asymmetric ? " is outside the code range"
                                             : " must be 0 (symmetric)"));
  }
  if (!d.bias.empty()) WQ_RETURN_IF_ERROR(check_finite(d.bias.data(), n, 0, "bias"));
  const std::string fallback = d.group_size == d.in_features ? d.fallback : std::string();
  if (d.scheme == LinearScheme::kLut4A16) {
    Status st = linear_detail::make_linear_lut4_from_data(d, d.bias, fallback, out);
    if (!st.ok()) return st;
  } else if (hqq) {
    *out = linear_detail::make_linear_float_zero(d.scheme, bits, d.out_features, d.in_features,
                                                 d.group_size, d.q.data(), d.scales.data(),
                                                 d.zero_points_f.data(), d.bias, fallback,
                                                 d.range_search);
  } else if (bits == 8) {
    *out = linear_detail::make_linear_q8(d.scheme, d.asymmetric, d.out_features, d.in_features,
                                         d.group_size, d.q.data(), d.scales.data(),
                                         d.zero_points.data(), d.bias, fallback);
  } else if (bits == 3) {
    const std::vector<float> zf(d.zero_points.begin(), d.zero_points.end());
    *out = linear_detail::make_linear_q3g(QuantMethod::kRtn, d.asymmetric, d.out_features,
                                          d.in_features, d.group_size, d.q.data(),
                                          d.scales.data(), zf.data(), d.bias, fallback);
  } else {
    *out = linear_detail::make_linear_qg(d.scheme, bits, d.asymmetric, d.out_features,
                                         d.in_features, d.group_size, d.q.data(), d.scales.data(),
                                         d.zero_points.data(), d.bias, fallback);
  }
  return Status::Ok();
}

}  // namespace webquant