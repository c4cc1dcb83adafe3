// Grouped 4-bit and 2-bit linear layers (w4a16, w2a16, w4a8) on the q4g / q2g GEMM kernels
// (kernels/gemm): packed codes, scales and zero codes in the kernels' panel order.
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "quant/linear_internal.h"

namespace webquant::linear_detail {
namespace {

// The SIMD kernels when this build has SIMD (gemm.h aliases them to the references otherwise).
#define WQ_GEMM(name) kernels::name##__wasmsimd

// 4-bit / 2-bit weights per group: w4a16, w2a16, w4a8.
class LinearQG final : public GroupPackedLayer {
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
  void forward_model(const float* x, size_t m, float* y) const override {
#if WEBQUANT_SIMD
    if (x16() && m > 0 && m < kernels::kPrefillRows) {  // decode: each row prepared once
      thread_local std::vector<float> xp;
      xp.resize(kernels::x16_floats(geo_));
      const float* bias = bias_.empty() ? nullptr : bias_.data();
      for (size_t i = 0; i < m; ++i) {
        kernels::x16_prepare_q4g(geo_, x + i * geo_.k, xp.data());
        kernels::parallel_gemm_q4g_x16(kernels::gemm_q4g_x16__wasmsimd, geo_, xp.data(),
                                       packed_.data(), scales_.data(), zero_arg(), bias,
                                       y + i * geo_.n);
      }
      return;
    }
#endif
    forward(x, m, y);
  }
  bool has_forward_rows() const override { return true; }
  size_t rows_workspace() const override {
    return scheme_ == LinearScheme::kW4A8 || x16() ? 0 : kernels::gemm_f32_workspace(1, geo_);
  }
  void prepare_rows(const float* x, LinearRowsInput* in) const override {
    in->x = x;
    if (scheme_ == LinearScheme::kW4A8) {
      linear_detail::prepare_dynamic_a8_rows(geo_, x, in);
    } else if (x16()) {
#if WEBQUANT_SIMD
      in->x16.resize(kernels::x16_floats(geo_));
      kernels::x16_prepare_q4g(geo_, x, in->x16.data());
#endif
    }
  }
  uint64_t rows_input_key() const override {
    if (scheme_ == LinearScheme::kW4A8) return make_rows_input_key(1, geo_.k, geo_.group, geo_.gp);
    return x16() ? make_rows_input_key(3, geo_.k, geo_.group, geo_.gp) : 0;
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
    } else if (x16()) {
#if WEBQUANT_SIMD
      kernels::gemm_q4g_x16__wasmsimd(g, in.x16.data(), w, sc, zero, bias, y);
#endif
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
  void dequantize_weight(float* out) const override { dequantize_rows(0, geo_.n, out); }
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
  // In a SIMD build a w4a16 layer's model decode (forward_model, forward_rows) runs on 16-bit
  // integer activations (gemm_q4g_x16, each row prepared once); forward and prefill keep float32.
  bool x16() const { return WEBQUANT_SIMD && bits_ == 4 && scheme_ != LinearScheme::kW4A8; }
  GroupPacked group_packed() const override {
    if (!x16() || asym_ || !bias_.empty()) return {};
    return {bits_, geo_, packed_.data(), scales_.data()};
  }
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

}  // namespace

std::unique_ptr<LinearLayer> make_linear_qg(LinearScheme scheme, int bits, bool asymmetric, int out,
                                            int in, int group, const int8_t* q, const float* scales,
                                            const int32_t* zero_points, std::vector<float> bias,
                                            std::string fallback) {
  return std::make_unique<LinearQG>(scheme, bits, asymmetric, out, in, group, q, scales,
                                    zero_points, std::move(bias), std::move(fallback));
}

}  // namespace webquant::linear_detail
