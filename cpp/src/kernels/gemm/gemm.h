// GEMM kernels of the linear layers: y[m, n] = x[m, k] W^T (+ bias), W is [n, k] (out x in).
// m = 1 is the decode GEMV and is the case the SIMD kernels are tuned for. For m > 1 (prefill) the
// f32 and int8-activation kernels take two activation rows per pass over a panel, and the
// float-activation kernels on quantized weights dequantize each panel once (m >= 3) and share it.
//
// Every kernel has a scalar reference (`__ref`, file *_ref.cpp, never vectorized, written for
// clarity) and a WASM SIMD128 version (`__wasmsimd`) over the SAME packed layouts, so the kernel
// table can compare them on identical input. Integer-activation kernels (`_s8`) and the
// activation quantizer are bit-identical to their reference; float-activation kernels reorder sums
// (tolerance in table.cpp).
//
// Packed weight layouts (internal; the public format is the course's, see webquant/pack.h):
//  * Output channels go in panels of kGemmNr = 4 rows. n is padded to np = round_up(n, 4) with
//    rows that dequantize to 0; they are computed but never written to y.
//  * Within a panel the 4 rows are interleaved block by block, so one pass streams one buffer:
//      panel p: [block 0: row 4p | row 4p+1 | row 4p+2 | row 4p+3][block 1: ...] ...
//  * Codes are unsigned: u in [0, 2^bits) and the weight is scale * (u - zu), zu the zero code
//    (int8: u = q + 128, zu = 128).
//  * Inside one row's block the elements are permuted so that one AND (or one shift) per vector
//    turns the block into vectors of CONSECUTIVE elements. The block is read as little-endian
//    32-bit words w0..w3 (w0..w1 for 2-bit):
//      int8  (16 elements, 16 bytes): byte t of word i          = element 4t + i
//      4-bit (32 elements, 16 bytes): bits 4n..4n+3 of word i   = element 4n + i
//      2-bit (32 elements,  8 bytes): bits 2f..2f+1 of word i   = element 2f + i   (i = 0, 1)
//    so `w & (mask << shift)` over the words holds 4 (2 for 2-bit) consecutive codes, each times
//    2^shift. The float kernels convert that directly and multiply by activations pre-scaled by
//    2^-shift (exact: powers of two); the top field uses `w >> shift` (its sign bit).
//  * int8 per channel (q8c): blocks of 16 along k; k is padded to kp = round_up(k, 16).
//  * 4-bit / 2-bit per group (q4g, q2g): groups of G consecutive elements along k, ng =
//    ceil(k / G) groups; each group is padded to Gp = round_up(G, 32) and cut in blocks of 32.
//    Padding holds the zero code, so it dequantizes to exactly 0. When G does not divide k the
//    last group of every row is ragged: it holds k - (ng - 1) G real codes, then padding.
//    (Every grouped layout of the kernels, q8g / q3g / lut4g too, treats a ragged group so.)
//    Group parameters, panel by panel: scales [np/4][ng][4] floats, zero codes [np/4][ng][4] bytes.
//  * Integer activations (quantize_rows_f32_s8) come in the same padded geometry: each row holds
//    ng * Gp values, group g at g * Gp, padding 0 (a ragged last group: zeros after its codes).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd.h"

