// 4-bit codebook weights per group with float activations: W[j, c] = scale[j, g] * table[u[j, c]],
// u a 4-bit index into a 16-entry float table shared by the layer (NF4, power-of-two, k-means;
// webquant/codebook.h), g = c / G.
//
// Layout (internal): rows one after another; row j holds its ng = ceil(k / G) groups, group g holds
// Gp = round_up(G, 16) indices, 2 per byte, element 2t in the low nibble of byte t and 2t + 1 in
// the high nibble (the course's 4-bit packing, per group); padding indices are 0 (a ragged last
// group, when G does not divide k, holds k - (ng - 1) G indices; the activations after them are 0).
//
//   group: | b0 = e1:e0 | b1 = e3:e2 | ... | b7 = e15:e14 | b8 ... (Gp / 2 bytes)
//
// The SIMD kernel decodes 16 indices at a time with four byte-wise table lookups
// (wasm_i8x16_swizzle on the 4 byte planes of the float table) and re-interleaves the bytes into
// four f32x4 vectors: a lookup-table decode with no per-element branch.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/simd.h"

namespace webquant::kernels {

constexpr size_t kLut4Block = 16;  // indices per 8 bytes

struct Lut4gGeometry {
  size_t n = 0, k = 0, group = 0, groups = 0;
  size_t gp = 0;  // round_up(G, 16)
  size_t kpad() const { return groups * gp; }
  size_t group_len(size_t g) const { return k - g * group < group ? k - g * group : group; }
  size_t row_bytes() const { return kpad() / 2; }
};
Lut4gGeometry make_lut4g_geometry(size_t n, size_t k, size_t group);

// idx: [n, k] indices < 16; packed: packed_lut4g_bytes(geo) bytes.
size_t packed_lut4g_bytes(const Lut4gGeometry& geo);
void pack_lut4g(const Lut4gGeometry& geo, const uint8_t* idx, uint8_t* packed);
uint8_t packed_lut4g_get(const Lut4gGeometry& geo, const uint8_t* packed, size_t row, size_t col);
size_t gemm_lut4g_workspace(const Lut4gGeometry& geo);  // floats

// y[i, j] = sum_g scale[j, g] * sum_{c in g} x[i, c] table[u[j, c]] + bias[j].
// x: [m, k]; table: 16 floats; scale: [n, ng]; bias: n floats or nullptr; y: [m, n].
void gemm_lut4g_f32__ref(size_t m, const Lut4gGeometry& geo, const float* x, const uint8_t* w,
                         const float* table, const float* scale, const float* bias, float* y,
                         float* work);
void gemm_lut4g_f32__wasmsimd(size_t m, const Lut4gGeometry& geo, const float* x,
                              const uint8_t* w, const float* table, const float* scale,
                              const float* bias, float* y, float* work);

#if !WEBQUANT_SIMD
#define gemm_lut4g_f32__wasmsimd gemm_lut4g_f32__ref
#endif

}  // namespace webquant::kernels
