// Linear layers (webquant/linear.h): float32 weights and int8 weights per output channel, on the
// GEMM kernels of kernels/gemm, plus what every layer shares (the int8-activation scratch, the
// scheme names). Grouped 4-/2-bit layers: linear_qg.cpp; building and validating: linear_make.cpp.
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "kernels/gemm/gemm_q8g.h"
#include "quant/linear_internal.h"
#include "webquant/linear.h"

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

bool scheme_a8(LinearScheme s) { return s == LinearScheme::kW8A8 || s == LinearScheme::kW4A8; }

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
  void forward_model(const float* x, size_t m, float* y) const override {
    if (x16() && m > 0 && m < kernels::kPrefillRows) {  // decode: each row prepared once
      // q8c is q8g with one group: the same bytes and scales, symmetric.
      linear_detail::forward_x16_q8g(geo_, x, m, packed_.data(), scales_.data(), nullptr,
                                     bias_.empty() ? nullptr : bias_.data(), y);
      return;
    }
    forward(x, m, y);
  }
  bool has_forward_rows() const override { return true; }
  size_t rows_workspace() const override {
    return scheme_ == LinearScheme::kW8A8 || x16() ? 0 : kernels::gemm_f32_workspace(1, geo_);
  }
  void prepare_rows(const float* x, LinearRowsInput* in) const override {
    if (scheme_ == LinearScheme::kW8A8) {
      linear_detail::prepare_dynamic_a8_rows(geo_, x, in);
      return;
    }
    in->x = x;
    if (x16()) linear_detail::prepare_x16_q8g_rows(geo_, x, in);
  }
  uint64_t rows_input_key() const override {
    if (scheme_ == LinearScheme::kW8A8) return make_rows_input_key(1, geo_.k, geo_.k, geo_.kpad());
    return x16() ? make_rows_input_key(4, geo_.k, geo_.k, geo_.kpad()) : 0;
  }
  void forward_rows(const LinearRowsInput& in, size_t j0, size_t j1, float* y,
                    float* work) const override {
    const float* bias = bias_.empty() ? nullptr : bias_.data() + j0;
    const kernels::GroupGeometry g = kernels::make_q8c_geometry(j1 - j0, geo_.k);
    const uint8_t* w = packed_.data() + j0 * geo_.kpad();
    if (scheme_ == LinearScheme::kW8A8) {
      WQ_GEMM(gemm_q8c_s8)(1, g, in.xq.data(), in.xscale.data(), in.xsum.data(), w,
                           scales_.data() + j0, bias, y);
#if WEBQUANT_SIMD
    } else if (x16()) {
      kernels::gemm_q8g_x16__wasmsimd(g, in.x16.data(), w, scales_.data() + j0, nullptr, bias, y);
#endif
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
    dequantize_rows(0, static_cast<size_t>(out_features), out);
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
  // In a SIMD build a w8a16 layer's model decode (forward_model, forward_rows) runs on 16-bit
  // integer activations (gemm_q8g_x16, each row prepared once); forward and prefill keep float32.
  bool x16() const { return WEBQUANT_SIMD && scheme_ == LinearScheme::kW8A16; }

  LinearScheme scheme_;
  kernels::GroupGeometry geo_;
  std::vector<uint8_t> packed_;
  std::vector<float> scales_;  // round_up(out, 4), padding 0
  std::vector<float> bias_;
};

}  // namespace

std::unique_ptr<LinearLayer> make_linear_f32(const float* w, int out_features, int in_features,
                                             const float* bias) {
  return std::make_unique<LinearF32>(w, out_features, in_features, bias);
}

namespace linear_detail {

std::unique_ptr<LinearLayer> make_linear_q8(LinearScheme scheme, bool asymmetric, int out, int in,
                                            int group, const int8_t* q, const float* scales,
                                            const int32_t* zero_points, std::vector<float> bias,
                                            std::string fallback) {
  if (group == in && !asymmetric && fallback.empty())
    return std::make_unique<LinearQ8>(scheme, out, in, q, scales, std::move(bias));
  return make_linear_q8g(scheme, asymmetric, out, in, group, q, scales, zero_points,
                         std::move(bias), std::move(fallback));
}

}  // namespace linear_detail

}  // namespace webquant
