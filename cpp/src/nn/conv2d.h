// 2-D convolution layer over HWC (channels-last) float32 activations, in five schemes (names as
// the linear layers': conv_scheme_name):
//   kF32   "f32"    float32 weights            (im2col + gemm_f32_f32)
//   kW8    "w8a16"  int8 weights per output channel, float activations (im2col + gemm_q8c_f32)
//   kW8A8  "w8a8"   int8 weights per output channel and int8 activations with ONE static scale per
//                   layer, calibrated on images (quantize_static + im2col_s8 + gemm_q8c_s8)
//   kW4    "w4a16"  int4 weights per group of G (default 32) consecutive elements of the im2col K
//                   dimension ([kh, kw, cin_g] order), symmetric; float activations
//                   (im2col + gemm_q4g_f32)
//   kW4A8  "w4a8"   those int4 weights and int8 activations with one static scale per layer
//                   (quantize_static + im2col_s8 + gemm_q4g_s8)
// Conventions (PyTorch's Conv2d): weight is [out, in / groups, kh, kw] row-major (OIHW, as in a
// safetensors checkpoint), bias [out] or absent; out[y, x, o] = bias[o] + sum over the group's
// channels and the kernel window of w[o, ci, ky, kx] * in[y*sh - ph + ky*dh, x*sw - pw + kx*dw,
// g*cin_g + ci], zero outside the image. Output size: (H + 2 ph - dh (kh - 1) - 1) / sh + 1.
// Weight quantization: symmetric per output channel, s = max|w[o]| / 127,
// q = clamp(round_half_even(w / s), -127, 127) (s = 0 for an all-zero channel).
// int4 weights (kW4, kW4A8): the library's symmetric rule (webquant/quant.h) per group of G along
// K = kh * kw * cin_g: s = max|w| / 7, q = clamp(round_half_even(w / s), -8, 7) (an all-zero group
// gets s = 1). When G does not divide K (e.g. conv1 of a ResNet: K = 3 * 7 * 7 = 147) the layer
// falls back to ONE group of K per output channel, as the linear layers do, and says so in
// fallback() / describe() ("147 % 32 != 0").
// Activation quantization (kW8A8, kW4A8): q = clamp(round_half_even(x / s_act), -127, 127) with the
// calibrated s_act = max|x| / 127 over the calibration inputs (set_activation_scale).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/conv/conv.h"
#include "kernels/gemm/gemm.h"
#include "webquant/status.h"

