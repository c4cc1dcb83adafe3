// Convolution kernels over HWC (channels-last) activations: im2col, which turns a convolution
// into the GEMM of gemm.h, and the static int8 quantizer of W8A8 convolutions.
//
// Layouts:
//  * Activations are HWC float32 (or int8): x[(y * W + x) * C + c], top row first.
//  * im2col of one group (channels c0 .. c0 + cg - 1) writes one row per output pixel,
//    cols[(oy * OW + ox) * ld + (ky * KW + kx) * cg + ci] = x[iy, ix, c0 + ci] with
//    iy = oy * stride_h - pad_h + ky * dil_h (ix alike), 0 where (iy, ix) is outside the image,
//    and 0 in the row padding k .. ld - 1 (k = KH * KW * cg). The weight of that group is then
//    [cout_g, KH, KW, cg] row-major, so y[pixel, co] = cols W^T is the GEMM of gemm.h with
//    m = OH * OW pixels, n = cout_g, k = KH * KW * cg.
// The SIMD versions copy the contiguous cg-runs 4 floats / 16 bytes at a time; results are
// bit-identical to the references (it is data movement).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd.h"

namespace webquant::kernels {

struct ConvGeometry {
  size_t h = 0, w = 0, c = 0;   // input height, width, channels (all groups)
  size_t kh = 1, kw = 1;        // kernel size
  size_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
  size_t oh() const { return (h + 2 * pad_h - dil_h * (kh - 1) - 1) / stride_h + 1; }
  size_t ow() const { return (w + 2 * pad_w - dil_w * (kw - 1) - 1) / stride_w + 1; }
};

// c0, cg: the group's first channel and channel count; ld >= kh * kw * cg: row stride of cols.
void im2col_hwc_f32__ref(const ConvGeometry& g, size_t c0, size_t cg, size_t ld, const float* x,
                         float* cols);
void im2col_hwc_f32__wasmsimd(const ConvGeometry& g, size_t c0, size_t cg, size_t ld,
                              const float* x, float* cols);
void im2col_hwc_s8__ref(const ConvGeometry& g, size_t c0, size_t cg, size_t ld, const int8_t* x,
                        int8_t* cols);
void im2col_hwc_s8__wasmsimd(const ConvGeometry& g, size_t c0, size_t cg, size_t ld,
                             const int8_t* x, int8_t* cols);

// Static (calibrated) symmetric int8: q[i] = clamp(round_half_even(x[i] / scale), -127, 127);
// NaN gives 0 (the layer checks its input for NaN before). scale > 0.
void quantize_static_f32_s8__ref(size_t n, const float* x, float scale, int8_t* q);
void quantize_static_f32_s8__wasmsimd(size_t n, const float* x, float scale, int8_t* q);

#if !WEBQUANT_SIMD
#define im2col_hwc_f32__wasmsimd im2col_hwc_f32__ref
#define im2col_hwc_s8__wasmsimd im2col_hwc_s8__ref
#define quantize_static_f32_s8__wasmsimd quantize_static_f32_s8__ref
#endif

}  // namespace webquant::kernels
