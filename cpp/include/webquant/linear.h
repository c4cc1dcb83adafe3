// Linear layers y = x W^T + b, in float32 or with quantized weights.
//   x: [m, in_features] row-major floats; y: [m, out_features]; W: [out_features, in_features].
// The quantized layers never keep a float32 copy of W: their kernels dequantize (or, for A8,
// work in integers) inside the dot product.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "webquant/codebook.h"
#include "webquant/status.h"

namespace webquant {

enum class LinearScheme : int {
  kF32 = 0,
  kW8A16 = 1,  // int8 weights, activations float (per channel sym: the course's W8A16LinearLayer)
  kW4A16 = 2,  // 4-bit packed weights, per-group scales (+ zero points when asymmetric)
  kW2A16 = 3,  // 2-bit packed weights, per-group scales (+ zero points when asymmetric)
  kW8A8 = 4,   // int8 weights; activations quantized per token to int8; int32 accumulation
  kW4A8 = 5,   // 4-bit weights per group; activations int8 per token
  kF16 = 6,    // float16 weights (IEEE binary16), float32 activations and accumulators
  kBF16 = 7,   // bfloat16 weights, float32 activations and accumulators
  kW3A16 = 8,  // 3-bit packed weights per group (12 bytes per 32 codes), activations float
  // 4-bit indices into a 16-entry float table (nf4, log4, kmeans4: webquant/codebook.h) times an
  // absmax scale per group; activations float. Needs LinearQuantSpec::codebook.
  kLut4A16 = 9,
};

const char* linear_scheme_name(LinearScheme s);  // "f32", "w8a16", ..., "f16", "bf16"

// True for the unquantized schemes (f32, f16, bf16): no integer form, saved as float tensors.
inline bool is_float_scheme(LinearScheme s) {
  return s == LinearScheme::kF32 || s == LinearScheme::kF16 || s == LinearScheme::kBF16;
}

// The type a model keeps its float weights in (torch's dtype of the whole model). Half types store
// 16-bit values (weights of f16/bf16 linear layers, embeddings, norms); computation is float32.
enum class FloatType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };
// "float32", "float16", "bfloat16" (torch's names, as config.json's torch_dtype).
const char* float_type_name(FloatType t);
// Parses those names (and "fp32"/"f32", "fp16"/"f16"/"half", "bf16"); false for anything else.
bool parse_float_type(std::string_view name, FloatType* out);
// The float scheme of a type: kF32, kF16 or kBF16.
LinearScheme float_type_scheme(FloatType t);
// x rounded to the type (fp32_to_fp16 / fp32_to_bf16 and back; the identity for kF32).
float round_to_float_type(float x, FloatType t);

// How the weights' codes and parameters are chosen (the scheme says how they are stored).
//  kRtn: round to nearest with the course's scale and integer zero point (quant.h).
//  kHqq: HQQ (webquant/hqq.h), calibration-free: RTN's scale per group and a float zero point
//        optimised by a half-quadratic solver. Weight-only A16 low-bit schemes (w4a16, w3a16, w2a16),
//        asymmetric by definition; the layer keeps one float zero per group.
//  kGptq, kAwq: calibrated (webquant/calibration.h: the model is run over calibration text); the
//        layers they build store RTN-form codes (plus AWQ's input scales), or, for GPTQ on HQQ's
//        grid (GptqGrid::kHqq), HQQ's float-zero form (their exported method is then kHqq: the
//        storage form; the model registry keeps kGptq). A LinearQuantSpec given to
//        make_linear_quantized takes only kRtn or kHqq.
enum class QuantMethod : int { kRtn = 0, kHqq = 1, kGptq = 2, kAwq = 3 };
const char* quant_method_name(QuantMethod m);  // "rtn", "hqq", "gptq", "awq"

