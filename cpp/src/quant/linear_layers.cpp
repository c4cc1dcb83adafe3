// Linear layers (webquant/linear.h): float32 and quantized weights, on the GEMM kernels of
// kernels/gemm. The quantized layers keep only packed codes, scales and zero codes.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "quant/calibration_internal.h"
#include "quant/linear_internal.h"
#include "webquant/linear.h"
#include "webquant/quant.h"

namespace webquant {

// The SIMD kernels when this build has SIMD (gemm.h aliases them to the references otherwise).
// The GEMMs go through the threaded drivers of gemm_parallel.h: output panels are split over
// webquant/threads.h's pool, bit-identical to one thread.
#define WQ_GEMM(name) kernels::name##__wasmsimd

void LinearLayer::dequantize_rows(size_t first, size_t n, float* out) const {
  const size_t k = static_cast<size_t>(in_features);
  std::vector<float> all(static_cast<size_t>(out_features) * k);
  dequantize_weight(all.data());
  std::memcpy(out, all.data() + first * k, n * k * sizeof(float));
}

namespace linear_detail {

A8Scratch a8_scratch(size_t m, const kernels::GroupGeometry& geo) {
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> xscale;
  thread_local std::vector<int32_t> xsum;
  if (xq.size() < m * geo.kpad()) xq.resize(m * geo.kpad());
  if (xscale.size() < m) xscale.resize(m);
  if (xsum.size() < m * geo.groups) xsum.resize(m * geo.groups);
  return {xq.data(), xscale.data(), xsum.data()};
}

void prepare_dynamic_a8_rows(const kernels::GroupGeometry& geo, const float* x,
                             LinearRowsInput* in) {
  in->x = x;
  in->xq.resize(geo.kpad());
  in->xscale.resize(1);
  in->xsum.resize(geo.groups);
  WQ_GEMM(quantize_rows_f32_s8)(1, geo.k, geo.group, geo.gp, x, in->xq.data(), in->xscale.data(),
                                in->xsum.data());
}

}  // namespace linear_detail

const char* linear_scheme_name(LinearScheme s) {
  switch (s) {
    case LinearScheme::kF32: return "f32";
    case LinearScheme::kW8A16: return "w8a16";
    case LinearScheme::kW4A16: return "w4a16";
    case LinearScheme::kW2A16: return "w2a16";
    case LinearScheme::kW8A8: return "w8a8";
    case LinearScheme::kW4A8: return "w4a8";
    case LinearScheme::kF16: return "f16";
    case LinearScheme::kBF16: return "bf16";
    case LinearScheme::kW3A16: return "w3a16";
    case LinearScheme::kLut4A16: return "lut4a16";
  }
  return "unknown";
}

const char* quant_method_name(QuantMethod m) {
  switch (m) {
    case QuantMethod::kRtn: return "rtn";
    case QuantMethod::kHqq: return "hqq";
    case QuantMethod::kGptq: return "gptq";
    case QuantMethod::kAwq: return "awq";
  }
  return "unknown";
}

namespace {

// int32 accumulation of int8 x int8 products stays exact up to this many terms
// (127 * 128 * k < 2^31); int8 asymmetric weights have |q - z| <= 255 (127 * 255 * k < 2^31).
constexpr int kMaxA8PerChannelK = 131072;
constexpr int kMaxA8AsymInt8K = 65536;

int scheme_bits(LinearScheme s) {
  switch (s) {
    case LinearScheme::kW8A16:
    case LinearScheme::kW8A8: return 8;
    case LinearScheme::kW4A16:
    case LinearScheme::kW4A8: return 4;
    case LinearScheme::kW2A16: return 2;
    case LinearScheme::kW3A16: return 3;
    case LinearScheme::kLut4A16: return 4;
    default: return 32;
  }
}

bool is_a8(LinearScheme s) { return s == LinearScheme::kW8A8 || s == LinearScheme::kW4A8; }

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

// ---------------------------------------------------------------------------------------------
class LinearF32 final : public LinearLayer {
 public:
  LinearF32(const float* w, int out, int in, const float* bias)
      : w_(w, w + size_t(out) * size_t(in)), bias_(bias ? std::vector<float>(bias, bias + out)
                                                       : std::vector<float>()) {
    out_features = out;
    in_features = in;
  }
  void forward(const float* x, size_t m, float* y) const override {
    kernels::parallel_gemm_f32_f32(WQ_GEMM(gemm_f32_f32), m, out_features, in_features, x,
                                   w_.data(), bias_.empty() ? nullptr : bias_.data(), y);
  }
  bool has_forward_rows() const override { return true; }
  void forward_rows(const LinearRowsInput& in, size_t j0, size_t j1, float* y,
                    float*) const override {
    const size_t k = in_features;
    WQ_GEMM(gemm_f32_f32)(1, j1 - j0, k, in.x, w_.data() + j0 * k,
                          bias_.empty() ? nullptr : bias_.data() + j0, y);
  }
  LinearScheme scheme() const override { return LinearScheme::kF32; }
  size_t weight_bytes() const override { return (w_.size() + bias_.size()) * sizeof(float); }
  std::string describe() const override { return "f32"; }
  void dequantize_weight(float* out) const override {
    std::memcpy(out, w_.data(), w_.size() * sizeof(float));
  }
  void dequantize_rows(size_t first, size_t n, float* out) const override {
    const size_t k = static_cast<size_t>(in_features);
    std::memcpy(out, w_.data() + first * k, n * k * sizeof(float));
  }
  std::vector<float> bias() const override { return bias_; }

