// Packing of the 3-bit grouped layout (gemm_q3g.h).
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_q3g.h"

namespace webquant::kernels {
namespace {

// Byte offset of the block holding padded position p of row `row`, and p's index in the block.
size_t block_offset(const Q3gGeometry& geo, size_t row, size_t col, size_t* e) {
  const size_t g = col / geo.group, p = g * geo.gp + col % geo.group;
  *e = p % kQ3Block;
  return row * geo.row_bytes() + p / kQ3Block * kQ3BlockBytes;
}

uint32_t load_word(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void store_word(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

}  // namespace

Q3gGeometry make_q3g_geometry(size_t n, size_t k, size_t group) {
  Q3gGeometry g;
  g.n = n;
  g.k = k;
  g.group = group;
  g.groups = (k + group - 1) / group;
  g.gp = round_up(group, kQ3Block);
  return g;
}

size_t packed_q3g_bytes(const Q3gGeometry& geo) { return geo.n * geo.row_bytes(); }

size_t gemm_q3g_workspace(const Q3gGeometry& geo) { return 2 * geo.kpad() + geo.groups; }

void pack_q3g(const Q3gGeometry& geo, const uint8_t* codes, uint8_t* packed) {
  std::memset(packed, 0, packed_q3g_bytes(geo));
  for (size_t r = 0; r < geo.n; ++r) {
    for (size_t c = 0; c < geo.k; ++c) {
      size_t e;
      uint8_t* b = packed + block_offset(geo, r, c, &e);
      const uint32_t u = codes[r * geo.k + c] & 7u;
      uint8_t* lo = b + (e < 16 ? 0 : 4);
      store_word(lo, load_word(lo) | (u & 3u) << (2 * (e % 16)));
      store_word(b + 8, load_word(b + 8) | (u >> 2) << e);
    }
  }
}

uint8_t packed_q3g_get(const Q3gGeometry& geo, const uint8_t* packed, size_t row, size_t col) {
  size_t e;
  const uint8_t* b = packed + block_offset(geo, row, col, &e);
  const uint32_t lo = (load_word(b + (e < 16 ? 0 : 4)) >> (2 * (e % 16))) & 3u;
  const uint32_t hi = (load_word(b + 8) >> e) & 1u;
  return uint8_t(lo | hi << 2);
}

}  // namespace webquant::kernels
