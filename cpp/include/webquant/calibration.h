// Calibrated weight quantization: GPTQ and AWQ, layer by layer and over a whole model.
//
// Conventions (every function below):
//   W      [out, in] row-major float32, as LinearLayer (y = x W^T + b).
//   X      calibration inputs of a layer, [n, in] row-major (one row per token).
//   H      the layer's Hessian proxy H = X^T X, [in, in] row-major double (symmetric; GPTQ's
//          2/n factor is left out: every decision below is invariant to a positive factor).
//   mean_abs  [in] doubles, mean over tokens of |x[t, c]| (AWQ's activation statistic).
//   The output error of a weight W' on the calibration inputs is ||X W'^T - X W^T||_F^2 =
//   sum_r (W'_r - W_r)^T H (W'_r - W_r) (layer_output_error).
//
// Scales and zero points of the results follow webquant's RTN rules (quant.h's
// compute_scale_zero_point on each group of the final weights or of the error-updated weights),
// so a GPTQ layer is an ordinary int8/int4/int2 per-group (or per-channel) layer running on the
// existing kernels. An AWQ layer additionally divides its input by a per-input-channel scale s
// (LinearQuantizedData::input_scales): y = (x / s) Q(W diag(s))^T + b.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "webquant/activation_quant.h"
#include "webquant/hqq.h"
#include "webquant/linear.h"
#include "webquant/module.h"
#include "webquant/status.h"