 private:
  std::vector<float> w_;
  std::vector<float> bias_;
};

// ---------------------------------------------------------------------------------------------
// int8 weights, symmetric per output channel: w8a16 (float activations) and w8a8.
class LinearQ8 final : public LinearLayer {
 public:
  LinearQ8(LinearScheme scheme, int out, int in, const int8_t* q, const float* scales,
           std::vector<float> bias)
      : scheme_(scheme), geo_(kernels::make_q8c_geometry(out, in)),
        packed_(kernels::packed_q8c_bytes(out, in)),
        scales_(kernels::round_up(out, kernels::kGemmNr), 0.0f), bias_(std::move(bias)) {
    out_features = out;
    in_features = in;
    kernels::pack_q8c(q, out, in, packed_.data());
    std::memcpy(scales_.data(), scales, size_t(out) * sizeof(float));
  }

  void forward(const float* x, size_t m, float* y) const override {
    if (m == 0) return;
    const size_t k = in_features;
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    if (scheme_ == LinearScheme::kW8A8) {
      const linear_detail::A8Scratch a = linear_detail::a8_scratch(m, geo_);
      WQ_GEMM(quantize_rows_f32_s8)(m, k, geo_.group, geo_.gp, x, a.xq, a.xscale, a.xsum);
      kernels::parallel_gemm_q8c_s8(WQ_GEMM(gemm_q8c_s8), m, geo_, a.xq, a.xscale, a.xsum,
                                    packed_.data(), scales_.data(), bias, y);
      return;
    }
    kernels::parallel_gemm_q8c_f32(WQ_GEMM(gemm_q8c_f32), m, geo_, x, packed_.data(),
                                   scales_.data(), bias, y);
  }
  bool has_forward_rows() const override { return true; }
  size_t rows_workspace() const override {
    return scheme_ == LinearScheme::kW8A8 ? 0 : kernels::gemm_f32_workspace(1, geo_);
  }
  void prepare_rows(const float* x, LinearRowsInput* in) const override {
    if (scheme_ != LinearScheme::kW8A8) in->x = x;
    else linear_detail::prepare_dynamic_a8_rows(geo_, x, in);
  }
  uint64_t rows_input_key() const override {
    return scheme_ == LinearScheme::kW8A8 ? make_rows_input_key(1, geo_.k, geo_.k, geo_.kpad()) : 0;
  }
  void forward_rows(const LinearRowsInput& in, size_t j0, size_t j1, float* y,
                    float* work) const override {
    const float* bias = bias_.empty() ? nullptr : bias_.data() + j0;
    const kernels::GroupGeometry g = kernels::make_q8c_geometry(j1 - j0, geo_.k);
    const uint8_t* w = packed_.data() + j0 * geo_.kpad();
    if (scheme_ == LinearScheme::kW8A8) {
      WQ_GEMM(gemm_q8c_s8)(1, g, in.xq.data(), in.xscale.data(), in.xsum.data(), w,
                           scales_.data() + j0, bias, y);
    } else {
      WQ_GEMM(gemm_q8c_f32)(1, g, in.x, w, scales_.data() + j0, bias, y, work);
    }
  }
  LinearScheme scheme() const override { return scheme_; }
  size_t weight_bytes() const override {
    return packed_.size() + (scales_.size() + bias_.size()) * sizeof(float);
  }
  std::string describe() const override {
    return scheme_ == LinearScheme::kW8A8
               ? "w8a8 per-channel sym, activations int8 per token"
               : "w8a16 per-channel sym";
  }
  void dequantize_weight(float* out) const override {
    for (int j = 0; j < out_features; ++j)
      for (int c = 0; c < in_features; ++c)
        out[size_t(j) * in_features + c] = scales_[j] * static_cast<float>(code(j, c));
  }
  void dequantize_rows(size_t first, size_t n, float* out) const override {
    for (size_t r = 0; r < n; ++r) {
      const int j = static_cast<int>(first + r);
      for (int c = 0; c < in_features; ++c)
        out[r * size_t(in_features) + c] = scales_[j] * static_cast<float>(code(j, c));
    }
  }
  std::vector<float> bias() const override { return bias_; }
  Status export_quantized(LinearQuantizedData* d) const override {
    *d = LinearQuantizedData();
    d->scheme = scheme_;
    d->bits = 8;
    d->group_size = in_features;
    d->out_features = out_features;
    d->in_features = in_features;
    d->q.resize(size_t(out_features) * in_features);
    for (int j = 0; j < out_features; ++j)
      for (int c = 0; c < in_features; ++c)
        d->q[size_t(j) * in_features + c] = code(j, c);
    d->scales.assign(scales_.begin(), scales_.begin() + out_features);
    d->zero_points.assign(out_features, 0);
    d->bias = bias_;
    return Status::Ok();
  }

