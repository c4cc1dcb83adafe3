// 3-bit weights per group with float activations (W3A16): y[m, n] = x[m, k] W^T (+ bias).
//
// Layout (internal; the public format packs codes lsb-first, webquant/pack.h). Rows are stored one
// after another (no panels). Row j holds its ng = ceil(k / G) groups; group g holds
// Gp = round_up(G, 32) codes cut in blocks of 32, the padding codes 0 (a ragged last group, when G
// does not divide k, holds k - (ng - 1) G codes; the kernels zero the activations after them). A
// block is 12 bytes (3 bits per code), read as three little-endian 32-bit words, the low two bits
// and the high bit of each code in separate planes (as llama.cpp's Q3_K keeps its high bits apart):
//
//   byte  0        4        8        12
//         | word 0 | word 1 | word 2 |
//   word 0: bits 2e..2e+1 = low bits of element e       (e = 0..15)
//   word 1: bits 2e..2e+1 = low bits of element 16 + e  (e = 0..15)
//   word 2: bit e         = high bit of element e       (e = 0..31)
//
// so `word & mask` over 4 lanes holds 4 consecutive fields, each times a power of two that the
// SIMD kernel folds into pre-scaled activations (exact). Codes are unsigned, u in [0, 8), and the
// weight is scale * (u - zero): scale and zero are floats per (row, group), [n, ng] row-major.
// zero is an integer code for round-to-nearest layers and any float for HQQ's float zero points.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd.h"

namespace webquant::kernels {

constexpr size_t kQ3Block = 32;       // codes per block
constexpr size_t kQ3BlockBytes = 12;  // bytes per block

struct Q3gGeometry {
  size_t n = 0;       // output rows
  size_t k = 0;       // input features
  size_t group = 0;   // G (need not divide k: the last group is then ragged)
  size_t groups = 0;  // ng = ceil(k / G)
  size_t gp = 0;      // Gp = round_up(G, 32)
  size_t kpad() const { return groups * gp; }
  size_t group_len(size_t g) const { return k - g * group < group ? k - g * group : group; }
  size_t row_bytes() const { return kpad() / kQ3Block * kQ3BlockBytes; }
};
Q3gGeometry make_q3g_geometry(size_t n, size_t k, size_t group);

// codes: [n, k] unsigned 3-bit codes; packed: packed_q3g_bytes(geo) bytes.
size_t packed_q3g_bytes(const Q3gGeometry& geo);
void pack_q3g(const Q3gGeometry& geo, const uint8_t* codes, uint8_t* packed);
uint8_t packed_q3g_get(const Q3gGeometry& geo, const uint8_t* packed, size_t row, size_t col);

// Scratch floats of the kernels (the SIMD one prepares one activation row at a time in it).
size_t gemm_q3g_workspace(const Q3gGeometry& geo);

// y[i, j] = sum_g scale[j, g] * sum_{c in g} x[i, c] (u[j, c] - zero[j, g]) + bias[j].
// x: [m, k]; scale, zero: [n, ng]; bias: n floats or nullptr; y: [m, n]; work: see above.
void gemm_q3g_f32__ref(size_t m, const Q3gGeometry& geo, const float* x, const uint8_t* w,
                       const float* scale, const float* zero, const float* bias, float* y,
                       float* work);
void gemm_q3g_f32__wasmsimd(size_t m, const Q3gGeometry& geo, const float* x, const uint8_t* w,
                            const float* scale, const float* zero, const float* bias, float* y,
                            float* work);

#if !WEBQUANT_SIMD
#define gemm_q3g_f32__wasmsimd gemm_q3g_f32__ref
#endif

}  // namespace webquant::kernels