namespace webquant {

class CausalLM;

// The grid GPTQ rounds onto (GptqOptions::grid).
//  kRtn: webquant's RTN scales and integer zero points, of each group of the error-updated weights
//        when the group starts (per channel and act-order: of the original weights).
//  kHqq: HQQ's scale and float zero point per group (hqq.h, with GptqOptions::hqq) of the original
//        weights, fixed up front ("static groups"); GPTQ rounds the error-updated weights onto it,
//        u = clamp(round(w / s + z), 0, 2^bits - 1). Needs an asymmetric weight-only scheme of 4, 3
//        or 2 bits (w4a16, w3a16, w2a16), as method hqq; the layer keeps one float zero per group
//        (stored as method hqq's float-zero form).
enum class GptqGrid : int { kRtn = 0, kHqq = 1 };

// GPTQ (Frantar et al. 2022, IST-DASLab/gptq `fasterquant`).
struct GptqOptions {
  // Reorder columns by decreasing diag(H) ("act-order"). Groups keep webquant's contiguous layout:
  // with act-order their scales are fixed up front from the original weights ("static groups").
  bool act_order = false;
  // Columns per lazy batch; rounded up to a multiple of the group size (so that a group's scale
  // is computed from fully updated columns).
  int block_size = 128;
  // Fraction of mean(diag(H)) added to the diagonal (percdamp).
  double dampening = 0.01;
  // The grid the codes land on (see GptqGrid) and, for kHqq, the HQQ solver's settings.
  GptqGrid grid = GptqGrid::kRtn;
  HqqParams hqq;
  // kHqq without act_order: solve each group's HQQ grid on the error-updated weights when the walk
  // reaches the group (as kRtn does with RTN's), instead of on the original weights up front.
  bool grid_from_updated = false;
};

// AWQ (Lin et al. 2023, llm-awq `auto_scale`): s = mean_abs^alpha / sqrt(max * min) for alpha in
// {0, 1/grid, ..., (grid-1)/grid}; the alpha with the least output error on the calibration
// inputs wins (alpha = 0, s = 1, is plain RTN, so AWQ's error is never above RTN's).
struct AwqOptions {
  int grid = 20;
};

// Quantizes W with GPTQ and spec (scheme, asymmetric, group_size; a group size that does not
// divide in_features falls back to per channel as make_linear_quantized does, or, with spec.ragged,
// keeps a ragged last group whose scale is fitted on its own columns). `bias` may be
// null. Errors: kInvalidArgument (sizes, scheme f32, bad options), kNonFinite (W or H), and
// kInvalidArgument when the dampened H is not positive definite (raise dampening).
Status gptq_quantize_linear(const float* w, int out_features, int in_features, const float* bias,
                            const double* h, const LinearQuantSpec& spec, const GptqOptions& opt,
                            std::unique_ptr<LinearLayer>* out, std::string* note);

// GPTQ's column-by-column rounding with error feedback onto a grid given up front: scales and
// float zeros [out, ceil(in / group)] in the unsigned code domain (w' = s * (u - z), u in
// [0, 2^bits - 1]; finite, s > 0; a ragged last group when group does not divide in_features).
// codes receives u [out, in]. Uses opt.act_order and opt.dampening (not block_size: no lazy
// batches). Errors: kInvalidArgument (sizes, bits outside [2, 8], group outside
// [1, in_features], bad grid values, H not positive definite after
// dampening), kNonFinite (W, H, or a diverging update).
Status gptq_round_on_grid(const float* w, int out_features, int in_features, const double* h,
                          int bits, int group, const float* scales, const float* zeros,
                          const GptqOptions& opt, uint8_t* codes);

// AWQ scale search, then RTN of W diag(s) with spec. *alpha receives the chosen exponent (may be
// null). Errors as gptq_quantize_linear.
Status awq_quantize_linear(const float* w, int out_features, int in_features, const float* bias,
                           const double* h, const double* mean_abs, const LinearQuantSpec& spec,
                           const AwqOptions& opt, std::unique_ptr<LinearLayer>* out,
                           std::string* note, double* alpha);

// sum_r (A_r - B_r)^T H (A_r - B_r) for A, B [out, in]: the summed squared output error over the
// calibration rows whose Hessian is H.
double layer_output_error(const float* a, const float* b, int out_features, int in_features,
                          const double* h);

// Per-layer input statistics collected while a model runs calibration text.
struct LayerInputStats {
  size_t rows = 0;                // tokens seen
  std::vector<double> hessian;    // [in, in] X^T X (when asked for): float32 sums of the products
                                  // over tiles of at most 128 tokens, added up in double
  std::vector<double> mean_abs;   // [in] mean |x| (when asked for)
  std::vector<float> min, max;    // [in] per input channel (when asked for)
};

// What to collect (calibrate_inputs).
struct CalibrationStatsRequest {
  bool hessian = false;
  bool mean_abs = false;
  bool min_max = false;
};

// Records the inputs of some linear layers of `weights` while it is installed (RAII: removes
// itself from `weights` on destruction). `layers` are indices into Weights::linear_at. Layers that
// receive the same input (q/k/v, gate/up) share one accumulation.
class LinearInputRecorder final : public LinearInputObserver {
 public:
  LinearInputRecorder(const Weights& weights, std::vector<size_t> layers,
                      CalibrationStatsRequest what);
  ~LinearInputRecorder() override;
  void observe(size_t linear, const float* x, size_t m) override;
  // Statistics of linear `linear` (an index given to the constructor), finalized (means divided).
  const LayerInputStats& stats(size_t linear);

