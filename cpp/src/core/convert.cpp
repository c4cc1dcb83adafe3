// Scalar fp32 <-> fp16 / bf16, bit-identical to PyTorch.
// fp16 follows the FP16 library (Marat Dukhan) that c10::Half uses: the mantissa is rounded by the
// FPU itself (an fp32 addition that aligns the value to fp16's precision), so the result is round
// to nearest even without any integer rounding logic. bf16 follows c10::BFloat16's
// round_to_nearest_even. The SIMD kernels in kernels/convert/ run the same steps lane-wise.
#include "webquant/convert.h"

#include <cmath>
#include <cstring>

#include "kernels/kernels.h"

namespace webquant {
namespace {

inline uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

uint16_t fp32_to_fp16(float x) {
  // base = 4|x| exactly, or inf when |x| >= ~2^16 (the product overflows); inf survives below.
  float base = (std::fabs(x) * 0x1.0p+112f) * 0x1.0p-110f;
  const uint32_t w = bits_of(x);
  const uint32_t shl1_w = w + w;  // exponent in the top 8 bits, sign dropped
  const uint32_t sign = w & 0x80000000u;
  // Adding 2^(e+15) (e = exponent of x, at least -14 so fp16 subnormals share the ulp 2^-24)
  // leaves exactly fp16's 10 fraction bits of x in the sum's mantissa, rounded by the FPU to
  // nearest even.
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = float_of((bias >> 1) + 0x07800000u) + base;
  const uint32_t b = bits_of(base);
  // The sum's exponent field gives e+14 (mod 32); the low 12 bits hold x's leading one at bit 10
  // (which lifts that to fp16's biased exponent) and its rounded fraction below. A rounding carry
  // or a subnormal rounding up to the smallest normal adds into the exponent naturally.
  const uint32_t exp_bits = (b >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = b & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t w = uint32_t(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;  // exponent at bits 27..31, mantissa at 17..26
  // Normal (and inf/NaN): place the fields in fp32 position with exponent + 0xE0, then scale
  // by 2^-112 so the net exponent offset is 0x70 while 0x1F still maps to 0xFF.
  const float normalized = float_of((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
  // Subnormal (and zero): m * 2^-24 == (0.5 + m * 2^-24) - 0.5, the first term built from bits.
  const float denormalized = float_of((two_w >> 17) | (126u << 23)) - 0.5f;
  const uint32_t r = two_w < (1u << 27) ? bits_of(denormalized) : bits_of(normalized);
  return float_of(sign | r);
}

uint16_t fp32_to_bf16(float x) {
  if (std::isnan(x)) return 0x7FC0;
  const uint32_t u = bits_of(x);
  // Round to nearest even on the 16 dropped bits; overflow carries into inf naturally.
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

float bf16_to_fp32(uint16_t h) { return float_of(uint32_t(h) << 16); }

void convert_f32_to_f16(const float* src, uint16_t* dst, size_t n) {
  kernels::WQ_BEST(convert_f32_f16)(src, n, dst);
}
void convert_f16_to_f32(const uint16_t* src, float* dst, size_t n) {
  kernels::WQ_BEST(convert_f16_f32)(src, n, dst);
}
void convert_f32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  kernels::WQ_BEST(convert_f32_bf16)(src, n, dst);
}
void convert_bf16_to_f32(const uint16_t* src, float* dst, size_t n) {
  kernels::WQ_BEST(convert_bf16_f32)(src, n, dst);
}

}  // namespace webquant