namespace webquant::nn {

enum class ConvScheme : int { kF32 = 0, kW8 = 1, kW8A8 = 2, kW4 = 3, kW4A8 = 4 };

// "f32", "w8a16", "w8a8", "w4a16", "w4a8" (the linear layers' names); "?" for anything else.
const char* conv_scheme_name(ConvScheme s);
// True for the schemes with static int8 activations (kW8A8, kW4A8): they need a calibrated scale.
inline bool conv_scheme_static_a8(ConvScheme s) {
  return s == ConvScheme::kW8A8 || s == ConvScheme::kW4A8;
}

struct Conv2dSpec {
  int in_channels = 0, out_channels = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  int groups = 1;
};

// Folds an inference BatchNorm that follows a convolution into its weight and bias:
// w'[o] = w[o] * gamma[o] / sqrt(var[o] + eps), b'[o] = (b[o] - mean[o]) * gamma[o] /
// sqrt(var[o] + eps) + beta[o] (b = 0 when the conv has no bias). weight: out * per_out floats,
// updated in place; bias: resized to out. kInvalidArgument for var + eps <= 0 or non-finite.
Status fold_batchnorm(int out, size_t per_out, float* weight, std::vector<float>* bias,
                      const float* gamma, const float* beta, const float* mean, const float* var,
                      float eps);

class Conv2d {
 public:
  // Copies (and for the quantized schemes quantizes) the weights. group_size: kW4 / kW4A8 only,
  // elements per group along K (>= 1; 0 = one group per output channel); a G that does not divide
  // K falls back to per channel. kInvalidArgument for a bad spec (channels not divisible by groups,
  // non-positive sizes), a bad scheme or group size, or K > 131072 with int8 activations (the
  // int32 sums would not be exact); kNonFinite for NaN/Inf weights.
  static Status create(const Conv2dSpec& spec, const float* weight_oihw, const float* bias,
                       ConvScheme scheme, Conv2d* out, int group_size = 32);
  // kW8A8 / kW4A8 only: the static input scale (> 0, finite). Until set, forward returns
  // kInvalidArgument.
  Status set_activation_scale(float scale);
  // x: [h, w, in_channels] HWC; y is resized to [oh, ow, out_channels]. kShapeMismatch when the
  // image is smaller than the (dilated) kernel after padding; kNonFinite for NaN/Inf in x with kW8A8.
  Status forward(const float* x, size_t h, size_t w, std::vector<float>* y, size_t* oh,
                 size_t* ow) const {
    return run(x, h, w, y, oh, ow, conv_scheme_static_a8(scheme_));
  }
  // The same with float activations even for kW8A8 / kW4A8 (their quantized weights): the
  // calibration pass.
  Status forward_float(const float* x, size_t h, size_t w, std::vector<float>* y, size_t* oh,
                       size_t* ow) const {
    return run(x, h, w, y, oh, ow, false);
  }
  const Conv2dSpec& spec() const { return spec_; }
  ConvScheme scheme() const { return scheme_; }
  float activation_scale() const { return act_scale_; }
  // Bytes of weights as stored (float32, int8 codes + one float scale per channel, or packed int4
  // codes + one float scale per group) and bias.
  size_t weight_bytes() const;
  // kW4 / kW4A8: elements per weight group along K as used (K itself after a fallback); 0 for the
  // other schemes.
  int group_size() const { return is_q4() ? int(geo_.group) : 0; }
  // Why a per-group request became per channel, e.g. "147 % 32 != 0"; "" otherwise.
  const std::string& fallback() const { return fallback_; }
  // The scheme as the linear layers write it: "f32", "w8a16 per-channel sym", "w4a16 g32 sym",
  // "w4a16 per-channel (147 % 32 != 0) sym", "w4a8 g32 sym, activations int8 static per layer".
  std::string describe() const;
  // The weights as used, dequantized: OIHW floats (out * in / groups * kh * kw), BatchNorm folded.
  // For checks against a plain float convolution over the same values.
  void dequantize_weight(float* weight_oihw) const;

 private:
  Status run(const float* x, size_t h, size_t w, std::vector<float>* y, size_t* oh, size_t* ow,
             bool int8_activations) const;
  bool is_q4() const { return scheme_ == ConvScheme::kW4 || scheme_ == ConvScheme::kW4A8; }
  // One im2col + GEMM per group for the int4 schemes (conv2d_q4.cpp); y is [m, cout] (zeroed).
  void run_q4(const kernels::ConvGeometry& g, const float* x, bool int8_activations,
              std::vector<float>* y) const;
  Status make_q4(const std::vector<float>& w_ohwi, int group_size);
  Conv2dSpec spec_;
  ConvScheme scheme_ = ConvScheme::kF32;
  size_t cin_g_ = 0, cout_g_ = 0, k_ = 0;
  std::vector<float> w_;                     // kF32: per group [cout_g, kh, kw, cin_g]
  std::vector<std::vector<uint8_t>> packed_;  // int8: pack_q8c per group; int4: pack_qg (bits 4)
  std::vector<std::vector<float>> scales_;    // int8: np floats per group; int4: qg_param_index order
  kernels::GroupGeometry geo_;               // of one conv group: [cout_g, K]
  std::string fallback_;
  std::vector<float> bias_;                  // out_channels (zeros when absent)
  float act_scale_ = 0.0f;
};

}  // namespace webquant::nn
