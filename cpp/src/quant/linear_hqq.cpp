// Linear layers whose groups have a float zero point (method hqq): 4-bit / 2-bit codes on the
// grouped kernels plus one float offset per group.
//
// W[j, c] = s[j, g] * (q[j, c] - z[j, g]), q signed codes, z a float (webquant/hqq.h). With
// u = q + h the unsigned code (h = 2^(bits-1), the symmetric zero code of the kernels):
//   W = s * (u - h) - s * z
// so the symmetric grouped kernel computes the first term, and the layer adds
//   y[i, j] += sum_g off[j, g] * xsum[i, g],   off = -s * z,  xsum[i, g] = sum_{c in g} x[i, c]
// (ng = ceil(k / G) multiply-adds per output: 1/G of the main product).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "quant/linear_internal.h"
#include "webquant/hqq.h"
#include "webquant/linear.h"

namespace webquant::linear_detail {
namespace {

#define WQ_HQQ_GEMM(name) kernels::name##__wasmsimd

thread_local std::vector<float> g_xsum;

class LinearQGFloatZero final : public LinearLayer {
 public:
  // q: [out, in] signed codes; scales, zeros: [out, ceil(in / group)].
  LinearQGFloatZero(LinearScheme scheme, int bits, int out, int in, int group, const int8_t* q,
                    const float* scales, const float* zeros, std::vector<float> bias,
                    std::string fallback, int range_search)
      : scheme_(scheme), bits_(bits), geo_(kernels::make_group_geometry(out, in, group)),
        scales_plain_(scales, scales + size_t(out) * ((in + group - 1) / group)),
        zeros_(zeros, zeros + size_t(out) * ((in + group - 1) / group)), bias_(std::move(bias)),
        fallback_(std::move(fallback)), range_search_(range_search) {
    out_features = out;
    in_features = in;
    const int h = 1 << (bits - 1);
    std::vector<uint8_t> codes(size_t(out) * in), zcodes(size_t(out) * geo_.groups, uint8_t(h));
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(q[i] + h);
    packed_.resize(kernels::packed_qg_bytes(geo_, bits));
    kernels::pack_qg(geo_, bits, codes.data(), zcodes.data(), packed_.data());
    scales_.assign(geo_.params(), 0.0f);
    offsets_.resize(zeros_.size());
    for (size_t j = 0; j < size_t(out); ++j) {
      for (size_t g = 0; g < geo_.groups; ++g) {
        const size_t k = j * geo_.groups + g;
        scales_[kernels::qg_param_index(geo_, j, g)] = scales_plain_[k];
        offsets_[k] = -scales_plain_[k] * zeros_[k];
      }
    }
  }

  void forward(const float* x, size_t m, float* y) const override {
    if (m == 0) return;
    const float* bias = bias_.empty() ? nullptr : bias_.data();
    kernels::parallel_gemm_qg_f32(
        bits_ == 4 ? WQ_HQQ_GEMM(gemm_q4g_f32) : WQ_HQQ_GEMM(gemm_q2g_f32), bits_, m, geo_, x,
        packed_.data(), scales_.data(), nullptr, bias, y);
    const size_t n = geo_.n, ng = geo_.groups, G = geo_.group;
    if (g_xsum.size() < ng) g_xsum.resize(ng);
    float* xs = g_xsum.data();
    for (size_t i = 0; i < m; ++i) {
      const float* xr = x + i * geo_.k;
      for (size_t g = 0; g < ng; ++g) {
        float s = 0;
        for (size_t c = 0; c < geo_.group_len(g); ++c) s += xr[g * G + c];  // ragged last group
        xs[g] = s;
      }
      float* yr = y + i * n;
      for (size_t j = 0; j < n; ++j) {
        const float* off = offsets_.data() + j * ng;
        float t = 0;
        for (size_t g = 0; g < ng; ++g) t += off[g] * xs[g];
        yr[j] += t;
      }
    }
  }
  LinearScheme scheme() const override { return scheme_; }
  size_t weight_bytes() const override {
    return packed_.size() + (scales_.size() + zeros_.size() + bias_.size()) * sizeof(float);
  }
  std::string describe() const override {
    return describe_quantized(scheme_, int(geo_.group), in_features, fallback_, true) +
           ", hqq float zero";
  }
  void dequantize_weight(float* out) const override { dequantize_rows(0, geo_.n, out); }
  void dequantize_rows(size_t first, size_t n, float* out) const override {
    const int h = 1 << (bits_ - 1);
    for (size_t j = first; j < first + n; ++j) {
      for (size_t c = 0; c < geo_.k; ++c) {
        const size_t k = j * geo_.groups + c / geo_.group;
        const int q = int(kernels::packed_qg_get(geo_, bits_, packed_.data(), j, c)) - h;
        out[(j - first) * geo_.k + c] = scales_plain_[k] * (static_cast<float>(q) - zeros_[k]);
      }
    }
  }
  std::vector<float> bias() const override { return bias_; }
  Status export_quantized(LinearQuantizedData* d) const override {
    *d = LinearQuantizedData();
    d->scheme = scheme_;
    d->asymmetric = true;
    d->bits = bits_;
    d->group_size = static_cast<int>(geo_.group);
    d->out_features = out_features;
    d->in_features = in_features;
    d->method = QuantMethod::kHqq;
    d->range_search = range_search_;
    const int h = 1 << (bits_ - 1);
    d->q.resize(geo_.n * geo_.k);
    for (size_t j = 0; j < geo_.n; ++j)
      for (size_t c = 0; c < geo_.k; ++c)
        d->q[j * geo_.k + c] =
            static_cast<int8_t>(int(kernels::packed_qg_get(geo_, bits_, packed_.data(), j, c)) - h);
    d->scales = scales_plain_;
    d->zero_points.assign(zeros_.size(), 0);
    d->zero_points_f = zeros_;
    d->bias = bias_;
    d->fallback = fallback_;
    return Status::Ok();
  }

