// The one table of kernels. The test runner (tests/cpp/test_kernels.cpp) sweeps every entry's
// `check` over sizes; the benchmark (scripts/bench-kernels.mjs through the bindings) runs every
// entry's `bench`. Adding a kernel here adds its test and its benchmark.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace webquant::kernels {

enum class Variant : int { kReference = 0, kSimd = 1 };

struct KernelCase {
  const char* name;    // kernel name without the __isa suffix, e.g. "quantize_f32_q8"
  const char* family;  // "reduce", "math", "quantize", "dequantize", "convert", "pack", "unpack", "gemm"
  // Runs the reference and the SIMD version on the same seeded random input of n elements and
  // returns "" when they agree (integers exactly, floats within the family's stated tolerance);
  // otherwise a message naming the first differing index and both values.
  std::string (*check)(size_t n, uint64_t seed);
  // Runs one variant `iters` times on n elements of fresh input; returns seconds per call.
  double (*bench)(Variant variant, size_t n, int iters);
  // Bytes of fp32-equivalent input per element, the denominator of GB/s (4 for fp32 input).
  double input_bytes_per_element;
};

const std::vector<KernelCase>& kernel_table();
// The reduce entries, minmax and argmax (table_reduce.cpp), the first of kernel_table().
std::vector<KernelCase> reduce_cases();
// The int8 per-group GEMM entries (table_q8g.cpp), part of kernel_table().
std::vector<KernelCase> gemm_q8g_cases();
// The 3-bit grouped GEMM entry (table_q3g.cpp), part of kernel_table().
std::vector<KernelCase> gemm_q3g_cases();
// The 4-bit codebook (lookup-table) GEMM entry (table_lut4g.cpp), part of kernel_table().
std::vector<KernelCase> gemm_lut4g_cases();
// The fp16 / bf16 weight GEMM entries (table_half.cpp), part of kernel_table().
std::vector<KernelCase> gemm_half_cases();
// The convolution entries (table_conv.cpp), part of kernel_table().
std::vector<KernelCase> conv_cases();
// The static activation row quantizer (table_static_a8.cpp), part of kernel_table().
std::vector<KernelCase> static_a8_cases();
// The 16-bit-activation decode entries, gemm_q4g_x16 and gemm_q8c_x16 (table_x16.cpp; SIMD
// builds, empty in the baseline build), part of kernel_table().
std::vector<KernelCase> gemm_x16_cases();
// The math entries, exp and SiLU (table_math.cpp).
std::vector<KernelCase> math_cases();
const KernelCase* find_kernel(const std::string& name);

// Sizes every kernel is checked at: 1..15, powers of two up to 4096, odd sizes (43, 401, 500,
// 4097 ...), and lengths that are not a multiple of the usual group sizes.
std::vector<size_t> sweep_sizes();

}  // namespace webquant::kernels
