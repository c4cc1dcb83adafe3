// Packing of int8 per-group weights into the q8g layout (drawn in gemm_q8g.h).
#include <cstring>

#include "kernels/gemm/gemm_q8g.h"

namespace webquant::kernels {

GroupGeometry make_q8g_geometry(size_t n, size_t k, size_t group) {
  GroupGeometry g;
  g.n = n;
  g.k = k;
  g.group = group;
  g.groups = group ? (k + group - 1) / group : 0;
  g.gp = round_up(group, kQ8Block);
  g.np = round_up(n, kGemmNr);
  return g;
}

size_t packed_q8g_bytes(const GroupGeometry& geo) { return geo.np * geo.kpad(); }

// Byte offset of padded column pc (0 .. kpad) of `row`: panel, block of 16, row in the panel.
static size_t q8g_offset(const GroupGeometry& geo, size_t row, size_t pc) {
  size_t byte;
  unsigned shift;
  block_position(8, pc % kQ8Block, &byte, &shift);
  return (row / kGemmNr) * kGemmNr * geo.kpad() + (pc / kQ8Block) * kGemmNr * kQ8Block +
         (row % kGemmNr) * kQ8Block + byte;
}

void pack_q8g(const GroupGeometry& geo, const int8_t* q, const uint8_t* zero_codes,
              uint8_t* packed) {
  for (size_t r = 0; r < geo.np; ++r) {
    for (size_t g = 0; g < geo.groups; ++g) {
      // Padding rows and columns hold the zero code: they dequantize to exactly 0.
      const uint8_t zero = r < geo.n && zero_codes ? zero_codes[r * geo.groups + g] : kQ8Zero;
      const size_t len = geo.group_len(g);  // < G for a ragged last group
      for (size_t e = 0; e < geo.gp; ++e) {
        const bool real = r < geo.n && e < len;
        const uint8_t u =
            real ? static_cast<uint8_t>(q[r * geo.k + g * geo.group + e] + int(kQ8Zero)) : zero;
        packed[q8g_offset(geo, r, g * geo.gp + e)] = u;
      }
    }
  }
}

int8_t packed_q8g_get(const GroupGeometry& geo, const uint8_t* packed, size_t row, size_t col) {
  const size_t pc = (col / geo.group) * geo.gp + col % geo.group;
  return static_cast<int8_t>(int(packed[q8g_offset(geo, row, pc)]) - int(kQ8Zero));
}

}  // namespace webquant::kernels
