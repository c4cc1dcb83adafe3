// Public pack/unpack: argument checks around the pack_u*/unpack_u* kernels (layout in
// webquant/pack.h: one little-endian bit stream, value i at bits [i*b, i*b + b)).
#include "webquant/pack.h"

#include <cstring>
#include <string>

#include "kernels/kernels.h"

namespace webquant {
namespace {

bool valid_bits(int bits) { return bits == 2 || bits == 3 || bits == 4 || bits == 8; }

Status bad_bits(int bits) {
  return Status::Error(StatusCode::kInvalidArgument,
                       "bits must be 2, 3, 4 or 8 for packing (got " + std::to_string(bits) + ")");
}

}  // namespace

size_t packed_size(size_t n, int bits) {
  // Written without n * bits so that no n can overflow.
  switch (bits) {
    case 2: return n / 4 + (n % 4 != 0);
    case 3: return 3 * (n / 8 + (n % 8 != 0));  // 8 codes = 24 bits = 3 bytes
    case 4: return n / 2 + (n % 2 != 0);
    case 8: return n;
    default: return 0;
  }
}

Status pack_codes(const uint8_t* codes, size_t n, int bits, uint8_t* out) {
  if (!valid_bits(bits)) return bad_bits(bits);
  if (n == 0) return Status::Ok();
  if (!codes || !out)
    return Status::Error(StatusCode::kInvalidArgument, "pack_codes: null codes or output pointer");
  if (bits < 8) {
    const unsigned limit = 1u << bits;
    for (size_t i = 0; i < n; ++i) {
      if (codes[i] >= limit)
        return Status::Error(StatusCode::kInvalidArgument,
                             "code at index " + std::to_string(i) + " is " +
                                 std::to_string(codes[i]) + ", which does not fit in " +
                                 std::to_string(bits) + " bits (max " + std::to_string(limit - 1) +
                                 ")");
    }
  }
  switch (bits) {
    case 2: kernels::WQ_BEST(pack_u2)(codes, n, out); break;
    case 3: kernels::WQ_BEST(pack_u3)(codes, n, out); break;
    case 4: kernels::WQ_BEST(pack_u4)(codes, n, out); break;
    default: std::memcpy(out, codes, n); break;
  }
  return Status::Ok();
}

Status unpack_codes(const uint8_t* packed, size_t packed_len, size_t n, int bits, uint8_t* out) {
  if (!valid_bits(bits)) return bad_bits(bits);
  const size_t want = packed_size(n, bits);
  if (packed_len != want)
    return Status::Error(StatusCode::kShapeMismatch,
                         std::to_string(n) + " codes of " + std::to_string(bits) +
                             " bits pack into " + std::to_string(want) + " bytes, but " +
                             std::to_string(packed_len) + " bytes were given");
  if (n == 0) return Status::Ok();
  if (!packed || !out)
    return Status::Error(StatusCode::kInvalidArgument,
                         "unpack_codes: null packed or output pointer");
  switch (bits) {
    case 2: kernels::WQ_BEST(unpack_u2)(packed, n, out); break;
    case 3: kernels::WQ_BEST(unpack_u3)(packed, n, out); break;
    case 4: kernels::WQ_BEST(unpack_u4)(packed, n, out); break;
    default: std::memcpy(out, packed, n); break;
  }
  return Status::Ok();
}

}  // namespace webquant
