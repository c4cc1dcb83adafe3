// A8 layers with static int8 activations (webquant/activation_quant.h): every input row is
// quantized with one calibrated per-tensor scale (values outside the range clamp) by the fused
// static row quantizer (kernels/gemm/quantize_static.h, which also divides by the layer's input
// scales, SmoothQuant's or AWQ's, in the same pass), then the same integer GEMMs as the dynamic
// layers run with that scale as each row's activation scale:
//  * w8a8: the q8g packing (with G = k its bytes are pack_q8c's); per channel symmetric layers on
//    the q8c kernel, every other int8 layer on the q8g kernel;
//  * w4a8: the q4g packing and kernel (per group, symmetric or asymmetric).
// Like the dynamic layers it has a row path (prepare_rows / forward_rows), so q/k/v and gate/up
// fuse into one pool hand-off in decode.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/gemm/gemm_parallel.h"
#include "kernels/gemm/gemm_q8g.h"
#include "kernels/gemm/quantize_static.h"
#include "quant/linear_internal.h"
#include "webquant/activation_quant.h"

namespace webquant::linear_detail {
namespace {

#define WQ_A8(name) kernels::name##__wasmsimd

class LinearStaticA8 final : public LinearLayer {
 public:
  explicit LinearStaticA8(const LinearQuantizedData& d)
      : bits_(d.bits), asym_(d.asymmetric),
        fallback_(d.group_size == d.in_features ? d.fallback : std::string()),
        geo_(d.bits == 8 ? kernels::make_q8g_geometry(d.out_features, d.in_features, d.group_size)
                         : kernels::make_group_geometry(d.out_features, d.in_features, d.group_size)),
        q8c_(d.bits == 8 && d.group_size == d.in_features && !d.asymmetric && fallback_.empty()),
        bias_(d.bias), act_scale_(d.activation_scale), input_scales_(d.input_scales) {
    out_features = d.out_features;
    in_features = d.in_features;
    for (float s : input_scales_) inv_.push_back(1.0f / s);  // as the input-scaled layers do
    const int qmin = bits_ == 8 ? -int(kernels::kQ8Zero) : -8;
    std::vector<uint8_t> zcodes(geo_.n * geo_.groups);
    for (size_t i = 0; i < zcodes.size(); ++i) zcodes[i] = static_cast<uint8_t>(d.zero_points[i] - qmin);
    if (bits_ == 8) {
      packed_.resize(kernels::packed_q8g_bytes(geo_));
      kernels::pack_q8g(geo_, d.q.data(), asym_ ? zcodes.data() : nullptr, packed_.data());
    } else {
      std::vector<uint8_t> codes(d.q.size());
      for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(d.q[i] - qmin);
      packed_.resize(kernels::packed_qg_bytes(geo_, 4));
      kernels::pack_qg(geo_, 4, codes.data(), zcodes.data(), packed_.data());
    }
    scales_.assign(geo_.params(), 0.0f);
    if (asym_) zeros_.assign(geo_.params(), static_cast<uint8_t>(-qmin));
    for (size_t j = 0; j < geo_.n; ++j)
      for (size_t g = 0; g < geo_.groups; ++g) {
        const size_t idx = kernels::qg_param_index(geo_, j, g);
        scales_[idx] = d.scales[j * geo_.groups + g];
        if (asym_) zeros_[idx] = zcodes[j * geo_.groups + g];
      }
  }