 private:
  LinearScheme scheme_;
  int bits_;
  kernels::GroupGeometry geo_;
  std::vector<uint8_t> packed_;
  std::vector<float> scales_;        // [np/4][ng][4] for the kernel
  std::vector<float> scales_plain_;  // [n, ng]
  std::vector<float> zeros_;         // [n, ng], signed code domain
  std::vector<float> offsets_;       // [n, ng], -s * z
  std::vector<float> bias_;
  std::string fallback_;
  int range_search_;  // the record exported (LinearQuantizedData::range_search)
};

}  // namespace

Status check_hqq_spec(LinearScheme scheme, bool asymmetric) {
  if (scheme != LinearScheme::kW4A16 && scheme != LinearScheme::kW3A16 &&
      scheme != LinearScheme::kW2A16)
    return Status::Error(StatusCode::kInvalidArgument,
                         std::string("method hqq applies to weight-only 4, 3 and 2-bit schemes "
                                     "(w4a16, w3a16, w2a16), not ") +
                             linear_scheme_name(scheme));
  if (!asymmetric)
    return Status::Error(StatusCode::kInvalidArgument,
                         "method hqq optimises a zero point per group: it needs mode asymmetric");
  return Status::Ok();
}

Status make_linear_hqq(const float* w, int out, int in, int group, LinearScheme scheme, int bits,
                       std::vector<float> bias, std::string fallback, int range_search,
                       std::unique_ptr<LinearLayer>* layer) {
  const size_t n = size_t(out), k = size_t(in), ng = (k + size_t(group) - 1) / size_t(group);
  std::vector<uint8_t> u(n * k);
  std::vector<float> scales(n * ng), zeros(n * ng);
  HqqParams params;
  params.clip_steps = range_search;
  WQ_RETURN_IF_ERROR(hqq_quantize(w, n, k, size_t(group), bits, params, u.data(),
                                  scales.data(), zeros.data(), nullptr));
  // To the signed code domain of LinearQuantizedData: q = u - h, z_signed = z - h.
  const int h = 1 << (bits - 1);
  std::vector<int8_t> q(n * k);
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int8_t>(int(u[i]) - h);
  for (float& z : zeros) z -= float(h);
  *layer = make_linear_float_zero(scheme, bits, out, in, group, q.data(), scales.data(),
                                  zeros.data(), std::move(bias), std::move(fallback), range_search);
  return Status::Ok();
}

std::unique_ptr<LinearLayer> make_linear_float_zero(LinearScheme scheme, int bits, int out, int in,
                                                    int group, const int8_t* q,
                                                    const float* scales, const float* zeros,
                                                    std::vector<float> bias,
                                                    std::string fallback, int range_search) {
  if (bits == 3)
    return make_linear_q3g(QuantMethod::kHqq, true, out, in, group, q, scales, zeros,
                           std::move(bias), std::move(fallback), range_search);
  return std::make_unique<LinearQGFloatZero>(scheme, bits, out, in, group, q, scales, zeros,
                                             std::move(bias), std::move(fallback), range_search);
}

}  // namespace webquant::linear_detail
