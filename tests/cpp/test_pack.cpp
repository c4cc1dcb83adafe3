// Packing of low-bit codes: the course's examples, the exact bit layout of every width,
// round trips over many lengths, and the errors.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "webquant/pack.h"

using namespace webquant;

namespace {

std::vector<uint8_t> random_codes(size_t n, int bits, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> c(n);
  for (auto& v : c) v = static_cast<uint8_t>(rng() % (1u << bits));
  return c;
}

std::vector<uint8_t> pack(const std::vector<uint8_t>& codes, int bits) {
  std::vector<uint8_t> out(packed_size(codes.size(), bits), 0xAA);  // junk: all must be written
  const Status s = pack_codes(codes.data(), codes.size(), bits, out.data());
  REQUIRE_MESSAGE(s.ok(), s.message);
  return out;
}

std::vector<uint8_t> unpack(const std::vector<uint8_t>& packed, size_t n, int bits) {
  std::vector<uint8_t> out(n, 0xAA);
  const Status s = unpack_codes(packed.data(), packed.size(), n, bits, out.data());
  REQUIRE_MESSAGE(s.ok(), s.message);
  return out;
}

// The layout written out independently: bit j of value i is bit i*b + j of the stream.
std::vector<uint8_t> bit_stream(const std::vector<uint8_t>& codes, int bits) {
  std::vector<uint8_t> out(packed_size(codes.size(), bits), 0);
  for (size_t i = 0; i < codes.size(); ++i)
    for (int j = 0; j < bits; ++j)
      if ((codes[i] >> j) & 1) {
        const size_t bit = i * bits + j;
        out[bit / 8] |= uint8_t(1u << (bit % 8));
      }
  return out;
}

}  // namespace

TEST_CASE("packed sizes") {
  CHECK(packed_size(0, 2) == 0);
  CHECK(packed_size(1, 2) == 1);
  CHECK(packed_size(4, 2) == 1);
  CHECK(packed_size(5, 2) == 2);
  CHECK(packed_size(1, 4) == 1);
  CHECK(packed_size(2, 4) == 1);
  CHECK(packed_size(3, 4) == 2);
  CHECK(packed_size(1, 3) == 3);  // whole 3-byte units of 8 codes
  CHECK(packed_size(8, 3) == 3);
  CHECK(packed_size(9, 3) == 6);
  CHECK(packed_size(16, 3) == 6);
  CHECK(packed_size(7, 8) == 7);
  CHECK(packed_size(10, 5) == 0);
  const size_t huge = ~size_t(0);  // no overflow in the size computation
  CHECK(packed_size(huge, 2) == huge / 4 + 1);
  CHECK(packed_size(huge, 3) == 3 * (huge / 8 + 1));
}

TEST_CASE("course: 2-bit pack of [1, 0, 3, 2] is 177 and unpack of [177, 255]") {
  // 1 | 0 << 2 | 3 << 4 | 2 << 6 = 0b10110001 = 177.
  CHECK(pack({1, 0, 3, 2}, 2) == std::vector<uint8_t>{177});
  CHECK(unpack({177, 255}, 8, 2) == std::vector<uint8_t>{1, 0, 3, 2, 3, 3, 3, 3});
}

TEST_CASE("4-bit layout: value 2k in the low nibble of byte k, 2k+1 in the high nibble") {
  CHECK(pack({1, 2, 3, 4, 5}, 4) == std::vector<uint8_t>{0x21, 0x43, 0x05});
  CHECK(pack({15, 0}, 4) == std::vector<uint8_t>{0x0F});
  CHECK(unpack({0xA7, 0x3C}, 4, 4) == std::vector<uint8_t>{7, 10, 12, 3});
  CHECK(unpack({0xA7, 0x3C}, 3, 4) == std::vector<uint8_t>{7, 10, 12});
  const auto c = random_codes(37, 4, 1);
  const auto p = pack(c, 4);
  for (size_t k = 0; k < p.size(); ++k) {
    CHECK((p[k] & 0xF) == c[2 * k]);
    CHECK((p[k] >> 4) == (2 * k + 1 < c.size() ? c[2 * k + 1] : 0));
  }
}

TEST_CASE("2-bit layout: byte k holds values 4k..4k+3 at bit offsets 0, 2, 4, 6") {
  CHECK(pack({3, 0, 0, 0}, 2) == std::vector<uint8_t>{0x03});
  CHECK(pack({0, 3, 0, 0}, 2) == std::vector<uint8_t>{0x0C});
  CHECK(pack({0, 0, 3, 0}, 2) == std::vector<uint8_t>{0x30});
  CHECK(pack({0, 0, 0, 3, 2}, 2) == std::vector<uint8_t>{0xC0, 0x02});
  const auto c = random_codes(41, 2, 2);
  const auto p = pack(c, 2);
  for (size_t k = 0; k < p.size(); ++k) {
    unsigned expect = 0;
    for (size_t j = 0; j < 4 && 4 * k + j < c.size(); ++j)
      expect |= unsigned(c[4 * k + j]) << (2 * j);
    CHECK(p[k] == expect);
  }
}

