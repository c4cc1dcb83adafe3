// int8 weights per group (q8g): the GEMM kernels of the W8A16 / W8A8 layers whose scales are per
// group of G inputs (G = 32, 64, 128, ... or G = k for per channel) or that are asymmetric (a
// zero point per group). The per-channel symmetric layer keeps its own kernels (q8c, gemm.h).
//
// Layout: the q8c layout of gemm.h with every group padded on its own. Each group of G codes is
// padded to Gp = round_up(G, 16) with the group's zero code and cut into blocks of 16, so a row
// holds ng * Gp codes (kpad) and, with G = k, the bytes are exactly pack_q8c's:
//   panel p (rows 4p..4p+3): [block 0: row 4p | 4p+1 | 4p+2 | 4p+3][block 1: ...] ...
//   block of one row (16 bytes, read as 4 little-endian words w0..w3): byte t of word i holds
//   element 4t + i of the block, as the unsigned code u = q + 128.
// Group parameters in the qg_param_index order of gemm.h: scales [np/4][ng][4] floats, zero codes
// [np/4][ng][4] bytes zu = z + 128 (z the signed zero point). zero == nullptr means symmetric:
// every zero code is 128. The weight is W[j, c] = scale[j, g] * (u[j, c] - zu[j, g]).
//
// Activations: float rows for the _f32 kernel; for the _s8 kernel, quantize_rows_f32_s8 with
// (group = G, group_stride = Gp), i.e. xq [m, ng * Gp] and xsum [m, ng].
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace webquant::kernels {

// Geometry of a q8g weight [n, k] in groups of `group` (ng = ceil(k / group); when group does not
// divide k, the last group of each row is ragged and padded like the others, see gemm.h):
// gp = round_up(group, 16). make_q8g_geometry(n, k, k) equals make_q8c_geometry(n, k).
GroupGeometry make_q8g_geometry(size_t n, size_t k, size_t group);
// q: [n, k] signed codes row-major; zero_codes: [n, ng] (nullptr: 128). packed has
// packed_q8g_bytes(geo) bytes.
size_t packed_q8g_bytes(const GroupGeometry& geo);
void pack_q8g(const GroupGeometry& geo, const int8_t* q, const uint8_t* zero_codes,
              uint8_t* packed);
int8_t packed_q8g_get(const GroupGeometry& geo, const uint8_t* packed, size_t row, size_t col);

// Float activations: y[i, j] = sum over g, in group order, of scale[j, g] * sum_{c in g}
// x[i, c] (u - zu) (+ bias[j]). x: [m, k]; work: gemm_f32_workspace(m, geo) floats (SIMD only).
void gemm_q8g_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const uint8_t* zero, const float* bias, float* y,
                       float* work);
void gemm_q8g_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y,
                            float* work);
// int8 activations: acc_g = sum_{c in g} xq (u - zu) in int32 (exact while 127 * 255 * G < 2^31,
// the layer allows G <= 65536); t = sum over g, in group order, of float(acc_g) * scale[j, g]
// (from 0.0f); y[i, j] = t * xscale[i] + bias[j]. The SIMD kernel computes acc_g as
// sum xq u - zu * xsum[g], the same integer, so the results are bit-identical.
void gemm_q8g_s8__ref(size_t m, const GroupGeometry& geo, const int8_t* xq, const float* xscale,
                      const int32_t* xsum, const uint8_t* w, const float* scale,
                      const uint8_t* zero, const float* bias, float* y);
void gemm_q8g_s8__wasmsimd(size_t m, const GroupGeometry& geo, const int8_t* xq,
                           const float* xscale, const int32_t* xsum, const uint8_t* w,
                           const float* scale, const uint8_t* zero, const float* bias, float* y);

// The w8a16 model decode (LinearLayer::forward_model / forward_rows, m < kPrefillRows), SIMD builds
// only, in two steps so one prepared row serves every run of output rows
// (gemm_q8g_x16_wasmsimd.cpp), for every int8 layer (q8g, and q8c as q8g with G = k and zero ==
// nullptr, whose bytes and scale order are the same): x16_prepare_q8g writes x (k floats) into xp
// (x16_q8g_floats(geo) floats), each 32-element block of a group as 16-bit integers with a
// power-of-two scale (the rounding of x16_prepare_q4g); gemm_q8g_x16 multiplies them with the
// codes in int32 and writes y (n floats), |y - x W^T| <= sum_c |w_c| 2^-15 (1 + 2^-15)
// max_block|x| + float32 rounding. A row holding NaN or Inf gives NaN outputs. gemm_q8g_f32 and
// gemm_q8c_f32 keep float32 activations.
size_t x16_q8g_floats(const GroupGeometry& geo);
void x16_prepare_q8g(const GroupGeometry& geo, const float* x, float* xp);
void gemm_q8g_x16__wasmsimd(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y);
// Symmetric codes plus a float offset per row and group, as gemm_q4g_x16_offset (gemm.h).
void gemm_q8g_x16_offset__wasmsimd(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                                   const float* scale, const float* offset, const float* bias,
                                   float* y);

#if !WEBQUANT_SIMD
#define gemm_q8g_f32__wasmsimd gemm_q8g_f32__ref
#define gemm_q8g_s8__wasmsimd gemm_q8g_s8__ref
#endif

}  // namespace webquant::kernels
