// Scalar fp16 / bf16 conversions against PyTorch bit patterns worked out by hand, exhaustive
// round trips, an independent round-to-nearest-even check, and the array forms.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "webquant/convert.h"

using namespace webquant;

namespace {

float from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint32_t to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
bool fp16_is_nan(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x03FF); }
bool bf16_is_nan(uint16_t h) { return (h & 0x7F80) == 0x7F80 && (h & 0x007F); }

// The value of a finite fp16 pattern straight from its fields, in double (exact).
double fp16_value(uint16_t h) {
  const int e = (h >> 10) & 0x1F, m = h & 0x3FF;
  const double mag = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -mag : mag;
}

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

}  // namespace

TEST_CASE("fp32_to_fp16 matches PyTorch on hand-derived cases") {
  // 1/3 = 1.0101...b * 2^-2: exponent 13, fraction 341.33/1024 -> 341 = 0x155.
  CHECK(fp32_to_fp16(1.0f / 3.0f) == 0x3555);
  CHECK(fp32_to_fp16(1.0f) == 0x3C00);
  CHECK(fp32_to_fp16(-2.0f) == 0xC000);
  CHECK(fp32_to_fp16(0.1f) == 0x2E66);  // 1.6 * 2^-4: fraction 614.4 -> 614 = 0x266
  // Largest finite, and the overflow threshold 65520 (halfway to 2^16) which rounds to inf.
  CHECK(fp32_to_fp16(65504.0f) == 0x7BFF);
  CHECK(fp32_to_fp16(65520.0f) == 0x7C00);
  CHECK(fp32_to_fp16(-65520.0f) == 0xFC00);
  CHECK(fp32_to_fp16(65519.99f) == 0x7BFF);  // the float is 65519.9921875, below the tie
  CHECK(fp32_to_fp16(1e10f) == 0x7C00);
  CHECK(fp32_to_fp16(kInf) == 0x7C00);
  CHECK(fp32_to_fp16(-kInf) == 0xFC00);
  // Subnormals: ulp 2^-24; ties go to the even count of ulps.
  CHECK(fp32_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(fp32_to_fp16(std::ldexp(1.0f, -25)) == 0x0000);  // 0.5 ulp: tie -> 0
  CHECK(fp32_to_fp16(std::ldexp(3.0f, -26)) == 0x0001);  // 0.75 ulp
  CHECK(fp32_to_fp16(std::ldexp(3.0f, -25)) == 0x0002);  // 1.5 ulp: tie -> 2
  CHECK(fp32_to_fp16(std::ldexp(5.0f, -25)) == 0x0002);  // 2.5 ulp: tie -> 2
  CHECK(fp32_to_fp16(std::ldexp(-1.0f, -24)) == 0x8001);
  CHECK(fp32_to_fp16(std::ldexp(1023.0f, -24)) == 0x03FF);  // largest subnormal
  CHECK(fp32_to_fp16(std::ldexp(2047.0f, -25)) == 0x0400);  // 1023.5 ulp: tie -> smallest normal
  CHECK(fp32_to_fp16(std::ldexp(1.0f, -14)) == 0x0400);     // smallest normal
  CHECK(fp32_to_fp16(1e-40f) == 0x0000);                    // fp32 subnormal underflows
  CHECK(fp32_to_fp16(-1e-40f) == 0x8000);
  // Normal ties: 1 + 2^-11 is halfway between 0x3C00 and 0x3C01 -> even 0x3C00;
  // 1 + 3*2^-11 is halfway between 0x3C01 and 0x3C02 -> even 0x3C02.
  CHECK(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)) == 0x3C00);
  CHECK(fp32_to_fp16(1.0f + std::ldexp(3.0f, -11)) == 0x3C02);
  CHECK(fp32_to_fp16(from_bits(0x3F801001)) == 0x3C01);  // just above the tie
  // A mantissa carry that bumps the exponent: 2047.5 -> 2048 (0x6800).
  CHECK(fp32_to_fp16(2047.5f) == 0x6800);
  CHECK(fp32_to_fp16(2047.0f) == 0x67FF);
  // Signed zero and NaN (quiet 0x7E00, sign kept, as the FP16 library that c10 uses).
  CHECK(fp32_to_fp16(0.0f) == 0x0000);
  CHECK(fp32_to_fp16(-0.0f) == 0x8000);
  CHECK(fp32_to_fp16(kNaN) == 0x7E00);
  CHECK(fp32_to_fp16(-kNaN) == 0xFE00);
  CHECK(fp16_is_nan(fp32_to_fp16(from_bits(0x7F800001))));  // signalling NaN stays NaN
  CHECK(fp16_is_nan(fp32_to_fp16(from_bits(0xFFC12345))));
}

