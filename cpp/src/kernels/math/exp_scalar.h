// e^x in float, computed as musl's expf (and glibc's, without FMA) computes it: the algorithm of
// Szabolcs Nagy's optimized-routines expf (table of 2^(i/32), degree-3 polynomial, double
// precision in between), written out here so that the scalar reference and the WASM SIMD kernel
// (exp_wasmsimd.cpp) share one definition and agree bit for bit with each other and, in the wasm
// builds (musl), with std::exp (tests/cpp/test_exp.cpp sweeps that). Internal to kernels/math.
//
// x * 32 / ln 2 = k + r, k the nearest integer (through the 1.5 * 2^52 shift), |r| <= 1/2;
// e^x = 2^(k/32) * 2^(r/32), 2^(k/32) = the table entry for k mod 32 with k / 32 added to its
// exponent, 2^(r/32) ~ 1 + C2 r + C1 r^2 + C0 r^3. |x| >= 88, NaN and Inf (where overflow,
// underflow and specials are decided) go to std::exp.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace webquant::kernels::exp_detail {

constexpr int kTableBits = 5;
constexpr int kN = 1 << kTableBits;
// kTable[i] = bits of 2^(i/32) (nearest double) minus i << (52 - 5), so that adding k << 47 for
// any integer k gives the bits of 2^(k/32).
constexpr uint64_t kTable[kN] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51,
    0x3fef72b83c7d517b, 0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1,
    0x3fef06fe0a31b715, 0x3feef1a7373aa9cb, 0x3feedea64c123422, 0x3feece086061892d,
    0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429, 0x3feea47eb03a5585,
    0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d,
    0x3feee89f995ad3ad, 0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069,
    0x3fef5818dcfba487, 0x3fef7c97337b9b5f, 0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
constexpr double kInvLn2N = 0x1.71547652b82fep+0 * kN;  // 32 / ln 2
constexpr double kShift = 0x1.8p+52;                   // rounds to an integer in the low bits
constexpr double kC0 = 0x1.c6af84b912394p-5 / kN / kN / kN;
constexpr double kC1 = 0x1.ebfce50fac4f3p-3 / kN / kN;
constexpr double kC2 = 0x1.62e42ff0c52d6p-1 / kN;
// |x| >= 88 (and NaN, Inf): float bits & 0x7fffffff at or above this go to std::exp.
constexpr uint32_t kSpecialAbsBits = 0x42b00000;

inline uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

inline float expf_scalar(float x) {
  if ((float_bits(x) & 0x7fffffffu) >= kSpecialAbsBits) return std::exp(x);
  const double z = kInvLn2N * static_cast<double>(x);
  double kd = z + kShift;
  uint64_t ki;
  std::memcpy(&ki, &kd, sizeof ki);
  kd -= kShift;
  const double r = z - kd;
  const uint64_t t = kTable[ki % kN] + (ki << (52 - kTableBits));
  double s;
  std::memcpy(&s, &t, sizeof s);
  const double p = kC0 * r + kC1;
  const double r2 = r * r;
  double y = kC2 * r + 1.0;
  y = p * r2 + y;
  y = y * s;
  return static_cast<float>(y);
}

}  // namespace webquant::kernels::exp_detail
