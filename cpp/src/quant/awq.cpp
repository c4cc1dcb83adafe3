// AWQ for one linear layer (calibration.h), after mit-han-lab/llm-awq `auto_scale`: search the
// per-input-channel scale s = mean|x|^alpha / sqrt(max * min) over a grid of alpha, quantize
// W diag(s) with RTN and keep 1/s as a scale the layer applies to its input. The search scores
// each alpha by the output error on the calibration inputs (through H = X^T X), so alpha = 0
// (s = 1, plain RTN) bounds the result.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "quant/calibration_internal.h"
#include "webquant/calibration.h"

namespace webquant {
namespace calib_detail {
namespace {

class LinearInputScaled final : public LinearLayer {
 public:
  LinearInputScaled(std::unique_ptr<LinearLayer> inner, std::vector<float> s)
      : inner_(std::move(inner)), s_(std::move(s)), inv_(s_.size()) {
    in_features = inner_->in_features;
    out_features = inner_->out_features;
    for (size_t c = 0; c < s_.size(); ++c) inv_[c] = 1.0f / s_[c];
  }
  void forward(const float* x, size_t m, float* y) const override {
    thread_local std::vector<float> xs;
    const size_t C = inv_.size();
    if (xs.size() < m * C) xs.resize(m * C);
    for (size_t t = 0; t < m; ++t)
      for (size_t c = 0; c < C; ++c) xs[t * C + c] = x[t * C + c] * inv_[c];
    inner_->forward(xs.data(), m, y);
  }
  LinearScheme scheme() const override { return inner_->scheme(); }
  size_t weight_bytes() const override { return inner_->weight_bytes() + s_.size() * sizeof(float); }
  std::string describe() const override { return inner_->describe() + ", awq input scales"; }
  void dequantize_weight(float* out) const override {
    inner_->dequantize_weight(out);
    const size_t C = inv_.size();
    for (size_t r = 0; r < static_cast<size_t>(out_features); ++r)
      for (size_t c = 0; c < C; ++c) out[r * C + c] *= inv_[c];
  }
  std::vector<float> bias() const override { return inner_->bias(); }
  Status export_quantized(LinearQuantizedData* out) const override {
    WQ_RETURN_IF_ERROR(inner_->export_quantized(out));
    out->input_scales = s_;
    return Status::Ok();
  }

 public:
  const LinearLayer* inner() const { return inner_.get(); }

 private:
  std::unique_ptr<LinearLayer> inner_;
  std::vector<float> s_, inv_;
};

}  // namespace

std::unique_ptr<LinearLayer> make_linear_input_scaled(std::unique_ptr<LinearLayer> inner,
                                                      std::vector<float> s) {
  return std::make_unique<LinearInputScaled>(std::move(inner), std::move(s));
}

const LinearLayer* input_scaled_inner(const LinearLayer* l) {
  const auto* scaled = dynamic_cast<const LinearInputScaled*>(l);
  return scaled == nullptr ? nullptr : scaled->inner();
}

}  // namespace calib_detail

using namespace calib_detail;

Status awq_quantize_linear(const float* w, int out_features, int in_features, const float* bias,
                           const double* h, const double* mean_abs, const LinearQuantSpec& spec,
                           const AwqOptions& opt, std::unique_ptr<LinearLayer>* out,
                           std::string* note, double* alpha) {
  if (out == nullptr || mean_abs == nullptr) return invalid("out and mean_abs must not be null");
  int bits = 0, G = 0;
  std::string fallback;
  WQ_RETURN_IF_ERROR(check_layer_args(w, out_features, in_features, h, spec, &bits, &G, &fallback, note));
  if (opt.grid < 1 || opt.grid > 1000) return invalid("AWQ grid must be in [1, 1000] (got " + std::to_string(opt.grid) + ")");
  const size_t R = static_cast<size_t>(out_features), C = static_cast<size_t>(in_features);
  for (size_t c = 0; c < C; ++c)
    if (!std::isfinite(mean_abs[c]) || mean_abs[c] < 0)
      return Status::Error(StatusCode::kNonFinite, "mean |x| of input channel " + std::to_string(c) + " is not finite and >= 0");

  std::vector<float> ws(R * C), deq(R * C), s(C);
  std::vector<float> best_s;
  double best_err = 0.0, best_alpha = 0.0;
  std::unique_ptr<LinearLayer> best;
  for (int k = 0; k < opt.grid; ++k) {
    const double a = static_cast<double>(k) / opt.grid;
    double smax = 0.0, smin = INFINITY;
    std::vector<double> sd(C);
    for (size_t c = 0; c < C; ++c) {
      sd[c] = std::pow(std::max(mean_abs[c], 1e-4), a);  // llm-awq clamps scales at 1e-4
      smax = std::max(smax, sd[c]);
      smin = std::min(smin, sd[c]);
    }
    const double norm = std::sqrt(smax * smin);
    for (size_t c = 0; c < C; ++c) s[c] = static_cast<float>(sd[c] / norm);
    for (size_t r = 0; r < R; ++r)
      for (size_t c = 0; c < C; ++c) ws[r * C + c] = w[r * C + c] * s[c];
    std::unique_ptr<LinearLayer> layer;
    WQ_RETURN_IF_ERROR(make_linear_quantized(ws.data(), out_features, in_features, bias, spec, &layer, nullptr));
    if (k > 0) layer = make_linear_input_scaled(std::move(layer), s);
    layer->dequantize_weight(deq.data());
    const double e = layer_output_error(deq.data(), w, out_features, in_features, h);
    if (!best || e < best_err) {
      best_err = e;
      best_alpha = a;
      best = std::move(layer);
    }
  }
  if (alpha) *alpha = best_alpha;
  *out = std::move(best);
  return Status::Ok();
}

}  // namespace webquant