 private:
  int8_t code(int j, int c) const {
    return kernels::packed_q8c_get(packed_.data(), in_features, j, c);
  }

  LinearScheme scheme_;
  kernels::GroupGeometry geo_;
  std::vector<uint8_t> packed_;
  std::vector<float> scales_;  // round_up(out, 4), padding 0
  std::vector<float> bias_;
};

// ---------------------------------------------------------------------------------------------
// 4-bit / 2-bit weights per group: w4a16, w2a16, w4a8.
class LinearQG final : public LinearLayer {
 public:
  // q: [out, in] signed codes; scales / zero_points: [out, ceil(in / group)] (signed zero points).
  LinearQG(LinearScheme scheme, int bits, bool asymmetric, int out, int in, int group,
           const int8_t* q, const float* scales, const int32_t* zero_points,
           std::vector<float> bias, std::string fallback)
      : scheme_(scheme), bits_(bits), asym_(asymmetric),
        geo_(kernels::make_group_geometry(out, in, group)), bias_(std::move(bias)),
        fallback_(std::move(fallback)) {
    out_features = out;
    in_features = in;
    const int32_t qmin = -(1 << (bits - 1));
    std::vector<uint8_t> codes(size_t(out) * in), zcodes(size_t(out) * geo_.groups);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(q[i] - qmin);
    for (size_t i = 0; i < zcodes.size(); ++i)
      zcodes[i] = static_cast<uint8_t>(zero_points[i] - qmin);
    packed_.resize(kernels::packed_qg_bytes(geo_, bits));
    kernels::pack_qg(geo_, bits, codes.data(), zcodes.data(), packed_.data());
    scales_.assign(geo_.params(), 0.0f);
    zeros_.assign(geo_.params(), 0);
    for (size_t j = 0; j < size_t(out); ++j) {
      for (size_t g = 0; g < geo_.groups; ++g) {
        const size_t idx = kernels::qg_param_index(geo_, j, g);
        scales_[idx] = scales[j * geo_.groups + g];
        zeros_[idx] = zcodes[j * geo_.groups + g];
      }
    }
  }