  void forward(const float* x, size_t m, float* y) const override {
    if (m == 0) return;
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    const A8Scratch a = a8_scratch(m, geo_);
    int8_t* xq = a.xq;
    float* xs = a.xscale;
    int32_t* sums = a.xsum;
    quantize(m, x, xq, xs, sums);
    const uint8_t* zero = asym_ ? zeros_.data() : nullptr;
    if (bits_ == 4) {
      kernels::parallel_gemm_q4g_s8(WQ_A8(gemm_q4g_s8), m, geo_, xq, xs, sums, packed_.data(),
                                    scales_.data(), zero, bias, y);
    } else if (q8c_) {
      kernels::parallel_gemm_q8c_s8(WQ_A8(gemm_q8c_s8), m, geo_, xq, xs, sums, packed_.data(),
                                    scales_.data(), bias, y);
    } else {
      kernels::parallel_gemm_q8g_s8(WQ_A8(gemm_q8g_s8), m, geo_, xq, xs, sums, packed_.data(),
                                    scales_.data(), zero, bias, y);
    }
  }
  bool has_forward_rows() const override { return true; }
  void prepare_rows(const float* x, LinearRowsInput* in) const override {
    in->x = x;
    in->xq.resize(geo_.kpad());
    in->xscale.resize(1);
    in->xsum.resize(geo_.groups);
    quantize(1, x, in->xq.data(), in->xscale.data(), in->xsum.data());
  }
  void forward_rows(const LinearRowsInput& in, size_t j0, size_t j1, float* y,
                    float* work) const override {
    (void)work;
    const float* bias = bias_.empty() ? nullptr : bias_.data() + j0;
    const size_t n = j1 - j0;
    const float* sc = scales_.data() + j0 * geo_.groups;
    const uint8_t* zero = asym_ ? zeros_.data() + j0 * geo_.groups : nullptr;
    if (bits_ == 4) {
      const kernels::GroupGeometry g = kernels::make_group_geometry(n, geo_.k, geo_.group);
      WQ_A8(gemm_q4g_s8)(1, g, in.xq.data(), in.xscale.data(), in.xsum.data(),
                         packed_.data() + j0 * (geo_.kpad() / 2), sc, zero, bias, y);
      return;
    }
    const uint8_t* w = packed_.data() + j0 * geo_.kpad();
    if (q8c_) {
      WQ_A8(gemm_q8c_s8)(1, kernels::make_q8c_geometry(n, geo_.k), in.xq.data(), in.xscale.data(),
                         in.xsum.data(), w, scales_.data() + j0, bias, y);
    } else {
      WQ_A8(gemm_q8g_s8)(1, kernels::make_q8g_geometry(n, geo_.k, geo_.group), in.xq.data(),
                         in.xscale.data(), in.xsum.data(), w, sc, zero, bias, y);
    }
  }
  LinearScheme scheme() const override { return bits_ == 8 ? LinearScheme::kW8A8 : LinearScheme::kW4A8; }
  size_t weight_bytes() const override {
    return packed_.size() + zeros_.size() +
           (scales_.size() + bias_.size() + input_scales_.size() + 1) * sizeof(float);
  }
  std::string describe() const override {
    std::string s = describe_quantized(scheme(), int(geo_.group), in_features, fallback_, asym_);
    const std::string dyn = ", activations int8 per token";
    if (s.size() >= dyn.size() && s.compare(s.size() - dyn.size(), dyn.size(), dyn) == 0) s.resize(s.size() - dyn.size());
    char buf[64];
    std::snprintf(buf, sizeof buf, ", activations int8 static (scale %.4g)", act_scale_);
    return s + buf + (input_scales_.empty() ? "" : ", input scales");
  }
  void dequantize_weight(float* out) const override { dequantize_rows(0, geo_.n, out); }
  // With input scales the layer computes (x / s) W'^T: its weight is W' diag(1 / s), as the
  // input-scaled layers report it.
  void dequantize_rows(size_t first, size_t n, float* out) const override {
    for (size_t r = 0; r < n; ++r) {
      const size_t j = first + r;
      for (size_t c = 0; c < geo_.k; ++c) {
        const size_t idx = kernels::qg_param_index(geo_, j, c / geo_.group);
        float v = scales_[idx] * static_cast<float>(code(j, c) - zero_point(idx));
        if (!inv_.empty()) v *= inv_[c];
        out[r * geo_.k + c] = v;
      }
    }
  }
  std::vector<float> bias() const override { return bias_; }
  Status export_quantized(LinearQuantizedData* d) const override {
    *d = LinearQuantizedData();
    d->scheme = scheme();
    d->asymmetric = asym_;
    d->bits = bits_;
    d->group_size = static_cast<int>(geo_.group);
    d->out_features = out_features;
    d->in_features = in_features;
    d->q.resize(geo_.n * geo_.k);
    for (size_t j = 0; j < geo_.n; ++j)
      for (size_t c = 0; c < geo_.k; ++c) d->q[j * geo_.k + c] = static_cast<int8_t>(code(j, c));
    d->scales.resize(geo_.n * geo_.groups);
    d->zero_points.resize(geo_.n * geo_.groups);
    for (size_t j = 0; j < geo_.n; ++j)
      for (size_t g = 0; g < geo_.groups; ++g) {
        const size_t idx = kernels::qg_param_index(geo_, j, g);
        d->scales[j * geo_.groups + g] = scales_[idx];
        d->zero_points[j * geo_.groups + g] = zero_point(idx);
      }
    d->bias = bias_;
    d->fallback = fallback_;
    d->input_scales = input_scales_;
    d->activation_scale = act_scale_;
    return Status::Ok();
  }

