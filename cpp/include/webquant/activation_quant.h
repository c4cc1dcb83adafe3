// Activation quantization beyond dynamic per-token int8: observers that fix a static per-tensor
// int8 activation scale from calibration text, and SmoothQuant (Xiao et al. 2022) migration of
// activation outliers into the weights before W8A8.
//
// Conventions (every function below):
//   Static activations are SYMMETRIC and per tensor: every row x of a layer's input is quantized
//   with the same scale s, xq = clamp(round_half_even(x / s), -127, 127) (the linear layers' fused
//   row quantizer kernels/gemm/quantize_static.h, the conv2d layers' quantize_static_f32_s8), so
//   values outside the calibrated range [-127 s, 127 s] clamp.
//   s = amax / 127 with amax the observer's range. Symmetric because the int8-activation GEMMs take
//   one float scale per activation row and no activation zero point: an asymmetric activation would
//   need an extra per-output term z_x * sum_c W[j, c] in every call, and the inputs of a
//   transformer's linear layers (norm outputs, attention outputs, gated MLP products) are centred.
//   A range of 0 (the layer only ever saw zeros) gives the safe scale 1.
//   X  a layer's input, [n, in] row-major; W [out, in] as linear.h (y = x W^T + b).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "webquant/status.h"

namespace webquant {

// How an observer turns calibration inputs into a range (PyTorch's observers of the same names).
//  kMinMax:        amax = max(|min x|, |max x|) over every value seen (MinMaxObserver).
//  kPercentile:    amax = the `percentile`-th percentile of |x| over every value seen, from a
//                  histogram of |x| with kObserverBins bins (see ActivationObserver).
//  kMovingAverage: per batch (one forward call) its min and max; the first batch sets the range,
//                  later ones move it: min += c (min_b - min), max += c (max_b - max), c the
//                  averaging constant (MovingAverageMinMaxObserver); amax = max(|min|, |max|).
enum class ObserverKind : int { kMinMax = 0, kPercentile = 1, kMovingAverage = 2 };
const char* observer_name(ObserverKind k);  // "minmax", "percentile", "moving-average"
// Parses those names; false for anything else.
bool parse_observer(std::string_view name, ObserverKind* out);

struct ObserverOptions {
  ObserverKind kind = ObserverKind::kMinMax;
  double percentile = 99.99;          // kPercentile: in (0, 100]
  double averaging_constant = 0.01;   // kMovingAverage: in (0, 1]
};
// kInvalidArgument naming the option when it is out of range or the kind is unknown.
Status check_observer_options(const ObserverOptions& o);

// Bins of the percentile histogram of |x| over [0, hi): hi is a power of two that doubles (merging
// bin pairs) when a larger value arrives, so a percentile is exact to within hi / kObserverBins.
constexpr size_t kObserverBins = 4096;

// Observes the values of one tensor over calibration batches (no allocation beyond the histogram).
class ActivationObserver {
 public:
  explicit ActivationObserver(ObserverOptions o = {});
  // One batch of n values (n = rows * in_features of one forward call). Non-finite values are
  // counted (finite() turns false) and otherwise ignored.
  void observe(const float* x, size_t n);
  size_t count() const { return count_; }      // finite values seen
  size_t batches() const { return batches_; }
  bool finite() const { return nonfinite_ == 0; }
  // The observed range amax (>= 0); 0 before any value.
  double amax() const;
  // The symmetric int8 scale amax / 127 (1 when amax = 0). Errors: kInvalidArgument when nothing
  // was observed, kNonFinite when a non-finite value was seen.
  Status scale(float* out) const;
  const ObserverOptions& options() const { return opt_; }

 private:
  void add_abs(float a);
  ObserverOptions opt_;
  size_t count_ = 0, batches_ = 0, nonfinite_ = 0;
  float min_ = 0.0f, max_ = 0.0f;              // minmax: running; moving-average: the average
  std::vector<uint64_t> hist_;                 // percentile: counts of |x| per bin
  double hi_ = 0.0;                            // percentile: histogram range [0, hi)
  float abs_max_ = 0.0f;                       // percentile: largest |x| (caps the result)
};

// The plain reference of the percentile observer: the p-th percentile of |x[i]| by sorting, with
// numpy's default linear interpolation (rank p / 100 * (n - 1)). n >= 1, finite values.
double percentile_abs_reference(const float* x, size_t n, double p);

// Rows of x quantized with one static scale into the padded layout of the int8-activation GEMMs
// (kernels/gemm/gemm.h): row i, group g at i * groups * group_stride + g * group_stride, padding 0;
// group_sum[i * groups + g] = sum of that group's codes; xscale[i] = scale, or NaN (codes and sums
// 0) when row i holds a NaN or Inf (so the layer's output row is non-finite, never silently
// finite). k % group == 0. One fused SIMD pass (kernels/gemm/quantize_static.h, without input
// scales).
void quantize_rows_static_f32_s8(size_t m, size_t k, size_t group, size_t group_stride,
                                 const float* x, float scale, int8_t* xq, float* xscale,
                                 int32_t* group_sum);

// SmoothQuant's per-input-channel factors for the layers that read one input (q/k/v, gate/up):
//   s_j = max(act_absmax[j], 0)^alpha / max(w_absmax[j], 1e-5)^(1 - alpha), clamped to >= 1e-5,
// with w_absmax[j] = max over the rows of every layer of |W[r, j]| (smoothquant's smooth_ln_fcs).
// The layers then use W diag(s) and read x / s (folded into the preceding norm, or kept as the
// layer's input_scales). weights: pointers to [out_i, in] matrices; alpha in [0, 1].
// Errors: kInvalidArgument (sizes, alpha), kNonFinite (statistics or weights).
Status smoothquant_scales(const float* act_absmax, int in_features,
                          const std::vector<const float*>& weights,
                          const std::vector<int>& out_features, double alpha,
                          std::vector<float>* s);

// Calibrated activation options of quantize_calibrated (calibration.h), for methods rtn, gptq
// (its rtn grid) and awq.
struct ActivationQuantOptions {
  // Static per-tensor int8 activations fixed by `observer` (w8a8 and w4a8 layers); false = the
  // scheme's dynamic per-token activations.
  bool static_int8 = false;
  ObserverOptions observer;
  // SmoothQuant before quantizing (A8 schemes: w8a8, w4a8), with migration strength alpha.
  bool smoothquant = false;
  double smoothquant_alpha = 0.5;
  bool any() const { return static_int8 || smoothquant; }
};

}  // namespace webquant