  void forward(const float* x, size_t m, float* y) const override {
    if (m == 0) return;
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    if (scheme_ == LinearScheme::kW4A8) {
      const linear_detail::A8Scratch a = linear_detail::a8_scratch(m, geo_);
      WQ_GEMM(quantize_rows_f32_s8)(m, geo_.k, geo_.group, geo_.gp, x, a.xq, a.xscale, a.xsum);
      kernels::parallel_gemm_q4g_s8(WQ_GEMM(gemm_q4g_s8), m, geo_, a.xq, a.xscale, a.xsum,
                                    packed_.data(), scales_.data(), zero_arg(), bias, y);
      return;
    }
    kernels::parallel_gemm_qg_f32(bits_ == 4 ? WQ_GEMM(gemm_q4g_f32) : WQ_GEMM(gemm_q2g_f32),
                                  bits_, m, geo_, x, packed_.data(), scales_.data(), zero_arg(),
                                  bias, y);
  }
  bool has_forward_rows() const override { return true; }
  size_t rows_workspace() const override {
    return scheme_ == LinearScheme::kW4A8 ? 0 : kernels::gemm_f32_workspace(1, geo_);
  }
  void prepare_rows(const float* x, LinearRowsInput* in) const override {
    if (scheme_ != LinearScheme::kW4A8) in->x = x;
    else linear_detail::prepare_dynamic_a8_rows(geo_, x, in);
  }
  uint64_t rows_input_key() const override {
    return scheme_ == LinearScheme::kW4A8 ? make_rows_input_key(1, geo_.k, geo_.group, geo_.gp) : 0;
  }
  void forward_rows(const LinearRowsInput& in, size_t j0, size_t j1, float* y,
                    float* work) const override {
    const float* bias = bias_.empty() ? nullptr : bias_.data() + j0;
    const kernels::GroupGeometry g = kernels::make_group_geometry(j1 - j0, geo_.k, geo_.group);
    const uint8_t* w = packed_.data() + j0 * (geo_.kpad() * size_t(bits_) / 8);
    const float* sc = scales_.data() + j0 * geo_.groups;
    const uint8_t* zero = zero_arg() ? zero_arg() + j0 * geo_.groups : nullptr;
    if (scheme_ == LinearScheme::kW4A8) {
      WQ_GEMM(gemm_q4g_s8)(1, g, in.xq.data(), in.xscale.data(), in.xsum.data(), w, sc, zero,
                           bias, y);
    } else {
      (bits_ == 4 ? WQ_GEMM(gemm_q4g_f32) : WQ_GEMM(gemm_q2g_f32))(1, g, in.x, w, sc, zero, bias,
                                                                   y, work);
    }
  }
  LinearScheme scheme() const override { return scheme_; }
  size_t weight_bytes() const override {
    return packed_.size() + zeros_.size() + (scales_.size() + bias_.size()) * sizeof(float);
  }
  std::string describe() const override {
    return linear_detail::describe_quantized(scheme_, int(geo_.group), in_features, fallback_,
                                             asym_);
  }
  void dequantize_weight(float* out) const override {
    for (size_t j = 0; j < geo_.n; ++j) {
      for (size_t c = 0; c < geo_.k; ++c) {
        const size_t idx = kernels::qg_param_index(geo_, j, c / geo_.group);
        const int u = kernels::packed_qg_get(geo_, bits_, packed_.data(), j, c);
        out[j * geo_.k + c] = scales_[idx] * static_cast<float>(u - zeros_[idx]);
      }
    }
  }
  void dequantize_rows(size_t first, size_t n, float* out) const override {
    for (size_t r = 0; r < n; ++r) {
      const size_t j = first + r;
      for (size_t c = 0; c < geo_.k; ++c) {
        const size_t idx = kernels::qg_param_index(geo_, j, c / geo_.group);
        const int u = kernels::packed_qg_get(geo_, bits_, packed_.data(), j, c);
        out[r * geo_.k + c] = scales_[idx] * static_cast<float>(u - zeros_[idx]);
      }
    }
  }
  std::vector<float> bias() const override { return bias_; }
  // Symmetric layers pass no zero codes: the kernels use the constant 2^(bits-1).
  const uint8_t* zero_arg() const { return asym_ ? zeros_.data() : nullptr; }
  Status export_quantized(LinearQuantizedData* d) const override {
    *d = LinearQuantizedData();
    d->scheme = scheme_;
    d->asymmetric = asym_;
    d->bits = bits_;
    d->group_size = static_cast<int>(geo_.group);
    d->out_features = out_features;
    d->in_features = in_features;
    const int32_t qmin = -(1 << (bits_ - 1));
    d->q.resize(geo_.n * geo_.k);
    for (size_t j = 0; j < geo_.n; ++j)
      for (size_t c = 0; c < geo_.k; ++c)
        d->q[j * geo_.k + c] =
            static_cast<int8_t>(kernels::packed_qg_get(geo_, bits_, packed_.data(), j, c) + qmin);
    d->scales.resize(geo_.n * geo_.groups);
    d->zero_points.resize(geo_.n * geo_.groups);
    for (size_t j = 0; j < geo_.n; ++j) {
      for (size_t g = 0; g < geo_.groups; ++g) {
        const size_t idx = kernels::qg_param_index(geo_, j, g);
        d->scales[j * geo_.groups + g] = scales_[idx];
        d->zero_points[j * geo_.groups + g] = zeros_[idx] + qmin;
      }
    }
    d->bias = bias_;
    d->fallback = fallback_;
    return Status::Ok();
  }

