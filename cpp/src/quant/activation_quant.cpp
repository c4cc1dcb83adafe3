// Observers of static int8 activation ranges, the static row quantizer of the A8 layers, and
// SmoothQuant's smoothing factors (webquant/activation_quant.h).
#include "webquant/activation_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <vector>

#include "kernels/conv/conv.h"
#include "kernels/gemm/gemm.h"

namespace webquant {

const char* observer_name(ObserverKind k) {
  switch (k) {
    case ObserverKind::kMinMax: return "minmax";
    case ObserverKind::kPercentile: return "percentile";
    case ObserverKind::kMovingAverage: return "moving-average";
  }
  return "unknown";
}

bool parse_observer(std::string_view name, ObserverKind* out) {
  for (ObserverKind k : {ObserverKind::kMinMax, ObserverKind::kPercentile, ObserverKind::kMovingAverage}) {
    if (name == observer_name(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

Status check_observer_options(const ObserverOptions& o) {
  const int k = static_cast<int>(o.kind);
  if (k < 0 || k > 2)
    return Status::Error(StatusCode::kInvalidArgument, "unknown observer " + std::to_string(k) + " (minmax, percentile, moving-average)");
  if (!(o.percentile > 0.0 && o.percentile <= 100.0))
    return Status::Error(StatusCode::kInvalidArgument, "observer percentile must be in (0, 100] (got " + std::to_string(o.percentile) + ")");
  if (!(o.averaging_constant > 0.0 && o.averaging_constant <= 1.0))
    return Status::Error(StatusCode::kInvalidArgument, "observer averaging constant must be in (0, 1] (got " + std::to_string(o.averaging_constant) + ")");
  return Status::Ok();
}

// ---- ActivationObserver -----------------------------------------------------------------------

ActivationObserver::ActivationObserver(ObserverOptions o) : opt_(o) {
  if (opt_.kind == ObserverKind::kPercentile) hist_.assign(kObserverBins, 0);
}

void ActivationObserver::add_abs(float a) {
  if (a > 0.0f && !(a < hi_)) {
    if (hi_ == 0.0) {
      int e = 0;
      std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1): 2^e > a
      hi_ = std::ldexp(1.0, e);
    }
    while (!(a < hi_)) {  // double the range: bin i takes bins 2i and 2i + 1
      for (size_t i = 0; i < kObserverBins / 2; ++i) hist_[i] = hist_[2 * i] + hist_[2 * i + 1];
      std::fill(hist_.begin() + kObserverBins / 2, hist_.end(), 0);
      hi_ *= 2.0;
    }
  }
  size_t bin = 0;
  if (hi_ > 0.0) bin = std::min(kObserverBins - 1, static_cast<size_t>(a / hi_ * kObserverBins));
  ++hist_[bin];
  abs_max_ = std::max(abs_max_, a);
}

void ActivationObserver::observe(const float* x, size_t n) {
  float bmin = INFINITY, bmax = -INFINITY;
  size_t finite = 0;
  for (size_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!std::isfinite(v)) {
      ++nonfinite_;
      continue;
    }
    ++finite;
    bmin = std::min(bmin, v);
    bmax = std::max(bmax, v);
    if (opt_.kind == ObserverKind::kPercentile) add_abs(std::fabs(v));
  }
  if (finite == 0) return;
  if (count_ == 0 || opt_.kind != ObserverKind::kMovingAverage) {
    min_ = count_ == 0 ? bmin : std::min(min_, bmin);
    max_ = count_ == 0 ? bmax : std::max(max_, bmax);
  } else {
    const float c = static_cast<float>(opt_.averaging_constant);
    min_ = min_ + c * (bmin - min_);
    max_ = max_ + c * (bmax - max_);
  }
  count_ += finite;
  ++batches_;
}

double ActivationObserver::amax() const {
  if (count_ == 0) return 0.0;
  if (opt_.kind != ObserverKind::kPercentile)
    return std::max(std::fabs(static_cast<double>(min_)), std::fabs(static_cast<double>(max_)));
  const double target = opt_.percentile / 100.0 * static_cast<double>(count_);
  const double width = hi_ / static_cast<double>(kObserverBins);
  double cum = 0.0;
  for (size_t i = 0; i < kObserverBins; ++i) {
    const double h = static_cast<double>(hist_[i]);
    if (h > 0.0 && cum + h >= target) {
      const double v = (static_cast<double>(i) + (target - cum) / h) * width;
      return std::min(v, static_cast<double>(abs_max_));
    }
    cum += h;
  }
  return abs_max_;
}

Status ActivationObserver::scale(float* out) const {
  if (nonfinite_ > 0)
    return Status::Error(StatusCode::kNonFinite, std::to_string(nonfinite_) + " calibration input value(s) are NaN or Inf");
  if (count_ == 0) return Status::Error(StatusCode::kInvalidArgument, "the observer saw no calibration input");
  const double a = amax();
  *out = a > 0.0 ? static_cast<float>(a / 127.0) : 1.0f;
  if (!(*out > 0.0f) || !std::isfinite(*out)) *out = 1.0f;  // underflow of a tiny range
  return Status::Ok();
}

double percentile_abs_reference(const float* x, size_t n, double p) {
  std::vector<double> a(n);
  for (size_t i = 0; i < n; ++i) a[i] = std::fabs(static_cast<double>(x[i]));
  std::sort(a.begin(), a.end());
  const double rank = p / 100.0 * static_cast<double>(n - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(n - 1, lo + 1);
  return a[lo] + (rank - static_cast<double>(lo)) * (a[hi] - a[lo]);
}

// ---- static rows ------------------------------------------------------------------------------

void quantize_rows_static_f32_s8(size_t m, size_t k, size_t group, size_t group_stride,
                                 const float* x, float scale, int8_t* xq, float* xscale,
                                 int32_t* group_sum) {
  const size_t groups = (k + group - 1) / group;  // a ragged last group when group does not divide k
  for (size_t i = 0; i < m; ++i) {
    const float* row = x + i * k;
    bool finite = true;
    for (size_t c = 0; c < k; ++c) finite = finite && std::isfinite(row[c]);
    xscale[i] = finite ? scale : NAN;
    int8_t* out = xq + i * groups * group_stride;
    for (size_t g = 0; g < groups; ++g) {
      int8_t* q = out + g * group_stride;
      const size_t len = kernels::group_length(k, group, g);
      kernels::quantize_static_f32_s8__wasmsimd(len, row + g * group, scale, q);
      std::memset(q + len, 0, group_stride - len);
      int32_t sum = 0;
      for (size_t e = 0; e < len; ++e) sum += q[e];
      group_sum[i * groups + g] = sum;
    }
  }
}

// ---- SmoothQuant ------------------------------------------------------------------------------

Status smoothquant_scales(const float* act_absmax, int in_features,
                          const std::vector<const float*>& weights,
                          const std::vector<int>& out_features, double alpha,
                          std::vector<float>* s) {
  if (s == nullptr || act_absmax == nullptr || in_features < 1 || weights.empty() ||
      weights.size() != out_features.size())
    return Status::Error(StatusCode::kInvalidArgument, "smoothquant: bad sizes or null arguments");
  if (!(alpha >= 0.0 && alpha <= 1.0))
    return Status::Error(StatusCode::kInvalidArgument, "smoothquant alpha must be in [0, 1] (got " + std::to_string(alpha) + ")");
  const size_t C = static_cast<size_t>(in_features);
  std::vector<double> wmax(C, 0.0);
  for (size_t l = 0; l < weights.size(); ++l) {
    if (weights[l] == nullptr || out_features[l] < 1)
      return Status::Error(StatusCode::kInvalidArgument, "smoothquant: bad weight matrix");
    for (size_t r = 0; r < static_cast<size_t>(out_features[l]); ++r)
      for (size_t c = 0; c < C; ++c) {
        const float v = weights[l][r * C + c];
        if (!std::isfinite(v)) return Status::Error(StatusCode::kNonFinite, "smoothquant: a weight is NaN or Inf");
        wmax[c] = std::max(wmax[c], std::fabs(static_cast<double>(v)));
      }
  }
  s->resize(C);
  for (size_t c = 0; c < C; ++c) {
    if (!std::isfinite(act_absmax[c])) return Status::Error(StatusCode::kNonFinite, "smoothquant: activation statistic of channel " + std::to_string(c) + " is not finite");
    const double a = std::max(static_cast<double>(act_absmax[c]), 0.0);
    const double v = std::pow(a, alpha) / std::pow(std::max(wmax[c], 1e-5), 1.0 - alpha);
    (*s)[c] = static_cast<float>(std::max(v, 1e-5));
  }
  return Status::Ok();
}

}  // namespace webquant
