// SIMD packing into the reference bit stream (value i at bits [i*b, i*b + b)). Packing merges
// neighbours pairwise with shifts at growing lane widths (8 -> 16 -> 32 -> 64 bits); unpacking
// runs the same ladder backwards. Each function ends with a scalar tail that starts on a packing
// unit boundary (1 byte for 2/4 bits, 3 bytes for 3 bits).
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include "kernels/kernels.h"

namespace webquant::kernels {
namespace {

size_t tail_bytes(size_t n, int bits) {
  return bits == 3 ? 3 * ((n + 7) / 8) : (n * bits + 7) / 8;
}

void pack_tail(const uint8_t* codes, size_t n, int bits, uint8_t* packed) {
  const size_t m = tail_bytes(n, bits);
  for (size_t k = 0; k < m; ++k) packed[k] = 0;
  const unsigned mask = (1u << bits) - 1;
  for (size_t i = 0; i < n; ++i) {
    const size_t bit = i * bits;
    const unsigned v = (codes[i] & mask) << (bit % 8);
    packed[bit / 8] |= static_cast<uint8_t>(v);
    if (v >> 8) packed[bit / 8 + 1] |= static_cast<uint8_t>(v >> 8);
  }
}

void unpack_tail(const uint8_t* packed, size_t n, int bits, uint8_t* codes) {
  const unsigned mask = (1u << bits) - 1;
  const size_t m = tail_bytes(n, bits);
  for (size_t i = 0; i < n; ++i) {
    const size_t bit = i * bits;
    unsigned v = packed[bit / 8];
    if (bit / 8 + 1 < m) v |= unsigned(packed[bit / 8 + 1]) << 8;
    codes[i] = static_cast<uint8_t>((v >> (bit % 8)) & mask);
  }
}

// 16 bytes of 3-bit codes (two groups of 8, one per 64-bit lane) -> 24-bit group in bytes 0..2
// of each 64-bit lane; bytes 3..7 hold leftovers.
inline v128_t pack3_lanes(v128_t v) {
  v = wasm_v128_and(v, wasm_i8x16_splat(0x07));
  v = wasm_v128_and(wasm_v128_or(v, wasm_u16x8_shr(v, 5)), wasm_i16x8_splat(0x003F));
  v = wasm_v128_and(wasm_v128_or(v, wasm_u32x4_shr(v, 10)), wasm_i32x4_splat(0x0FFF));
  return wasm_v128_or(v, wasm_u64x2_shr(v, 20));
}

// Bytes O..O+2 and O+3..O+5 of the 32-byte concatenation lo:hi, as the low 3 bytes of the two
// 64-bit lanes (the other bytes are cleared by the caller's first mask).
template <int O>
inline v128_t pick_two_groups(v128_t lo, v128_t hi) {
  return wasm_i8x16_shuffle(lo, hi, O, O + 1, O + 2, O, O, O, O, O, O + 3, O + 4, O + 5, O, O, O,
                            O, O);
}

// Inverse of pack3_lanes: a 24-bit group in the low 3 bytes of each 64-bit lane -> 16 codes.
inline v128_t unpack3_lanes(v128_t v) {
  v = wasm_v128_and(v, wasm_i64x2_splat(0xFFFFFF));
  v = wasm_v128_and(wasm_v128_or(v, wasm_i64x2_shl(v, 20)), wasm_i64x2_splat(0x00000FFF00000FFFll));
  v = wasm_v128_and(wasm_v128_or(v, wasm_i32x4_shl(v, 10)), wasm_i32x4_splat(0x003F003F));
  return wasm_v128_and(wasm_v128_or(v, wasm_i16x8_shl(v, 5)), wasm_i8x16_splat(0x07));
}

}  // namespace

// 64 codes -> 16 bytes. In each 32-bit lane, codes c0..c3 sit at bits 0, 8, 16, 24;
// v | v >> 6 brings c1 next to c0 (and c3 next to c2), then t | t >> 12 brings c2c3 next to c0c1.
void pack_u2__wasmsimd(const uint8_t* codes, size_t n, uint8_t* packed) {
  const v128_t mask = wasm_i8x16_splat(0x03);
  const v128_t low = wasm_i32x4_splat(0xFF);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    v128_t u[4];
    for (int k = 0; k < 4; ++k) {
      v128_t v = wasm_v128_and(wasm_v128_load(codes + i + 16 * k), mask);
      v = wasm_v128_or(v, wasm_u32x4_shr(v, 6));
      v = wasm_v128_or(v, wasm_u32x4_shr(v, 12));
      u[k] = wasm_v128_and(v, low);
    }
    // Lanes are <= 255, so both saturating narrows are exact.
    wasm_v128_store(packed + i / 4, wasm_u8x16_narrow_i16x8(wasm_u16x8_narrow_i32x4(u[0], u[1]),
                                                            wasm_u16x8_narrow_i32x4(u[2], u[3])));
  }
  pack_tail(codes + i, n - i, 2, packed + i / 4);
}