 private:
  struct Slot;
  const Weights& weights_;
  std::vector<size_t> layers_;
  CalibrationStatsRequest what_;
  std::vector<std::unique_ptr<Slot>> slots_;  // one per distinct input
  std::vector<int> slot_of_;                  // per entry of layers_: index into slots_ or -1
  std::vector<float> last_x_;                 // the last recorded input, to detect sharing
  int last_slot_ = -1;
  std::vector<float> work_;                   // scratch of the X^T X tiles
};

// Calibration text as token ids, cut into sequences that are run from an empty cache.
struct CalibrationOptions {
  std::vector<int32_t> tokens;
  int sequence_length = 128;  // tokens per sequence (the last one may be shorter)
  // true: the sequences' hidden states are kept between blocks and each block runs twice over them
  // (to record its inputs, then quantized, to make the next block's inputs), when the architecture
  // runs block by block (CausalLM::num_blocks() > 0). false, or a model that does not: one
  // whole-model pass over the tokens per block (slower; the same layers, bit for bit).
  bool blockwise = true;
  GptqOptions gptq;
  AwqOptions awq;
  // Static int8 activations and / or SmoothQuant (activation_quant.h; method rtn only).
  ActivationQuantOptions activations;
};

// Progress of quantize_calibrated: `done` of `total` steps (a calibration pass over one block of
// layers, or one layer quantized), with a short label. Return false to stop (kAborted).
using CalibrationProgress = std::function<bool(int done, int total, const std::string& label)>;

// Quantizes the model's linear layers with options.method (kGptq or kAwq; kRtn falls through to
// Weights::quantize), calibrated on calib.tokens. Layers are processed block by block (a block is
// the layers sharing a name prefix up to the first numeric component, "model.layers.3", in model
// order): each block's inputs come from a pass over the calibration tokens through the model
// whose earlier blocks are already quantized (GPTQ's sequential mode). Block-wise
// (CalibrationOptions::blockwise), the embeddings run once, the hidden states [tokens, hidden] of
// every sequence are kept, and each block runs once to record its inputs and once quantized; the
// output head (when quantized) sees the last row of each sequence, as a forward pass computes it.
// Layers reading the same input share one Hessian and one GPTQ factor. Exclusions, overrides and
// fallbacks are decided as in Weights::quantize; the report's note names the method.
// An already quantized layer is re-quantized from its dequantized weights (noted).
// Errors: kInvalidArgument (no tokens, sequence_length < 1, tokens out of the vocabulary or past
// the context, f32 overrides with a calibrated method), the errors of
// the per-layer functions naming the layer, kAborted. On error, layers already done keep their
// new form.
Status quantize_calibrated(CausalLM* model, const ModelQuantOptions& options,
                           const CalibrationOptions& calib, std::vector<LayerQuantReport>* report,
                           const CalibrationProgress& progress = nullptr);

// The activation half of quantize_calibrated (called by it when calib.activations.any()), for
// options.method rtn, gptq or awq and every layer it quantizes in an A8 scheme (w8a8 or w4a8):
//  1. smoothquant: one pass over the calibration tokens records max |x_j| of every layer's input;
//     layers that read the output of one norm (q/k/v after input_layernorm, gate/up after
//     post_attention_layernorm; GPT-2's ln_1 / ln_2 and GPT-NeoX's norms likewise) share one s
//     (smoothquant_scales over all their weights) that is folded into the norm's weight (and bias):
//     g' = g / s, W' = W diag(s). A layer whose norm cannot take it (another reader of the norm is
//     excluded, a half-precision norm, no norm) gets its own s as input_scales (x / s, as AWQ).
//  2. static: a pass over the calibration tokens through the (smoothed) float model feeds one
//     observer per layer with the input the layer's quantized form will see (x / s for
//     input_scales), and the layer keeps amax / 127 as its activation_scale.
//  3. every layer is quantized with RTN in its spec (static: rebuilt with the scale).
// With method gptq or awq, steps 2 and 3 are instead: the weight method block by block on the
// smoothed model (as quantize_calibrated; a layer with input scales is quantized on the input it
// sees, x / s, and keeps s, times AWQ's own scales), THEN the observers over the quantized model
// (each layer's range is that of the activations its quantized predecessors make, as at run time),
// and every layer is rebuilt from its integer form with its static scale. (RTN keeps the float
// model's ranges, PyTorch's prepare / convert order, which the stories260K tables were measured
// with.) gptq's grid 'hqq' gives hqq-form codes and is a kInvalidArgument error here.
// The report notes the observer and scale or the smoothing per layer. Errors: kInvalidArgument
// naming the option or layer (a method other than rtn, pruning, options.embeddings, a scheme
// that is not A8, observer options, alpha outside [0, 1], no tokens), kNonFinite
// (calibration inputs), kAborted. After an error past the smoothquant pass the model keeps its
// smoothed float layers and norms (the same function as before).
Status quantize_activations_calibrated(CausalLM* model, const ModelQuantOptions& options,
                                       const CalibrationOptions& calib,
                                       std::vector<LayerQuantReport>* report,
                                       const CalibrationProgress& progress = nullptr);

}  // namespace webquant