 private:
  void quantize(size_t m, const float* x, int8_t* xq, float* xs, int32_t* sums) const {
    WQ_A8(quantize_rows_static_f32_s8)(m, geo_.k, geo_.group, geo_.gp, x,
                                       inv_.empty() ? nullptr : inv_.data(), act_scale_, xq, xs,
                                       sums);
  }
  // Signed code q of (j, c).
  int code(size_t j, size_t c) const {
    if (bits_ == 8) return kernels::packed_q8g_get(geo_, packed_.data(), j, c);
    return int(kernels::packed_qg_get(geo_, 4, packed_.data(), j, c)) - 8;
  }
  // Signed zero point of parameter idx.
  int zero_point(size_t idx) const {
    if (!asym_) return 0;
    return int(zeros_[idx]) - (bits_ == 8 ? int(kernels::kQ8Zero) : 8);
  }

  int bits_;
  bool asym_;
  std::string fallback_;
  kernels::GroupGeometry geo_;
  bool q8c_;
  std::vector<uint8_t> packed_;
  std::vector<float> scales_;    // [np/4][ng][4]
  std::vector<uint8_t> zeros_;   // zero codes z - qmin; empty when symmetric
  std::vector<float> bias_;
  float act_scale_;
  std::vector<float> input_scales_, inv_;  // SmoothQuant / AWQ input scales and 1 / s, or empty
};

}  // namespace

Status make_linear_static_a8(const LinearQuantizedData& d, std::unique_ptr<LinearLayer>* out) {
  if (d.scheme != LinearScheme::kW8A8 && d.scheme != LinearScheme::kW4A8)
    return Status::Error(StatusCode::kInvalidArgument, std::string("static int8 activations need scheme w8a8 or w4a8 (got ") + linear_scheme_name(d.scheme) + ")");
  if (!std::isfinite(d.activation_scale) || !(d.activation_scale > 0.0f))
    return Status::Error(StatusCode::kInvalidArgument, "activation scale " + std::to_string(d.activation_scale) + " must be finite and > 0");
  // Everything else (input scales included) is validated by building the dynamic layer from the
  // same data.
  LinearQuantizedData plain = d;
  plain.activation_scale = 0.0f;
  std::unique_ptr<LinearLayer> check;
  WQ_RETURN_IF_ERROR(make_linear_from_quantized(plain, &check));
  if (d.method != QuantMethod::kRtn)
    return Status::Error(StatusCode::kInvalidArgument, "static int8 activations need rtn-form integer codes (got method " + std::string(quant_method_name(d.method)) + ")");
  *out = std::make_unique<LinearStaticA8>(d);
  return Status::Ok();
}

}  // namespace webquant::linear_detail
