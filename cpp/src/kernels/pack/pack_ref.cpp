// Reference packing: one little-endian bit stream, value i at bits [i*b, i*b + b).
#include "kernels/kernels.h"
#include "webquant/pack.h"

namespace webquant::kernels {
namespace {

void pack_bits(const uint8_t* codes, size_t n, int bits, uint8_t* packed) {
  const size_t m = packed_size(n, bits);
  for (size_t k = 0; k < m; ++k) packed[k] = 0;
  const unsigned mask = (1u << bits) - 1;
  for (size_t i = 0; i < n; ++i) {
    const size_t bit = i * bits;
    const unsigned v = (codes[i] & mask) << (bit % 8);  // may straddle two bytes (3-bit)
    packed[bit / 8] |= static_cast<uint8_t>(v);
    if (v >> 8) packed[bit / 8 + 1] |= static_cast<uint8_t>(v >> 8);
  }
}

void unpack_bits(const uint8_t* packed, size_t n, int bits, uint8_t* codes) {
  const unsigned mask = (1u << bits) - 1;
  const size_t m = packed_size(n, bits);
  for (size_t i = 0; i < n; ++i) {
    const size_t bit = i * bits;
    unsigned v = packed[bit / 8];
    if (bit / 8 + 1 < m) v |= unsigned(packed[bit / 8 + 1]) << 8;
    codes[i] = static_cast<uint8_t>((v >> (bit % 8)) & mask);
  }
}

}  // namespace

void pack_u2__ref(const uint8_t* c, size_t n, uint8_t* p) { pack_bits(c, n, 2, p); }
void pack_u3__ref(const uint8_t* c, size_t n, uint8_t* p) { pack_bits(c, n, 3, p); }
void pack_u4__ref(const uint8_t* c, size_t n, uint8_t* p) { pack_bits(c, n, 4, p); }
void unpack_u2__ref(const uint8_t* p, size_t n, uint8_t* c) { unpack_bits(p, n, 2, c); }
void unpack_u3__ref(const uint8_t* p, size_t n, uint8_t* c) { unpack_bits(p, n, 3, c); }
void unpack_u4__ref(const uint8_t* p, size_t n, uint8_t* c) { unpack_bits(p, n, 4, c); }

}  // namespace webquant::kernels