// Every quantized scheme takes every mode and granularity: int8, 4-bit and 2-bit weights alike,
// symmetric or asymmetric, per channel or per group (the combinations quantize() accepts on a
// tensor, with signed codes). Int8 with group_size == 32 and symmetric is llama.cpp's Q8_0 scheme.
struct LinearQuantSpec {
  LinearScheme scheme = LinearScheme::kW8A16;
  bool asymmetric = false;  // zero point per group (or channel); symmetric: z = 0
  int group_size = 32;      // elements per group along in_features (0 = per channel)
  // kHqq needs an A16 scheme of 4, 3 or 2 bits and asymmetric = true (kInvalidArgument otherwise).
  QuantMethod method = QuantMethod::kRtn;
  // kLut4A16 only (and required there): which 16-entry table. Other schemes need kNone.
  Codebook codebook = Codebook::kNone;
  // kHqq only: HQQ's range search, HqqParams::clip_steps (webquant/hqq.h) in [0, 100]; 0 = HQQ as
  // published. Non-zero with another method, or outside [0, 100], is kInvalidArgument.
  int range_search = 0;
  // Padding asked for explicitly (the design doc's "unless padding is asked for"): when group_size
  // does not divide in_features, keep groups of group_size and make the last group of each row
  // ragged (in_features - (ng - 1) * group_size elements, ng = ceil(in_features / group_size),
  // with its own scale and zero point) instead of falling back to one group per row. Every
  // grouped scheme and method takes it (int8/4/3/2, hqq, codebooks, and gptq / awq through
  // calibration.h). No effect when group_size divides in_features or is 0. Caveat: asymmetric
  // rtn (and gptq's grid) use the course's zero point, clamped to qmin for a group whose values
  // share one sign (quant.h); a very short last group does so often (2 elements: half the rows),
  // so pick a group size leaving at least ~8 elements, or method hqq (float zero points).
  bool ragged = false;
};

// The integer form of a quantized layer, in the course's convention (for saving and loading).
// Dequantized weight: W[j, c] = scales[j, g] * (q[j, c] - zero_points[j, g]), g = c / group_size.
// Groups: ng = ceil(in_features / group_size) per row. When group_size does not divide in_features
// (a "ragged" layer, LinearQuantSpec::ragged) group ng - 1 of every row holds the last
// in_features - (ng - 1) * group_size elements, and the per-group arrays are [out, ng]; otherwise
// ng = in_features / group_size. The older per-channel fallback is group_size == in_features with
// `fallback` set (one group per row), and loads as it always did.
struct LinearQuantizedData {
  LinearScheme scheme = LinearScheme::kW8A16;
  bool asymmetric = false;
  int bits = 8;                      // 8 (w8a16, w8a8), 4 (w4a16, w4a8), 3 (w3a16) or 2 (w2a16)
  int group_size = 0;                // along in_features; == in_features means per channel
  int out_features = 0;
  int in_features = 0;
  std::vector<int8_t> q;             // [out, in] signed codes in [-2^(bits-1), 2^(bits-1) - 1]
  std::vector<float> scales;         // [out, ng], finite and > 0
  std::vector<int32_t> zero_points;  // [out, ng], same signed range; all 0 if symmetric
  std::vector<float> bias;           // [out], or empty for no bias
  // Why a per-group request became per channel, e.g. "172 % 32 != 0" (shown by describe()); ""
  // otherwise. Only kept for layers with group_size == in_features.
  std::string fallback;
  // kHqq: zero points are floats, zero_points_f [out, ng] in the same signed code
  // domain (W = s * (q - z)), and zero_points is all 0. Empty for kRtn.
  QuantMethod method = QuantMethod::kRtn;
  std::vector<float> zero_points_f;
  // kHqq (float zero points) only: the range search (HqqParams::clip_steps) the grid was found
  // with, kept as a record of how it was made (saved as "range_search"); it does not change what
  // the codes mean. [0, 100]; 0 = HQQ as published (or not recorded). Must be 0 for kRtn.
  int range_search = 0;
  // kLut4A16: the table (16 floats, ascending) and its kind; q holds index - 8 (so the 4-bit
  // packing u = q + 8 stores the index); zero_points all 0, asymmetric false.
  Codebook codebook = Codebook::kNone;
  std::vector<float> table;
  // AWQ: [in] per-input-channel scales s > 0 the layer divides its input by (y = (x / s) W'^T + b,
  // W' = the dequantized codes above, i.e. the quantized W diag(s)); empty for plain layers.
  std::vector<float> input_scales;
  // Static int8 activations (webquant/activation_quant.h; w8a8 or w4a8 with rtn-form codes, so
  // also the codes GPTQ / AWQ choose): the per-tensor scale s
  // every input row is quantized with, xq = clamp(round(x / s), -127, 127) (out-of-range values
  // clamp). 0 = activations quantized dynamically per token. With input_scales, s applies to the
  // divided input x / input_scales.
  float activation_scale = 0.0f;
};

