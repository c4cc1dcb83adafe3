// Packing of the 4-bit codebook layout (gemm_lut4g.h).
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_lut4g.h"

namespace webquant::kernels {

Lut4gGeometry make_lut4g_geometry(size_t n, size_t k, size_t group) {
  Lut4gGeometry g;
  g.n = n;
  g.k = k;
  g.group = group;
  g.groups = (k + group - 1) / group;
  g.gp = round_up(group, kLut4Block);
  return g;
}

size_t packed_lut4g_bytes(const Lut4gGeometry& geo) { return geo.n * geo.row_bytes(); }
size_t gemm_lut4g_workspace(const Lut4gGeometry& geo) { return geo.kpad(); }

static size_t position(const Lut4gGeometry& geo, size_t col) {
  return col / geo.group * geo.gp + col % geo.group;
}

void pack_lut4g(const Lut4gGeometry& geo, const uint8_t* idx, uint8_t* packed) {
  std::memset(packed, 0, packed_lut4g_bytes(geo));
  for (size_t r = 0; r < geo.n; ++r) {
    uint8_t* row = packed + r * geo.row_bytes();
    for (size_t c = 0; c < geo.k; ++c) {
      const size_t p = position(geo, c);
      row[p / 2] |= static_cast<uint8_t>((idx[r * geo.k + c] & 15u) << (4 * (p % 2)));
    }
  }
}

uint8_t packed_lut4g_get(const Lut4gGeometry& geo, const uint8_t* packed, size_t row, size_t col) {
  const size_t p = position(geo, col);
  return (packed[row * geo.row_bytes() + p / 2] >> (4 * (p % 2))) & 15u;
}

}  // namespace webquant::kernels
