// Packing of low-bit unsigned codes into bytes (course convention, shared design doc).
// The packed bytes form one little-endian bit stream: value i occupies bits [i*b, i*b + b).
// So for 4-bit, value 2k is the low nibble of byte k; for 2-bit, byte k holds values 4k..4k+3 at
// bit offsets 0, 2, 4, 6; for 3-bit, 8 values fill 3 bytes. 8-bit packing is the identity.
// A length that is not a multiple of the values per unit is padded with zero codes; the caller
// keeps the true length and passes it to unpack.
#pragma once

#include <cstddef>
#include <cstdint>

#include "webquant/status.h"

namespace webquant {

// Bytes needed for n codes of `bits` bits, rounded up to whole packing units
// (1 byte for 2/4/8 bits, 3 bytes for 3 bits).
size_t packed_size(size_t n, int bits);

// codes: n unsigned codes, each < 2^bits (kInvalidArgument otherwise, naming the index).
// out: packed_size(n, bits) bytes.
Status pack_codes(const uint8_t* codes, size_t n, int bits, uint8_t* out);

// packed: packed_len bytes; must equal packed_size(n, bits) (kShapeMismatch otherwise).
// out: n codes.
Status unpack_codes(const uint8_t* packed, size_t packed_len, size_t n, int bits, uint8_t* out);

}  // namespace webquant