// The input of LinearLayer::forward_rows for one layer: prepared once on the calling thread by
// prepare_rows (A8 layers quantize x into xq / xscale / xsum), then read by concurrent
// forward_rows calls. Owned by the caller and reused across steps (the vectors only grow).
// rows_input_key of an A8 layer: its row quantizer family (a small tag per kernel family), in_features,
// the activation group and the padded group length.
inline uint64_t make_rows_input_key(uint64_t family, size_t k, size_t group, size_t gp) {
  return (family << 56) | (uint64_t(k & 0xfffff) << 36) | (uint64_t(group & 0x3ffff) << 18) |
         uint64_t(gp & 0x3ffff);
}

struct LinearRowsInput {
  const float* x = nullptr;  // the float row (not owned; must outlive the forward_rows calls)
  std::vector<int8_t> xq;
  std::vector<float> xscale;
  std::vector<int32_t> xsum;
  std::vector<float> x16;  // w4a16 / w8a16 layers: the row as kernels::x16_prepare_q4g / _q8c
};

class LinearLayer {
 public:
  virtual ~LinearLayer() = default;
  // y = x W^T + b for m rows of x. x and y must not alias. m = 0 writes nothing. NaN or Inf in a
  // row of x gives non-finite outputs for that row (never silently finite ones). Scratch space is
  // per thread, so distinct threads may call forward concurrently. The output rows are split over
  // the thread pool of webquant/threads.h; y is bit-identical for every num_threads().
  virtual void forward(const float* x, size_t m, float* y) const = 0;
  // The same product for a model's own layers (Weights::forward_linear), where a layer may take a
  // faster path of documented precision: 4-bit float-activation layers (w4a16) and int8 per-channel
  // ones (w8a16) decode (m <= 2) on 16-bit integer activations in SIMD builds, each 32-element block
  // of x carried to within 2^-15 of its largest |x| (kernels/gemm/gemm.h, x16_prepare_q4g and
  // x16_prepare_q8c). forward keeps float32 activations, as
  // the course's layers do. Equals forward_rows over the whole range for m = 1, bit for bit.
  virtual void forward_model(const float* x, size_t m, float* y) const { forward(x, m, y); }
  virtual LinearScheme scheme() const = 0;
  // Bytes held by the weights, scales, zero points and bias.
  virtual size_t weight_bytes() const = 0;
  // Human-readable scheme detail, e.g. "w4a16 g32 sym" or "w4a16 per-channel (172 % 32 != 0)".
  virtual std::string describe() const = 0;
  // Reconstructs W as float32 [out, in] (for error analysis and export); `out` has out*in floats.
  virtual void dequantize_weight(float* out) const = 0;
  // Rows first .. first+n-1 of the dequantized W into out ([n, in_features] floats), each
  // bit-identical to the same row of dequantize_weight (an embedding gather reads a quantized
  // table through this). Rows must lie in [0, out_features). The base version dequantizes all
  // of W; every layer of this library overrides it with a per-row one.
  virtual void dequantize_rows(size_t first, size_t n, float* out) const;
  // The bias (out_features floats), or empty when the layer has none.
  virtual std::vector<float> bias() const { return {}; }
  // The integer weights, scales and zero points of a quantized layer; kUnsupported for float32.
  virtual Status export_quantized(LinearQuantizedData* out) const {
    return Status::Error(StatusCode::kUnsupported, "a float32 linear layer has no quantized form");
  }