TEST_CASE("3-bit layout: one little-endian bit stream, 8 values in 3 bytes") {
  // Values 0..7: the 24-bit word 0b111'110'101'100'011'010'001'000 = 0xFAC688, low byte first.
  CHECK(pack({0, 1, 2, 3, 4, 5, 6, 7}, 3) == std::vector<uint8_t>{0x88, 0xC6, 0xFA});
  // Value 2 straddles bytes 0 and 1 (bits 6..8).
  CHECK(pack({0, 0, 7}, 3) == std::vector<uint8_t>{0xC0, 0x01, 0x00});
  CHECK(pack({0, 0, 0, 0, 0, 7}, 3) == std::vector<uint8_t>{0x00, 0x80, 0x03});  // bits 15..17
  CHECK(unpack({0x88, 0xC6, 0xFA}, 8, 3) == std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7});
  for (int bits : {2, 3, 4, 8}) {
    for (size_t n : {1u, 7u, 8u, 9u, 23u, 64u, 77u}) {
      const auto c = random_codes(n, bits, n * 10 + bits);
      INFO("bits ", bits, " n ", n);
      CHECK(pack(c, bits) == bit_stream(c, bits));
    }
  }
}

TEST_CASE("unpack(pack(v)) == v for 2, 3, 4, 8 bits at lengths 1..40 and odd sizes") {
  std::vector<size_t> lengths;
  for (size_t n = 1; n <= 40; ++n) lengths.push_back(n);
  for (size_t n : {63u, 65u, 101u, 127u, 333u, 1001u, 4097u}) lengths.push_back(n);
  for (int bits : {2, 3, 4, 8}) {
    for (size_t n : lengths) {
      for (uint64_t seed : {1u, 2u}) {
        const auto c = random_codes(n, bits, seed * 7919 + n + bits);
        const auto p = pack(c, bits);
        REQUIRE(p.size() == packed_size(n, bits));
        INFO("bits ", bits, " n ", n);
        REQUIRE(unpack(p, n, bits) == c);
        // Padding bits past the last value are zero.
        for (size_t bit = n * bits; bit < p.size() * 8; ++bit)
          REQUIRE(((p[bit / 8] >> (bit % 8)) & 1) == 0);
      }
    }
  }
}

TEST_CASE("8-bit packing is a copy") {
  const auto c = random_codes(100, 8, 3);
  CHECK(pack(c, 8) == c);
  CHECK(unpack(c, 100, 8) == c);
}

TEST_CASE("zero codes pack into zero bytes") {
  for (int bits : {2, 3, 4, 8}) {
    uint8_t dummy = 0x55;
    CHECK(pack_codes(nullptr, 0, bits, &dummy).ok());
    CHECK(unpack_codes(nullptr, 0, 0, bits, &dummy).ok());
    CHECK(dummy == 0x55);
  }
}

TEST_CASE("pack errors: bad bits and codes that do not fit, naming the index and value") {
  std::vector<uint8_t> out(16);
  const std::vector<uint8_t> c = {0, 1, 2, 4, 9};
  for (int bits : {0, 1, 5, 7, 16}) {
    const Status s = pack_codes(c.data(), c.size(), bits, out.data());
    CHECK(s.code == StatusCode::kInvalidArgument);
    CHECK(s.message.find("bits") != std::string::npos);
    CHECK(s.message.find(std::to_string(bits)) != std::string::npos);
    CHECK(unpack_codes(out.data(), 1, 1, bits, out.data() + 8).code ==
          StatusCode::kInvalidArgument);
  }
  Status s = pack_codes(c.data(), c.size(), 2, out.data());
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(s.message.find("index 3") != std::string::npos);
  CHECK(s.message.find("is 4") != std::string::npos);
  s = pack_codes(c.data(), c.size(), 3, out.data());
  CHECK(s.message.find("index 4") != std::string::npos);
  CHECK(s.message.find("is 9") != std::string::npos);
  CHECK(s.message.find("max 7") != std::string::npos);
  s = pack_codes(c.data(), c.size(), 4, out.data());
  CHECK(s.ok());
  const std::vector<uint8_t> big = {0, 16};
  s = pack_codes(big.data(), 2, 4, out.data());
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(s.message.find("index 1") != std::string::npos);
  CHECK(s.message.find("16") != std::string::npos);
}

TEST_CASE("unpack errors: packed length must equal packed_size(n, bits)") {
  std::vector<uint8_t> p(8), out(32);
  const struct {
    size_t len, n;
    int bits;
  } kBad[] = {{2, 9, 2}, {4, 9, 2}, {2, 8, 3}, {4, 8, 3}, {2, 5, 4}, {7, 8, 8}, {1, 0, 4}};
  for (const auto& b : kBad) {
    const Status s = unpack_codes(p.data(), b.len, b.n, b.bits, out.data());
    INFO("len ", b.len, " n ", b.n, " bits ", b.bits);
    CHECK(s.code == StatusCode::kShapeMismatch);
    CHECK(s.message.find(std::to_string(b.len) + " bytes were given") != std::string::npos);
    CHECK(s.message.find(std::to_string(packed_size(b.n, b.bits)) + " bytes") != std::string::npos);
  }
}
