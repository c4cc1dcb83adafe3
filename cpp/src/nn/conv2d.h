// 2-D convolution layer over HWC (channels-last) float32 activations, in three schemes:
//   kF32   float32 weights            (im2col + gemm_f32_f32)
//   kW8    int8 weights per output channel, float activations (im2col + gemm_q8c_f32)
//   kW8A8  int8 weights per output channel and int8 activations with ONE static scale per layer,
//          calibrated on images (quantize_static + im2col_s8 + gemm_q8c_s8)
// Conventions (PyTorch's Conv2d): weight is [out, in / groups, kh, kw] row-major (OIHW, as in a
// safetensors checkpoint), bias [out] or absent; out[y, x, o] = bias[o] + sum over the group's
// channels and the kernel window of w[o, ci, ky, kx] * in[y*sh - ph + ky*dh, x*sw - pw + kx*dw,
// g*cin_g + ci], zero outside the image. Output size: (H + 2 ph - dh (kh - 1) - 1) / sh + 1.
// Weight quantization: symmetric per output channel, s = max|w[o]| / 127,
// q = clamp(round_half_even(w / s), -127, 127) (s = 0 for an all-zero channel).
// Activation quantization (kW8A8): q = clamp(round_half_even(x / s_act), -127, 127) with the
// calibrated s_act = max|x| / 127 over the calibration inputs (set_activation_scale).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/conv/conv.h"
#include "kernels/gemm/gemm.h"
#include "webquant/status.h"

namespace webquant::nn {

enum class ConvScheme : int { kF32 = 0, kW8 = 1, kW8A8 = 2 };

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
  // Copies (and for kW8/kW8A8 quantizes) the weights. kInvalidArgument for a bad spec (channels
  // not divisible by groups, non-positive sizes), kNonFinite for NaN/Inf weights.
  static Status create(const Conv2dSpec& spec, const float* weight_oihw, const float* bias,
                       ConvScheme scheme, Conv2d* out);
  // kW8A8 only: the static input scale (> 0, finite). Until set, forward returns kInvalidArgument.
  Status set_activation_scale(float scale);
  // x: [h, w, in_channels] HWC; y is resized to [oh, ow, out_channels]. kShapeMismatch when the
  // image is smaller than the (dilated) kernel after padding; kNonFinite for NaN/Inf in x with kW8A8.
  Status forward(const float* x, size_t h, size_t w, std::vector<float>* y, size_t* oh,
                 size_t* ow) const {
    return run(x, h, w, y, oh, ow, scheme_ == ConvScheme::kW8A8);
  }
  // The same with float activations even for kW8A8 (its int8 weights): the calibration pass.
  Status forward_float(const float* x, size_t h, size_t w, std::vector<float>* y, size_t* oh,
                       size_t* ow) const {
    return run(x, h, w, y, oh, ow, false);
  }
  const Conv2dSpec& spec() const { return spec_; }
  ConvScheme scheme() const { return scheme_; }
  float activation_scale() const { return act_scale_; }
  // Bytes of weights as stored (float32 or int8 codes + one float scale per channel) and bias.
  size_t weight_bytes() const;

 private:
  Status run(const float* x, size_t h, size_t w, std::vector<float>* y, size_t* oh, size_t* ow,
             bool int8_activations) const;
  Conv2dSpec spec_;
  ConvScheme scheme_ = ConvScheme::kF32;
  size_t cin_g_ = 0, cout_g_ = 0, k_ = 0;
  std::vector<float> w_;                     // kF32: per group [cout_g, kh, kw, cin_g]
  std::vector<std::vector<uint8_t>> packed_;  // int8: pack_q8c per group
  std::vector<std::vector<float>> scales_;    // int8: np floats per group
  kernels::GroupGeometry geo_;
  std::vector<float> bias_;                  // out_channels (zeros when absent)
  float act_scale_ = 0.0f;
};

}  // namespace webquant::nn