namespace webquant::kernels {

constexpr size_t kGemmNr = 4;      // output rows per panel
constexpr size_t kQ8Block = 16;    // int8 block along k
constexpr size_t kQLowBlock = 32;  // 4-bit / 2-bit block along k
constexpr uint8_t kQ8Zero = 128;   // zero code of the int8 layouts

inline size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

// Length of group g of a row of k elements in groups of G (G for every group but a ragged last
// one, which holds k - g G).
inline size_t group_length(size_t k, size_t group, size_t g) {
  return k - g * group < group ? k - g * group : group;
}

// Geometry of a grouped (q4g / q2g) weight; G need not divide k (the last group is then ragged).
// Per-channel int8 (q8c) uses the same struct with group = k and blocks of 16 (make_q8c_geometry).
struct GroupGeometry {
  size_t n = 0;       // output rows
  size_t k = 0;       // input features
  size_t group = 0;   // G
  size_t groups = 0;  // ng = ceil(k / G)
  size_t gp = 0;      // Gp = round_up(G, block)
  size_t np = 0;      // round_up(n, 4)
  size_t kpad() const { return groups * gp; }  // padded row length (activations)
  size_t group_len(size_t g) const { return group_length(k, group, g); }
  size_t blocks_per_group() const { return gp / kQLowBlock; }
  size_t params() const { return np * groups; }  // scales (and zero codes) count
};
GroupGeometry make_group_geometry(size_t n, size_t k, size_t group);

// Byte and bit shift of element e of one row's block (int8: bits = 8, shift 0).
inline void block_position(int bits, size_t e, size_t* byte, unsigned* shift) {
  if (bits == 8) {
    *byte = 4 * (e % 4) + e / 4;
    *shift = 0;
  } else if (bits == 4) {
    *byte = 4 * (e % 4) + (e / 4) / 2;
    *shift = 4 * static_cast<unsigned>((e / 4) % 2);
  } else {
    *byte = 4 * (e % 2) + (e / 2) / 4;
    *shift = 2 * static_cast<unsigned>((e / 2) % 4);
  }
}

// ---- packing (plain code, shared by the layers, the tests and the benchmark) ----
// q8c: q is [n, k] int8 row-major; packed has packed_q8c_bytes(n, k) bytes (u = q + 128).
size_t packed_q8c_bytes(size_t n, size_t k);
void pack_q8c(const int8_t* q, size_t n, size_t k, uint8_t* packed);
int8_t packed_q8c_get(const uint8_t* packed, size_t k, size_t row, size_t col);  // q, not u
// q4g / q2g: codes is [n, k] unsigned codes (< 2^bits) row-major; zero_codes is [n, ng] and fills
// the padding. packed has packed_qg_bytes(geo, bits) bytes.
size_t packed_qg_bytes(const GroupGeometry& geo, int bits);
void pack_qg(const GroupGeometry& geo, int bits, const uint8_t* codes, const uint8_t* zero_codes,
             uint8_t* packed);
uint8_t packed_qg_get(const GroupGeometry& geo, int bits, const uint8_t* packed, size_t row,
                      size_t col);
// Group parameter index of (row, group) in the [np/4][ng][4] order.
inline size_t qg_param_index(const GroupGeometry& geo, size_t row, size_t g) {
  return ((row / kGemmNr) * geo.groups + g) * kGemmNr + row % kGemmNr;
}

// ---- activation quantization (per row = per token, symmetric int8) ----
// For each row i: s = max|x[i, :]| / 127, xq = clamp(round_half_even(x / s), -127, 127), written
// in the padded geometry above (padding 0). A row of zeros gets s = 0 and xq = 0. A row holding
// NaN gets s = NaN (and Inf gives s = Inf), so the layer's output is non-finite, never silently
// wrong. With ng = ceil(k / group) groups (a ragged last group when group does not divide k; its
// slot is zero-padded like every group's): xq: m * ng * group_stride bytes; scale: m floats;
// group_sum: the sum of xq over each group, m * ng int32 (the A8 kernels subtract zero codes
// with it).
void quantize_rows_f32_s8__ref(size_t m, size_t k, size_t group, size_t group_stride,
                               const float* x, int8_t* xq, float* scale, int32_t* group_sum);
void quantize_rows_f32_s8__wasmsimd(size_t m, size_t k, size_t group, size_t group_stride,
                                    const float* x, int8_t* xq, float* scale, int32_t* group_sum);

// ---- float32 weights ----
// w: [n, k] row-major (not packed); x: [m, k]; bias: n floats or nullptr; y: [m, n].
void gemm_f32_f32__ref(size_t m, size_t n, size_t k, const float* x, const float* w,
                       const float* bias, float* y);
void gemm_f32_f32__wasmsimd(size_t m, size_t n, size_t k, const float* x, const float* w,
                            const float* bias, float* y);

// ---- half-precision weights (fp16 / bf16), float activations and accumulators ----
// w: [n, k] row-major IEEE binary16 (f16) or bfloat16 (bf16) bits, not packed; x: [m, k];
// bias: n floats or nullptr; y: [m, n]. Each weight is widened exactly to float32
// (webquant/convert.h's fp16_to_fp32 / bf16_to_fp32) and multiplied in float32. The SIMD kernels
// widen in registers for m < 3 (decode) and, for m >= 3 (prefill), widen each panel of 4 rows once
// into `work` (gemm_half_workspace(m, k) floats) and share it between all rows. The references
// ignore `work`.
size_t gemm_half_workspace(size_t m, size_t k);
void gemm_f16_f32__ref(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                       const float* bias, float* y, float* work);
void gemm_f16_f32__wasmsimd(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                            const float* bias, float* y, float* work);
void gemm_bf16_f32__ref(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                        const float* bias, float* y, float* work);
void gemm_bf16_f32__wasmsimd(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                             const float* bias, float* y, float* work);

// ---- float activations, quantized weights ----
// x: [m, k] floats (plain rows); bias: n floats or nullptr; y: [m, n]. `work` is scratch of
// gemm_f32_workspace(m, geo) floats: the SIMD kernels write the activations there in the padded,
// pre-scaled form their layout needs, plus per-group sums of x (the zero code is applied once per
// group: sum x (u - zu) = sum x u - zu sum x). With m >= 3 rows (prefill) they instead dequantize
// one panel at a time into it and share it between all rows. The references do not use it.
size_t gemm_f32_workspace(size_t m, const GroupGeometry& geo);
// int8 per channel: y[i, j] = scale[j] * sum_c x[i, c] q[j, c] + bias[j]. geo: make_q8c_geometry;
// w: pack_q8c; scale: np floats.
GroupGeometry make_q8c_geometry(size_t n, size_t k);
void gemm_q8c_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const float* bias, float* y, float* work);
void gemm_q8c_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const float* bias, float* y, float* work);
// 4-bit / 2-bit per group: y[i, j] = sum_g scale[j, g] * sum_{c in g} x[i, c] (u[j, c] - zu[j, g])
// + bias[j]. w: pack_qg; scale, zero: qg_param_index order; zero == nullptr means every zero code
// is the symmetric 2^(bits-1) (the kernels then skip loading them).
void gemm_q4g_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const uint8_t* zero, const float* bias, float* y,
                       float* work);
