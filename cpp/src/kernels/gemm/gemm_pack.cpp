// Packing of linear-layer weights into the GEMM kernels' layouts (drawn in gemm.h).
#include <cstring>

#include "kernels/gemm/gemm.h"

namespace webquant::kernels {

GroupGeometry make_group_geometry(size_t n, size_t k, size_t group) {
  GroupGeometry g;
  g.n = n;
  g.k = k;
  g.group = group;
  g.groups = group ? (k + group - 1) / group : 0;
  g.gp = round_up(group, kQLowBlock);
  g.np = round_up(n, kGemmNr);
  return g;
}

GroupGeometry make_q8c_geometry(size_t n, size_t k) {
  GroupGeometry g;
  g.n = n;
  g.k = k;
  g.group = k;
  g.groups = 1;
  g.gp = round_up(k, kQ8Block);
  g.np = round_up(n, kGemmNr);
  return g;
}

// Decode: m prepared rows plus their group sums. Prefill: m padded rows, one dequantized panel
// (4 x kpad) and the group sums.
size_t gemm_f32_workspace(size_t m, const GroupGeometry& geo) {
  return m * (geo.kpad() + geo.groups) + kGemmNr * geo.kpad() + geo.groups;
}

size_t packed_q8c_bytes(size_t n, size_t k) { return round_up(n, kGemmNr) * round_up(k, kQ8Block); }

// Byte offset of (row, col) in the q8c layout: panel, then block of 16, then row in panel.
static size_t q8c_offset(size_t k, size_t row, size_t col) {
  const size_t kp = round_up(k, kQ8Block);
  size_t byte;
  unsigned shift;
  block_position(8, col % kQ8Block, &byte, &shift);
  return (row / kGemmNr) * kGemmNr * kp + (col / kQ8Block) * kGemmNr * kQ8Block +
         (row % kGemmNr) * kQ8Block + byte;
}

// Padding rows and columns hold the zero code 128 (weight 0).
void pack_q8c(const int8_t* q, size_t n, size_t k, uint8_t* packed) {
  std::memset(packed, kQ8Zero, packed_q8c_bytes(n, k));
  for (size_t r = 0; r < n; ++r)
    for (size_t c = 0; c < k; ++c)
      packed[q8c_offset(k, r, c)] = static_cast<uint8_t>(q[r * k + c] + int(kQ8Zero));
}

int8_t packed_q8c_get(const uint8_t* packed, size_t k, size_t row, size_t col) {
  return static_cast<int8_t>(int(packed[q8c_offset(k, row, col)]) - int(kQ8Zero));
}

// Bytes of one block of 32 codes for one row.
static size_t block_bytes(int bits) { return bits == 4 ? 16 : 8; }

size_t packed_qg_bytes(const GroupGeometry& geo, int bits) {
  return geo.np * geo.groups * geo.blocks_per_group() * block_bytes(bits);
}

// Offset of the block holding padded column pc (0 .. kpad) of `row`.
static size_t qg_block_offset(const GroupGeometry& geo, int bits, size_t row, size_t pc) {
  const size_t bb = block_bytes(bits);
  const size_t blocks_per_row = geo.groups * geo.blocks_per_group();
  return ((row / kGemmNr) * blocks_per_row + pc / kQLowBlock) * kGemmNr * bb + (row % kGemmNr) * bb;
}

void pack_qg(const GroupGeometry& geo, int bits, const uint8_t* codes, const uint8_t* zero_codes,
             uint8_t* packed) {
  std::memset(packed, 0, packed_qg_bytes(geo, bits));
  const unsigned mask = (1u << bits) - 1;
  for (size_t r = 0; r < geo.np; ++r) {
    for (size_t g = 0; g < geo.groups; ++g) {
      // Padding rows and padding columns hold the zero code: they dequantize to 0.
      const unsigned zero = r < geo.n ? zero_codes[r * geo.groups + g] & mask : 0;
      const size_t len = geo.group_len(g);  // < G for a ragged last group
      for (size_t e = 0; e < geo.gp; ++e) {
        const bool real = r < geo.n && e < len;
        const unsigned u = real ? (codes[r * geo.k + g * geo.group + e] & mask) : zero;
        const size_t pc = g * geo.gp + e;
        size_t byte;
        unsigned shift;
        block_position(bits, pc % kQLowBlock, &byte, &shift);
        packed[qg_block_offset(geo, bits, r, pc) + byte] |= static_cast<uint8_t>(u << shift);
      }
    }
  }
}

uint8_t packed_qg_get(const GroupGeometry& geo, int bits, const uint8_t* packed, size_t row,
                      size_t col) {
  const size_t pc = (col / geo.group) * geo.gp + col % geo.group;
  size_t byte;
  unsigned shift;
  block_position(bits, pc % kQLowBlock, &byte, &shift);
  return static_cast<uint8_t>((packed[qg_block_offset(geo, bits, row, pc) + byte] >> shift) &
                              ((1u << bits) - 1));
}

}  // namespace webquant::kernels