  // Output rows of a single input row, for splitting several layers' rows over the pool in one
  // hand-off (Weights::forward_linears fuses q/k/v or gate/up this way in decode). A layer that
  // returns true from has_forward_rows computes, with forward_rows(in, j0, j1, y, work), outputs
  // j0 .. j1-1 of forward_model(x, 1, .) into y[0 .. j1-j0), bit-identical to those of
  // forward_model (the same kernel over the same prepared input); j0 must be a multiple of 4 (the
  // kernels' panel of output rows) and j1 <= out_features. `work` holds rows_workspace() floats,
  // distinct per concurrent call. prepare_rows runs on the calling thread before the forward_rows
  // calls; it may allocate. The base versions: no row path (callers then use forward_model).
  virtual bool has_forward_rows() const { return false; }
  virtual size_t rows_workspace() const { return 0; }
  virtual void prepare_rows(const float* x, LinearRowsInput* in) const { in->x = x; }
  // What prepare_rows makes of x, as a key: two layers with the same nonzero key prepare the same
  // LinearRowsInput from the same x (same quantizer, in_features, group layout), so a fused group
  // prepares it once (q/k/v share one quantized row). 0 = nothing beyond the float row.
  virtual uint64_t rows_input_key() const { return 0; }
  virtual void forward_rows(const LinearRowsInput& in, size_t j0, size_t j1, float* y,
                            float* work) const {
    (void)in, (void)j0, (void)j1, (void)y, (void)work;
  }

  int in_features = 0;
  int out_features = 0;
};

// A float32 layer owning copies of W ([out, in]) and the optional bias (nullptr = none).
std::unique_ptr<LinearLayer> make_linear_f32(const float* w, int out_features, int in_features,
                                             const float* bias);

// A half-precision layer (type kF16 or kBF16) owning the 16-bit weights `w` ([out, in] bits of
// that type) and the optional bias (nullptr = none; kept as float32 values rounded to the type, so
// the layer holds exactly what a torch model in that dtype holds). Computes with f32 activations
// and accumulators on the gemm_f16_f32 / gemm_bf16_f32 kernels. Null for a bad type or sizes.
std::unique_ptr<LinearLayer> make_linear_half(FloatType type, std::vector<uint16_t> w,
                                              int out_features, int in_features, const float* bias);

// Quantizes W with `spec`. spec.scheme kF16 / kBF16 rounds W (and the bias) to that type
// (round to nearest even, as torch's .to()) and gives a half-precision layer. When in_features is
// not a multiple of group_size, the layer falls back to per-channel scales (group = in_features)
// and says so in describe() and *note (*note is set to "" otherwise; it may be nullptr), unless
// spec.ragged asks for a ragged last group (describe() then says "ragged"). scheme kF32 gives a float32 layer. Errors: kInvalidArgument
// (sizes < 1, unknown scheme, group_size < 0), kNonFinite (NaN/Inf in w or bias). A8 schemes
// accumulate int8 products in int32 and accept at most 131072 of them per group (65536 for w8a8
// asymmetric, whose |q - z| reaches 255). Int8 per channel symmetric runs on the q8c kernels, every
// other int8 layer on the q8g kernels (per-group scales cost one fold of the accumulators per
// group: see "int8 in groups of 32" in docs/speed.md).
Status make_linear_quantized(const float* w, int out_features, int in_features, const float* bias,
                             const LinearQuantSpec& spec, std::unique_ptr<LinearLayer>* out,
                             std::string* note);

// Builds a quantized layer from its integer form (e.g. read back from a saved model), without
// re-quantizing. Validates shapes, code ranges, scales (finite, > 0) and zero points.
Status make_linear_from_quantized(const LinearQuantizedData& data,
                                  std::unique_ptr<LinearLayer>* out);

}  // namespace webquant