 private:
  LinearScheme scheme_;
  int bits_;
  bool asym_;
  kernels::GroupGeometry geo_;
  std::vector<uint8_t> packed_;
  std::vector<float> scales_;   // [np/4][ng][4]
  std::vector<uint8_t> zeros_;  // zero codes zu = z - qmin, same order
  std::vector<float> bias_;
  std::string fallback_;        // e.g. "172 % 32 != 0" when per-group fell back to per channel
};

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
  if (is_a8(scheme) && group > limit)
    return Status::Error(StatusCode::kInvalidArgument,
                         std::string(linear_scheme_name(scheme)) + (asymmetric ? " asym" : "") +
                             " accumulates " + std::to_string(group) +
                             " int8 products per group in int32; at most " +
                             std::to_string(limit) + " are exact");
  return Status::Ok();
}

// The int8 layer for codes q [n, k] in groups of `group` (== k: per channel): the q8c kernels
// for plain per-channel symmetric weights, the q8g kernels for everything else.
std::unique_ptr<LinearLayer> make_q8_layer(LinearScheme scheme, bool asymmetric, int out, int in,
                                           int group, const int8_t* q, const float* scales,
                                           const int32_t* zero_points, std::vector<float> bias,
                                           std::string fallback) {
  if (group == in && !asymmetric && fallback.empty())
    return std::make_unique<LinearQ8>(scheme, out, in, q, scales, std::move(bias));
  return linear_detail::make_linear_q8g(scheme, asymmetric, out, in, group, q, scales,
                                        zero_points, std::move(bias), std::move(fallback));
}

}  // namespace

std::unique_ptr<LinearLayer> make_linear_f32(const float* w, int out_features, int in_features,
                                             const float* bias) {
  return std::make_unique<LinearF32>(w, out_features, in_features, bias);
}

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
  const int bits = scheme_bits(spec.scheme);
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
    *out = make_q8_layer(spec.scheme, spec.asymmetric, out_features, in_features, group,
                         reinterpret_cast<const int8_t*>(qt.codes.data()), qt.scales.data(),
                         qt.zero_points.data(), std::move(bias_v), std::move(fallback));
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
  *out = std::make_unique<LinearQG>(spec.scheme, bits, spec.asymmetric, out_features, in_features,
                                    group, reinterpret_cast<const int8_t*>(qt.codes.data()),
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
  const int bits = scheme_bits(d.scheme);
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
    *out = make_q8_layer(d.scheme, d.asymmetric, d.out_features, d.in_features, d.group_size,
                         d.q.data(), d.scales.data(), d.zero_points.data(), d.bias, fallback);
  } else if (bits == 3) {
    const std::vector<float> zf(d.zero_points.begin(), d.zero_points.end());
    *out = linear_detail::make_linear_q3g(QuantMethod::kRtn, d.asymmetric, d.out_features,
                                          d.in_features, d.group_size, d.q.data(),
                                          d.scales.data(), zf.data(), d.bias, fallback);
  } else {
    *out = std::make_unique<LinearQG>(d.scheme, bits, d.asymmetric, d.out_features,
                                      d.in_features, d.group_size, d.q.data(), d.scales.data(),
                                      d.zero_points.data(), d.bias,
                                      fallback);
  }
  return Status::Ok();
}

}  // namespace webquant
