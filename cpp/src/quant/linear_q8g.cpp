// int8 linear layers with per-group scales and/or zero points (w8a16, w8a8), on the q8g kernels
// (kernels/gemm/gemm_q8g.h; the w8a16 model decode on gemm_q8g_x16). The per-channel symmetric
// int8 layer is LinearQ8 (linear_layers.cpp).
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gemm/gemm_parallel.h"
#include "kernels/gemm/gemm_q8g.h"
#include "quant/linear_internal.h"

namespace webquant::linear_detail {
namespace {

// The SIMD kernels when this build has SIMD (the headers alias them to the references otherwise).
#define WQ_Q8G(name) kernels::name##__wasmsimd

class LinearQ8G final : public GroupPackedLayer {
 public:
  LinearQ8G(LinearScheme scheme, bool asymmetric, int out, int in, int group, const int8_t* q,
            const float* scales, const int32_t* zero_points, std::vector<float> bias,
            std::string fallback)
      : scheme_(scheme), asym_(asymmetric), geo_(kernels::make_q8g_geometry(out, in, group)),
        bias_(std::move(bias)), fallback_(std::move(fallback)) {
    out_features = out;
    in_features = in;
    std::vector<uint8_t> zcodes(size_t(out) * geo_.groups);
    for (size_t i = 0; i < zcodes.size(); ++i)
      zcodes[i] = static_cast<uint8_t>(zero_points[i] + int(kernels::kQ8Zero));
    packed_.resize(kernels::packed_q8g_bytes(geo_));
    kernels::pack_q8g(geo_, q, asym_ ? zcodes.data() : nullptr, packed_.data());
    scales_.assign(geo_.params(), 0.0f);
    if (asym_) zeros_.assign(geo_.params(), kernels::kQ8Zero);
    for (size_t j = 0; j < size_t(out); ++j) {
      for (size_t g = 0; g < geo_.groups; ++g) {
        const size_t idx = kernels::qg_param_index(geo_, j, g);
        scales_[idx] = scales[j * geo_.groups + g];
        if (asym_) zeros_[idx] = zcodes[j * geo_.groups + g];
      }
    }
  }

