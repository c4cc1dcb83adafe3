// Kernel-table entries of the int8 per-group GEMM kernels (gemm_q8g.h), appended to
// kernel_table() by table.cpp. Same contract as the other gemm entries: `n` is in_features for
// the check (every kGemmShapes shape, a group size from pick_group, symmetric or asymmetric by
// seed) and the number of weights of one decode GEMV for the bench (groups of 32, symmetric: the
// scheme of llama.cpp's Q8_0, measured beside gemm_q8c_* per channel).
#include <cstring>

#include "kernels/gemm/gemm_q8g.h"
#include "kernel_table/table.h"
#include "kernel_table/table_util.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

std::string check_gemm_q8g_f32(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    Q8gWeights w = make_q8g(sh.out, k, pick_group(k, seed + sh.out), seed % 3 == 1, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> work(gemm_f32_workspace(sh.m, w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q8g_f32__ref(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zeros(), bias,
                      ya.data(), work.data());
    gemm_q8g_f32__wasmsimd(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zeros(),
                           bias, yb.data(), work.data());
    auto err = compare_gemm("gemm_q8g_f32", sh.m, sh.out, k, x.data(), w.mag, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_q8g_f32(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  Q8gWeights w = make_q8g(sh.out, k, group, true, 1);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_f32_workspace(1, w.geo)), y(sh.out);
  auto f = v == Variant::kSimd ? gemm_q8g_f32__wasmsimd : gemm_q8g_f32__ref;
  return time_per_call(iters, [&] {
    f(1, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zeros(), nullptr, y.data(),
      work.data());
  });
}

std::string check_gemm_q8g_s8(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    Q8gWeights w = make_q8g(sh.out, k, pick_group(k, seed + sh.out), seed % 3 == 1, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    const A8Rows a = quantize_a8_rows(sh.m, w.geo, x.data());
    std::vector<float> ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q8g_s8__ref(sh.m, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(),
                     w.scale.data(), w.zeros(), bias, ya.data());
    gemm_q8g_s8__wasmsimd(sh.m, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(),
                          w.scale.data(), w.zeros(), bias, yb.data());
    auto err = compare_gemm_exact("gemm_q8g_s8", sh.m, sh.out, k, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_q8g_s8(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  Q8gWeights w = make_q8g(sh.out, k, group, true, 1);
  auto x = random_floats(k, 2);
  const A8Rows a = quantize_a8_rows(1, w.geo, x.data());
  std::vector<float> y(sh.out);
  auto f = v == Variant::kSimd ? gemm_q8g_s8__wasmsimd : gemm_q8g_s8__ref;
  return time_per_call(iters, [&] {
    f(1, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(), w.scale.data(),
      w.zeros(), nullptr, y.data());
  });
}

}  // namespace

std::vector<KernelCase> gemm_q8g_cases() {
  return {
      {"gemm_q8g_f32", "gemm", check_gemm_q8g_f32, bench_gemm_q8g_f32, 4},
      {"gemm_q8g_s8", "gemm", check_gemm_q8g_s8, bench_gemm_q8g_s8, 4},
  };
}

}  // namespace webquant::kernels