void gemm_q4g_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y,
                            float* work);
// Rows of x from which the float-activation kernels switch from the decode path to the
// dequantized-panel (prefill) path.
constexpr size_t kPrefillRows = 3;
// The w4a16 model decode (LinearLayer::forward_model / forward_rows, m < kPrefillRows), SIMD
// builds only, in two steps so one prepared row serves every run of output rows
// (gemm_q4g_x16_wasmsimd.cpp): x16_prepare_q4g writes x (k floats) into xp (x16_floats(geo)
// floats) as 16-bit integers with a power-of-two scale per 32-element block, each element within
// 2^-15 of its block's largest |x|; gemm_q4g_x16 multiplies them with the q4g codes in int32 and
// writes y (n floats), |y - x W^T| <= sum_c |w_c| 2^-15 (1 + 2^-15) max_block|x| + float32
// rounding. A row holding NaN or Inf gives NaN outputs. gemm_q4g_f32 keeps float32 activations.
size_t x16_floats(const GroupGeometry& geo);
void x16_prepare_q4g(const GroupGeometry& geo, const float* x, float* xp);
void gemm_q4g_x16__wasmsimd(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y);
// The same product with symmetric codes plus a float offset per row and group (the GGUF
// float-minimum layers, quant/linear_gguf_affine.h): y_j += sum_g offset[j, g] * (sum over group g
// of the rounded x), offset row-major [n, groups]. Each offset term carries the rounding of x too,
// so the bound above holds with w the layer's weights (scale * (u - 8) + offset).
void gemm_q4g_x16_offset__wasmsimd(const GroupGeometry& geo, const float* xp, const uint8_t* w,
                                   const float* scale, const float* offset, const float* bias,
                                   float* y);
void gemm_q2g_f32__ref(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const uint8_t* zero, const float* bias, float* y,
                       float* work);
void gemm_q2g_f32__wasmsimd(size_t m, const GroupGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const uint8_t* zero, const float* bias, float* y,
                            float* work);

// ---- int8 activations, quantized weights ----
// xq, xscale, xsum: quantize_rows_f32_s8 with the weight's group and padded group length. The
// references compute acc = sum xq (u - zu) directly; the SIMD kernels compute sum xq u - zu * xsum,
// the same integer. Both then evaluate the float part in the same order, so results are identical.
// int8 per channel: y[i, j] = float(acc) * scale[j] * xscale[i] + bias[j] (k <= 131072 keeps the
// int32 exact). xq: [m, kp]; xsum: m.
void gemm_q8c_s8__ref(size_t m, const GroupGeometry& geo, const int8_t* xq, const float* xscale,
                      const int32_t* xsum, const uint8_t* w, const float* scale, const float* bias,
                      float* y);
void gemm_q8c_s8__wasmsimd(size_t m, const GroupGeometry& geo, const int8_t* xq,
                           const float* xscale, const int32_t* xsum, const uint8_t* w,
                           const float* scale, const float* bias, float* y);
// 4-bit per group: t = sum over g, in group order, of float(acc_g) * scale[j, g] (from 0.0f);
// y[i, j] = t * xscale[i] + bias[j]. xq: [m, kpad]; xsum: [m, ng]; zero as for q4g_f32.
void gemm_q4g_s8__ref(size_t m, const GroupGeometry& geo, const int8_t* xq, const float* xscale,
                      const int32_t* xsum, const uint8_t* w, const float* scale,
                      const uint8_t* zero, const float* bias, float* y);
void gemm_q4g_s8__wasmsimd(size_t m, const GroupGeometry& geo, const int8_t* xq,
                           const float* xscale, const int32_t* xsum, const uint8_t* w,
                           const float* scale, const uint8_t* zero, const float* bias, float* y);

#if !WEBQUANT_SIMD
// Baseline build: no SIMD kernels are compiled; every __wasmsimd name means the reference.
#define quantize_rows_f32_s8__wasmsimd quantize_rows_f32_s8__ref
#define gemm_f32_f32__wasmsimd gemm_f32_f32__ref
#define gemm_f16_f32__wasmsimd gemm_f16_f32__ref
#define gemm_bf16_f32__wasmsimd gemm_bf16_f32__ref
#define gemm_q8c_f32__wasmsimd gemm_q8c_f32__ref
#define gemm_q8c_s8__wasmsimd gemm_q8c_s8__ref
#define gemm_q4g_f32__wasmsimd gemm_q4g_f32__ref
#define gemm_q2g_f32__wasmsimd gemm_q2g_f32__ref
#define gemm_q4g_s8__wasmsimd gemm_q4g_s8__ref
#endif

}  // namespace webquant::kernels
