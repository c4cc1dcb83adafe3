// The static (calibrated) activation quantizer of the int8-activation GEMMs (gemm.h, gemm_q8g.h):
// one pass per row that divides by optional per-input-channel scales, quantizes with one given
// per-tensor scale, writes the padded group layout and the group sums the A8 kernels take.
//
// For each row i of x [m, k] and each element c (g = c / group, e = c % group):
//   v    = inv_scales ? x[i, c] * inv_scales[c] : x[i, c]   (SmoothQuant / AWQ input scales, given
//          as their reciprocals 1 / s, the multiplication the input-scaled layers do)
//   xq[(i * groups + g) * group_stride + e] = clamp(round_half_even(v / scale), -127, 127)
//   (v / scale a true float32 division), padding group .. group_stride-1 of every group = 0,
//   group_sum[i * groups + g] = the sum of that group's codes, xscale[i] = scale.
// A row where some v is NaN or +-Inf gets xscale[i] = NaN, all codes 0 and sums 0, so the layer's
// output row is non-finite (never silently finite). groups = k / group; k % group == 0,
// group_stride >= group and scale finite > 0 are the caller's job. The SIMD version is
// bit-identical to the reference (same float operations per element, integer sums).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd.h"

namespace webquant::kernels {

void quantize_rows_static_f32_s8__ref(size_t m, size_t k, size_t group, size_t group_stride,
                                      const float* x, const float* inv_scales, float scale,
                                      int8_t* xq, float* xscale, int32_t* group_sum);
void quantize_rows_static_f32_s8__wasmsimd(size_t m, size_t k, size_t group, size_t group_stride,
                                           const float* x, const float* inv_scales, float scale,
                                           int8_t* xq, float* xscale, int32_t* group_sum);

#if !WEBQUANT_SIMD
#define quantize_rows_static_f32_s8__wasmsimd quantize_rows_static_f32_s8__ref
#endif

}  // namespace webquant::kernels