// 16 bytes -> 64 codes: code 4k + j is bits 2j..2j+1 of byte k.
void unpack_u2__wasmsimd(const uint8_t* packed, size_t n, uint8_t* codes) {
  const v128_t mask = wasm_i8x16_splat(0x03);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const v128_t v = wasm_v128_load(packed + i / 4);
    const v128_t a0 = wasm_v128_and(v, mask);
    const v128_t a1 = wasm_v128_and(wasm_u16x8_shr(v, 2), mask);
    const v128_t a2 = wasm_v128_and(wasm_u16x8_shr(v, 4), mask);
    const v128_t a3 = wasm_v128_and(wasm_u16x8_shr(v, 6), mask);
    const v128_t lo01 = wasm_i8x16_shuffle(a0, a1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const v128_t hi01 = wasm_i8x16_shuffle(a0, a1, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const v128_t lo23 = wasm_i8x16_shuffle(a2, a3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const v128_t hi23 = wasm_i8x16_shuffle(a2, a3, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    wasm_v128_store(codes + i, wasm_i16x8_shuffle(lo01, lo23, 0, 8, 1, 9, 2, 10, 3, 11));
    wasm_v128_store(codes + i + 16, wasm_i16x8_shuffle(lo01, lo23, 4, 12, 5, 13, 6, 14, 7, 15));
    wasm_v128_store(codes + i + 32, wasm_i16x8_shuffle(hi01, hi23, 0, 8, 1, 9, 2, 10, 3, 11));
    wasm_v128_store(codes + i + 48, wasm_i16x8_shuffle(hi01, hi23, 4, 12, 5, 13, 6, 14, 7, 15));
  }
  unpack_tail(packed + i / 4, n - i, 2, codes + i);
}

// 128 codes -> 48 bytes: 8 vectors give 6 bytes each (two 3-byte groups), gathered by shuffles.
void pack_u3__wasmsimd(const uint8_t* codes, size_t n, uint8_t* packed) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    v128_t g[4];  // 12 packed bytes each (bytes 12..15 unused)
    for (int k = 0; k < 4; ++k) {
      const v128_t a = pack3_lanes(wasm_v128_load(codes + i + 32 * k));
      const v128_t b = pack3_lanes(wasm_v128_load(codes + i + 32 * k + 16));
      g[k] = wasm_i8x16_shuffle(a, b, 0, 1, 2, 8, 9, 10, 16, 17, 18, 24, 25, 26, 0, 0, 0, 0);
    }
    uint8_t* out = packed + i / 8 * 3;
    wasm_v128_store(out, wasm_i8x16_shuffle(g[0], g[1], 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 16,
                                            17, 18, 19));
    wasm_v128_store(out + 16, wasm_i8x16_shuffle(g[1], g[2], 4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18,
                                                 19, 20, 21, 22, 23));
    wasm_v128_store(out + 32, wasm_i8x16_shuffle(g[2], g[3], 8, 9, 10, 11, 16, 17, 18, 19, 20, 21,
                                                 22, 23, 24, 25, 26, 27));
  }
  pack_tail(codes + i, n - i, 3, packed + i / 8 * 3);
}

// 48 bytes -> 128 codes: eight 6-byte pieces (at offsets 0, 6, ..., 42) spread into 16 codes each.
void unpack_u3__wasmsimd(const uint8_t* packed, size_t n, uint8_t* codes) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const uint8_t* in = packed + i / 8 * 3;
    const v128_t b0 = wasm_v128_load(in);
    const v128_t b1 = wasm_v128_load(in + 16);
    const v128_t b2 = wasm_v128_load(in + 32);
    uint8_t* out = codes + i;
    wasm_v128_store(out, unpack3_lanes(pick_two_groups<0>(b0, b1)));
    wasm_v128_store(out + 16, unpack3_lanes(pick_two_groups<6>(b0, b1)));
    wasm_v128_store(out + 32, unpack3_lanes(pick_two_groups<12>(b0, b1)));
    wasm_v128_store(out + 48, unpack3_lanes(pick_two_groups<2>(b1, b2)));
    wasm_v128_store(out + 64, unpack3_lanes(pick_two_groups<8>(b1, b2)));
    wasm_v128_store(out + 80, unpack3_lanes(pick_two_groups<14>(b1, b2)));
    wasm_v128_store(out + 96, unpack3_lanes(pick_two_groups<4>(b2, b2)));
    wasm_v128_store(out + 112, unpack3_lanes(pick_two_groups<10>(b2, b2)));
  }
  unpack_tail(packed + i / 8 * 3, n - i, 3, codes + i);
}

// 32 codes -> 16 bytes: in each 16-bit lane c0 | c1 << 8 becomes c0 | c1 << 4 in the low byte.
void pack_u4__wasmsimd(const uint8_t* codes, size_t n, uint8_t* packed) {
  const v128_t mask = wasm_i8x16_splat(0x0F);
  const v128_t low = wasm_i16x8_splat(0xFF);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    v128_t a = wasm_v128_and(wasm_v128_load(codes + i), mask);
    v128_t b = wasm_v128_and(wasm_v128_load(codes + i + 16), mask);
    a = wasm_v128_and(wasm_v128_or(a, wasm_u16x8_shr(a, 4)), low);
    b = wasm_v128_and(wasm_v128_or(b, wasm_u16x8_shr(b, 4)), low);
    wasm_v128_store(packed + i / 2, wasm_u8x16_narrow_i16x8(a, b));
  }
  pack_tail(codes + i, n - i, 4, packed + i / 2);
}

// 16 bytes -> 32 codes: low nibbles are the even codes, high nibbles the odd ones.
void unpack_u4__wasmsimd(const uint8_t* packed, size_t n, uint8_t* codes) {
  const v128_t mask = wasm_i8x16_splat(0x0F);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const v128_t v = wasm_v128_load(packed + i / 2);
    const v128_t lo = wasm_v128_and(v, mask);
    const v128_t hi = wasm_v128_and(wasm_u16x8_shr(v, 4), mask);
    wasm_v128_store(codes + i, wasm_i8x16_shuffle(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23));
    wasm_v128_store(codes + i + 16, wasm_i8x16_shuffle(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31));
  }
  unpack_tail(packed + i / 2, n - i, 4, codes + i);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
