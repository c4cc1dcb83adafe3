// fp32 <-> fp16 / bf16 conversions, bit-identical to PyTorch's `.to(torch.float16/bfloat16)`:
// round to nearest, ties to even; signed zero kept; fp16 overflow gives +-inf.
// NaN stays NaN: fp16 keeps the sign and gives the quiet NaN 0x7E00 (as the FP16 library that
// PyTorch uses); bf16 gives 0x7FC0 (c10::BFloat16's round_to_nearest_even).
#pragma once

#include <cstddef>
#include <cstdint>

namespace webquant {

uint16_t fp32_to_fp16(float x);
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float x);
float bf16_to_fp32(uint16_t h);

// Array forms: n elements, src and dst must not overlap. Use the fastest kernel of this build.
void convert_f32_to_f16(const float* src, uint16_t* dst, size_t n);
void convert_f16_to_f32(const uint16_t* src, float* dst, size_t n);
void convert_f32_to_bf16(const float* src, uint16_t* dst, size_t n);
void convert_bf16_to_f32(const uint16_t* src, float* dst, size_t n);

}  // namespace webquant
