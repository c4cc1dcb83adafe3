// 3-bit linear layers (w3a16) on the q3g kernels (kernels/gemm/gemm_q3g.h): round to nearest
// (integer zero points, symmetric or asymmetric) and HQQ (float zero points).
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm/gemm_q3g.h"
#include "quant/linear_internal.h"

namespace webquant::linear_detail {
namespace {

thread_local std::vector<float> g_work;

class LinearQ3G final : public LinearLayer {
 public:
  // q: [out, in] signed int3 codes; scales, zeros: [out, ceil(in / group)] in the signed code domain
  // (W = s * (q - z)); zeros are integers for rtn.
  LinearQ3G(QuantMethod method, bool asymmetric, int out, int in, int group, const int8_t* q,
            const float* scales, const float* zeros, std::vector<float> bias,
            std::string fallback, int range_search)
      : method_(method), asym_(asymmetric), geo_(kernels::make_q3g_geometry(out, in, group)),
        scales_(scales, scales + size_t(out) * ((in + group - 1) / group)),
        zeros_(zeros, zeros + size_t(out) * ((in + group - 1) / group)), bias_(std::move(bias)),
        fallback_(std::move(fallback)), range_search_(range_search) {
    out_features = out;
    in_features = in;
    std::vector<uint8_t> codes(size_t(out) * in);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(q[i] + 4);
    packed_.resize(kernels::packed_q3g_bytes(geo_));
    kernels::pack_q3g(geo_, codes.data(), packed_.data());
    zero_codes_.resize(zeros_.size());
    for (size_t i = 0; i < zeros_.size(); ++i) zero_codes_[i] = zeros_[i] + 4.0f;
  }

  void forward(const float* x, size_t m, float* y) const override {
    if (m == 0) return;
    const size_t need = kernels::gemm_q3g_workspace(geo_);
    if (g_work.size() < need) g_work.resize(need);
    kernels::gemm_q3g_f32__wasmsimd(m, geo_, x, packed_.data(), scales_.data(),
                                    zero_codes_.data(), bias_.empty() ? nullptr : bias_.data(), y,
                                    g_work.data());
  }
  LinearScheme scheme() const override { return LinearScheme::kW3A16; }
  // Codes, scales, zero points (one byte per group for rtn as the 4/2-bit layers, a float for
  // hqq; symmetric layers have none) and bias.
  size_t weight_bytes() const override {
    const size_t zb = method_ == QuantMethod::kHqq ? sizeof(float) : asym_ ? 1 : 0;
    return packed_.size() + scales_.size() * (sizeof(float) + zb) + bias_.size() * sizeof(float);
  }
  std::string describe() const override {
    return describe_quantized(LinearScheme::kW3A16, int(geo_.group), in_features, fallback_,
                              asym_) +
           (method_ == QuantMethod::kHqq ? ", hqq float zero" : "");
  }
  void dequantize_weight(float* out) const override { dequantize_rows(0, geo_.n, out); }
  void dequantize_rows(size_t first, size_t n, float* out) const override {
    for (size_t j = first; j < first + n; ++j) {
      for (size_t c = 0; c < geo_.k; ++c) {
        const size_t k = j * geo_.groups + c / geo_.group;
        const int q = int(kernels::packed_q3g_get(geo_, packed_.data(), j, c)) - 4;
        out[(j - first) * geo_.k + c] = scales_[k] * (static_cast<float>(q) - zeros_[k]);
      }
    }
  }
  std::vector<float> bias() const override { return bias_; }
  Status export_quantized(LinearQuantizedData* d) const override {
    *d = LinearQuantizedData();
    d->scheme = LinearScheme::kW3A16;
    d->asymmetric = asym_;
    d->bits = 3;
    d->group_size = static_cast<int>(geo_.group);
    d->out_features = out_features;
    d->in_features = in_features;
    d->method = method_;
    d->q.resize(geo_.n * geo_.k);
    for (size_t j = 0; j < geo_.n; ++j)
      for (size_t c = 0; c < geo_.k; ++c)
        d->q[j * geo_.k + c] =
            static_cast<int8_t>(int(kernels::packed_q3g_get(geo_, packed_.data(), j, c)) - 4);
    d->scales = scales_;
    d->zero_points.assign(zeros_.size(), 0);
    if (method_ == QuantMethod::kHqq) {
      d->zero_points_f = zeros_;
      d->range_search = range_search_;
    } else {
      for (size_t i = 0; i < zeros_.size(); ++i) d->zero_points[i] = static_cast<int32_t>(zeros_[i]);
    }
    d->bias = bias_;
    d->fallback = fallback_;
    return Status::Ok();
  }

 private:
  QuantMethod method_;
  bool asym_;
  kernels::Q3gGeometry geo_;
  std::vector<uint8_t> packed_;
  std::vector<float> scales_;      // [n, ng]
  std::vector<float> zeros_;       // [n, ng], signed code domain
  std::vector<float> zero_codes_;  // zeros_ + 4: the kernel's unsigned code domain
  std::vector<float> bias_;
  std::string fallback_;
  int range_search_;  // hqq: the record exported (LinearQuantizedData::range_search)
};

}  // namespace

std::unique_ptr<LinearLayer> make_linear_q3g(QuantMethod method, bool asymmetric, int out, int in,
                                             int group, const int8_t* q, const float* scales,
                                             const float* zeros, std::vector<float> bias,
                                             std::string fallback, int range_search) {
  return std::make_unique<LinearQ3G>(method, asymmetric, out, in, group, q, scales, zeros,
                                     std::move(bias), std::move(fallback),
                                     method == QuantMethod::kHqq ? range_search : 0);
}

}  // namespace webquant::linear_detail