  void forward(const float* x, size_t m, float* y) const override {
    if (m == 0) return;
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    const uint8_t* zero = asym_ ? zeros_.data() : nullptr;
    if (scheme_ == LinearScheme::kW8A8) {
      const A8Scratch a = a8_scratch(m, geo_);
      WQ_Q8G(quantize_rows_f32_s8)(m, geo_.k, geo_.group, geo_.gp, x, a.xq, a.xscale, a.xsum);
      kernels::parallel_gemm_q8g_s8(WQ_Q8G(gemm_q8g_s8), m, geo_, a.xq, a.xscale, a.xsum,
                                    packed_.data(), scales_.data(), zero, bias, y);
      return;
    }
    // Output panels split over webquant/threads.h's pool, bit-identical to one thread.
    kernels::parallel_gemm_q8g_f32(WQ_Q8G(gemm_q8g_f32), m, geo_, x, packed_.data(),
                                   scales_.data(), zero, bias, y);
  }
  void forward_model(const float* x, size_t m, float* y) const override {
    if (x16() && m > 0 && m < kernels::kPrefillRows) {  // decode: each row prepared once
      forward_x16_q8g(geo_, x, m, packed_.data(), scales_.data(), asym_ ? zeros_.data() : nullptr,
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
      prepare_dynamic_a8_rows(geo_, x, in);
      return;
    }
    in->x = x;
    if (x16()) prepare_x16_q8g_rows(geo_, x, in);
  }
  uint64_t rows_input_key() const override {
    if (scheme_ == LinearScheme::kW8A8) return make_rows_input_key(2, geo_.k, geo_.group, geo_.gp);
    return x16() ? make_rows_input_key(4, geo_.k, geo_.group, geo_.gp) : 0;
  }
  void forward_rows(const LinearRowsInput& in, size_t j0, size_t j1, float* y,
                    float* work) const override {
    const float* bias = bias_.empty() ? nullptr : bias_.data() + j0;
    const kernels::GroupGeometry g = kernels::make_q8g_geometry(j1 - j0, geo_.k, geo_.group);
    const uint8_t* w = packed_.data() + j0 * geo_.kpad();
    const float* sc = scales_.data() + j0 * geo_.groups;
    const uint8_t* zero = asym_ ? zeros_.data() + j0 * geo_.groups : nullptr;
    if (scheme_ == LinearScheme::kW8A8) {
      WQ_Q8G(gemm_q8g_s8)(1, g, in.xq.data(), in.xscale.data(), in.xsum.data(), w, sc, zero, bias,
                          y);
#if WEBQUANT_SIMD
    } else if (x16()) {
      kernels::gemm_q8g_x16__wasmsimd(g, in.x16.data(), w, sc, zero, bias, y);
#endif
    } else {
      WQ_Q8G(gemm_q8g_f32)(1, g, in.x, w, sc, zero, bias, y, work);
    }
  }
  LinearScheme scheme() const override { return scheme_; }
  size_t weight_bytes() const override {
    return packed_.size() + zeros_.size() + (scales_.size() + bias_.size()) * sizeof(float);
  }
  std::string describe() const override {
    return describe_quantized(scheme_, int(geo_.group), in_features, fallback_, asym_);
  }
  void dequantize_weight(float* out) const override { dequantize_rows(0, geo_.n, out); }
  void dequantize_rows(size_t first, size_t n, float* out) const override {
    for (size_t r = 0; r < n; ++r) {
      const size_t j = first + r;
      for (size_t c = 0; c < geo_.k; ++c) {
        const size_t idx = kernels::qg_param_index(geo_, j, c / geo_.group);
        out[r * geo_.k + c] = scales_[idx] * static_cast<float>(code(j, c) - zero_point(idx));
      }
    }
  }
  std::vector<float> bias() const override { return bias_; }
  Status export_quantized(LinearQuantizedData* d) const override {
    *d = LinearQuantizedData();
    d->scheme = scheme_;
    d->asymmetric = asym_;
    d->bits = 8;
    d->group_size = static_cast<int>(geo_.group);
    d->out_features = out_features;
    d->in_features = in_features;
    d->q.resize(geo_.n * geo_.k);
    for (size_t j = 0; j < geo_.n; ++j)
      for (size_t c = 0; c < geo_.k; ++c) d->q[j * geo_.k + c] = code(j, c);
    d->scales.resize(geo_.n * geo_.groups);
    d->zero_points.resize(geo_.n * geo_.groups);
    for (size_t j = 0; j < geo_.n; ++j) {
      for (size_t g = 0; g < geo_.groups; ++g) {
        const size_t idx = kernels::qg_param_index(geo_, j, g);
        d->scales[j * geo_.groups + g] = scales_[idx];
        d->zero_points[j * geo_.groups + g] = zero_point(idx);
      }
    }
    d->bias = bias_;
    d->fallback = fallback_;
    return Status::Ok();
  }

  GroupPacked group_packed() const override {
    if (!x16() || asym_ || !bias_.empty()) return {};
    return {8, geo_, packed_.data(), scales_.data()};
  }

 private:
  int code(size_t j, size_t c) const { return kernels::packed_q8g_get(geo_, packed_.data(), j, c); }
  // In a SIMD build a w8a16 layer's model decode (forward_model, forward_rows) runs on 16-bit
  // integer activations (gemm_q8g_x16, each row prepared once); forward and prefill keep float32.
  bool x16() const { return WEBQUANT_SIMD && scheme_ == LinearScheme::kW8A16; }
  int zero_point(size_t idx) const { return asym_ ? int(zeros_[idx]) - int(kernels::kQ8Zero) : 0; }

  LinearScheme scheme_;
  bool asym_;
  kernels::GroupGeometry geo_;
  std::vector<uint8_t> packed_;  // pack_q8g
  std::vector<float> scales_;    // [np/4][ng][4]
  std::vector<uint8_t> zeros_;   // zero codes z + 128, same order; empty when symmetric
  std::vector<float> bias_;
  std::string fallback_;         // e.g. "172 % 32 != 0" when per-group fell back to per channel
};

}  // namespace

void forward_x16_q8g(const kernels::GroupGeometry& geo, const float* x, size_t m,
                     const uint8_t* packed, const float* scales, const uint8_t* zero,
                     const float* bias, float* y) {
#if WEBQUANT_SIMD
  thread_local std::vector<float> xp;
  xp.resize(kernels::x16_q8g_floats(geo));
  for (size_t i = 0; i < m; ++i) {
    kernels::x16_prepare_q8g(geo, x + i * geo.k, xp.data());
    kernels::parallel_gemm_q8g_x16(kernels::gemm_q8g_x16__wasmsimd, geo, xp.data(), packed, scales,
                                   zero, bias, y + i * geo.n);
  }
#else
  (void)geo, (void)x, (void)m, (void)packed, (void)scales, (void)zero, (void)bias, (void)y;
#endif
}

void prepare_x16_q8g_rows(const kernels::GroupGeometry& geo, const float* x, LinearRowsInput* in) {
#if WEBQUANT_SIMD
  in->x16.resize(kernels::x16_q8g_floats(geo));
  kernels::x16_prepare_q8g(geo, x, in->x16.data());
#else
  (void)geo, (void)x, (void)in;
#endif
}

std::unique_ptr<LinearLayer> make_linear_q8g(LinearScheme scheme, bool asymmetric, int out, int in,
                                             int group, const int8_t* q, const float* scales,
                                             const int32_t* zero_points, std::vector<float> bias,
                                             std::string fallback) {
  return std::make_unique<LinearQ8G>(scheme, asymmetric, out, in, group, q, scales, zero_points,
                                     std::move(bias), std::move(fallback));
}

std::string describe_quantized(LinearScheme scheme, int group, int in_features,
                               const std::string& fallback, bool asymmetric) {
  std::string s = linear_scheme_name(scheme);
  if (!fallback.empty())
    s += " per-channel (" + fallback + ")";
  else if (group == in_features)
    s += " per-channel";
  else if (in_features % group != 0)  // ragged: "g32 ragged (172 = 5 x 32 + 12)"
    s += " g" + std::to_string(group) + " ragged (" + std::to_string(in_features) + " = " +
         std::to_string(in_features / group) + " x " + std::to_string(group) + " + " +
         std::to_string(in_features % group) + ")";
  else
    s += " g" + std::to_string(group);
  s += asymmetric ? " asym" : " sym";
  if (scheme == LinearScheme::kW8A8 || scheme == LinearScheme::kW4A8)
    s += ", activations int8 per token";
  return s;
}

}  // namespace webquant::linear_detail