TEST_CASE("fp16_to_fp32 decodes every field combination") {
  CHECK(fp16_to_fp32(0x3C00) == 1.0f);
  CHECK(fp16_to_fp32(0x3555) == 0.333251953125f);
  CHECK(fp16_to_fp32(0x7BFF) == 65504.0f);
  CHECK(fp16_to_fp32(0x0001) == std::ldexp(1.0f, -24));
  CHECK(fp16_to_fp32(0x03FF) == std::ldexp(1023.0f, -24));
  CHECK(fp16_to_fp32(0x0400) == std::ldexp(1.0f, -14));
  CHECK(fp16_to_fp32(0x7C00) == kInf);
  CHECK(fp16_to_fp32(0xFC00) == -kInf);
  CHECK(std::isnan(fp16_to_fp32(0x7E00)));
  CHECK(std::isnan(fp16_to_fp32(0xFC01)));
  CHECK(to_bits(fp16_to_fp32(0x8000)) == 0x80000000u);
  CHECK(to_bits(fp16_to_fp32(0x0000)) == 0x00000000u);
  // Every finite pattern equals the value computed from its fields.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t hh = static_cast<uint16_t>(h);
    if ((hh & 0x7C00) == 0x7C00) continue;
    const float f = fp16_to_fp32(hh);
    INFO("h=", h);
    REQUIRE(double(f) == fp16_value(hh));
    REQUIRE(std::signbit(f) == bool(hh & 0x8000));
  }
}

TEST_CASE("fp32_to_bf16 matches c10::BFloat16 round_to_nearest_even") {
  CHECK(fp32_to_bf16(1.0f / 3.0f) == 0x3EAB);  // 0x3EAAAAAB: dropped 0xAAAB > half -> up
  CHECK(fp32_to_bf16(1.0f) == 0x3F80);
  // Ties: dropped bits exactly 0x8000 round to the even upper half.
  CHECK(fp32_to_bf16(from_bits(0x3F808000)) == 0x3F80);
  CHECK(fp32_to_bf16(from_bits(0x3F818000)) == 0x3F82);
  CHECK(fp32_to_bf16(from_bits(0x3F808001)) == 0x3F81);
  CHECK(fp32_to_bf16(from_bits(0x3F807FFF)) == 0x3F80);
  CHECK(fp32_to_bf16(from_bits(0xBF818000)) == 0xBF82);
  // Overflow: FLT_MAX rounds up into inf; just below the tie stays finite.
  CHECK(fp32_to_bf16(std::numeric_limits<float>::max()) == 0x7F80);
  CHECK(fp32_to_bf16(from_bits(0x7F7F7FFF)) == 0x7F7F);
  CHECK(fp32_to_bf16(kInf) == 0x7F80);
  CHECK(fp32_to_bf16(-kInf) == 0xFF80);
  CHECK(fp32_to_bf16(-0.0f) == 0x8000);
  CHECK(fp32_to_bf16(0.0f) == 0x0000);
  CHECK(fp32_to_bf16(from_bits(0x00008000)) == 0x0000);  // subnormal tie -> even 0
  CHECK(fp32_to_bf16(from_bits(0x00018000)) == 0x0002);
  // Every NaN becomes the canonical 0x7FC0, whatever its sign or payload.
  CHECK(fp32_to_bf16(kNaN) == 0x7FC0);
  CHECK(fp32_to_bf16(-kNaN) == 0x7FC0);
  CHECK(fp32_to_bf16(from_bits(0x7F800001)) == 0x7FC0);
  CHECK(fp32_to_bf16(from_bits(0x7FFFFFFF)) == 0x7FC0);  // would carry into the sign otherwise
}

TEST_CASE("bf16_to_fp32 is a 16-bit shift") {
  CHECK(bf16_to_fp32(0x3F80) == 1.0f);
  CHECK(bf16_to_fp32(0xC040) == -3.0f);
  CHECK(bf16_to_fp32(0x7F80) == kInf);
  CHECK(std::isnan(bf16_to_fp32(0x7FC0)));
  CHECK(to_bits(bf16_to_fp32(0x8000)) == 0x80000000u);
  CHECK(bf16_to_fp32(0x0001) == std::ldexp(1.0f, -133));
}

TEST_CASE("half -> float -> half is the identity on all 65536 patterns (NaN stays NaN)") {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t hh = static_cast<uint16_t>(h);
    INFO("h=", h);
    if (fp16_is_nan(hh)) {
      REQUIRE(fp16_is_nan(fp32_to_fp16(fp16_to_fp32(hh))));
    } else {
      REQUIRE(fp32_to_fp16(fp16_to_fp32(hh)) == hh);
    }
    if (bf16_is_nan(hh)) {
      REQUIRE(fp32_to_bf16(bf16_to_fp32(hh)) == 0x7FC0);
    } else {
      REQUIRE(fp32_to_bf16(bf16_to_fp32(hh)) == hh);
    }
  }
}

TEST_CASE("fp32_to_fp16 and fp32_to_bf16 round to the nearest, ties to even (random floats)") {
  // An independent check: the chosen pattern is at least as close as both neighbours, and on a
  // tie its last bit is even. Differences are exact in double.
  std::mt19937 rng(12345);
  std::uniform_int_distribution<uint32_t> bits_dist;
  for (int it = 0; it < 400000; ++it) {
    uint32_t u = bits_dist(rng);
    // Half the samples inside fp16's exponent range (2^-26 .. 2^16), where rounding is subtle.
    if (it & 1) u = (u & 0x807FFFFFu) | ((101u + (u >> 23) % 42u) << 23);
    const float x = from_bits(u);
    if (!std::isfinite(x)) continue;
    INFO("x bits=", u);
    const double ax = std::fabs(double(x));

    const uint16_t h = fp32_to_fp16(x);
    REQUIRE(bool(h & 0x8000) == std::signbit(x));
    const uint16_t mag = h & 0x7FFF;
    if (ax >= 65520.0) {
      REQUIRE(mag == 0x7C00);
    } else {
      REQUIRE(mag <= 0x7BFF);
      const double d = std::fabs(fp16_value(mag) - ax);
      if (mag < 0x7BFF) {  // above 0x7BFF, ax < 65520 already proves the choice
        const double up = std::fabs(fp16_value(mag + 1) - ax);
        REQUIRE(d <= up);
        if (d == up) REQUIRE((mag & 1) == 0);
      }
      if (mag > 0) {
        const double down = std::fabs(fp16_value(mag - 1) - ax);
        REQUIRE(d <= down);
        if (d == down) REQUIRE((mag & 1) == 0);
      }
    }

    const uint16_t b = fp32_to_bf16(x);
    REQUIRE(bool(b & 0x8000) == std::signbit(x));
    const uint32_t bmag = b & 0x7FFF;
    if (bmag == 0x7F80) {
      // Overflow: x is at or beyond the tie between the largest bf16 and 2^128.
      REQUIRE(ax >= double(from_bits(0x7F7F8000u)));
    } else {
      REQUIRE(bmag < 0x7F80);
      const double d = std::fabs(double(from_bits(bmag << 16)) - ax);
      // The pattern after the largest finite one stands for 2^128 here, not inf.
      const double next =
          bmag + 1 == 0x7F80 ? std::ldexp(1.0, 128) : double(from_bits((bmag + 1) << 16));
      const double up = std::fabs(next - ax);
      REQUIRE(d <= up);
      if (d == up) REQUIRE((bmag & 1) == 0);
      if (bmag > 0) {
        const double down = std::fabs(double(from_bits((bmag - 1) << 16)) - ax);
        REQUIRE(d <= down);
        if (d == down) REQUIRE((bmag & 1) == 0);
      }
    }
  }
}

TEST_CASE("array conversions equal the scalar ones") {
  std::mt19937 rng(7);
  const float specials[] = {0.0f, -0.0f, kInf, -kInf, kNaN, -kNaN, 65504.0f, 65520.0f,
                            65519.99f, std::ldexp(1.0f, -25), std::ldexp(3.0f, -26),
                            from_bits(0x3F808000), from_bits(0x3F818000), 1e-40f};
  for (size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 100, 1000, 4099}) {
    std::vector<float> x(n);
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) {
      x[i] = (rng() % 4 == 0) ? specials[rng() % (sizeof(specials) / sizeof(specials[0]))]
                              : from_bits(static_cast<uint32_t>(rng()));
      h[i] = static_cast<uint16_t>(rng());
    }
    std::vector<uint16_t> y16(n), yb16(n);
    std::vector<float> f16(n), fb16(n);
    convert_f32_to_f16(x.data(), y16.data(), n);
    convert_f32_to_bf16(x.data(), yb16.data(), n);
    convert_f16_to_f32(h.data(), f16.data(), n);
    convert_bf16_to_f32(h.data(), fb16.data(), n);
    for (size_t i = 0; i < n; ++i) {
      INFO("n=", n, " i=", i);
      REQUIRE(y16[i] == fp32_to_fp16(x[i]));  // NaN too: both give 0x7E00 with the sign
      REQUIRE(yb16[i] == fp32_to_bf16(x[i]));
      const float a = fp16_to_fp32(h[i]), b = bf16_to_fp32(h[i]);
      if (std::isnan(a)) {
        REQUIRE(std::isnan(f16[i]));
      } else {
        REQUIRE(to_bits(f16[i]) == to_bits(a));
      }
      if (std::isnan(b)) {
        REQUIRE(std::isnan(fb16[i]));
      } else {
        REQUIRE(to_bits(fb16[i]) == to_bits(b));
      }
    }
  }
}
