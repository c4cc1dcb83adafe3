// Kernel-table entries of the fp16 / bf16 weight GEMM kernels (gemm.h), appended to kernel_table()
// by table.cpp. Same contract as the other gemm entries: `n` is in_features for the check (every
// kGemmShapes shape plus a 5-row prefill, with and without bias by seed; weights are random floats
// rounded to the half type, so their widened values are the |w| of the tolerance) and the number
// of weights of one decode GEMV for the bench (GB/s count fp32-equivalent bytes, 4 per weight).
#include "kernels/gemm/gemm.h"
#include "kernel_table/table.h"
#include "kernel_table/table_util.h"
#include "webquant/convert.h"

namespace webquant::kernels {
namespace {

using namespace table_util;
using HalfGemm = void (*)(size_t, size_t, size_t, const float*, const uint16_t*, const float*,
                          float*, float*);

// Random weights in the half type: bits and their exact float32 values.
template <bool kBf16>
void make_half(size_t count, uint64_t seed, std::vector<uint16_t>* h, std::vector<float>* wd) {
  auto w = random_floats(count, seed, 1.0f);
  h->resize(count);
  wd->resize(count);
  for (size_t i = 0; i < count; ++i) {
    (*h)[i] = kBf16 ? fp32_to_bf16(w[i]) : fp32_to_fp16(w[i]);
    (*wd)[i] = kBf16 ? bf16_to_fp32((*h)[i]) : fp16_to_fp32((*h)[i]);
  }
}

template <bool kBf16, HalfGemm Ref, HalfGemm Simd>
std::string check_gemm_half(size_t k, uint64_t seed) {
  const GemmShape shapes[] = {kGemmShapes[0], kGemmShapes[1], kGemmShapes[2], kGemmShapes[3], {5, 6}};
  const char* what = kBf16 ? "gemm_bf16_f32" : "gemm_f16_f32";
  for (const GemmShape& sh : shapes) {
    auto x = random_floats(sh.m * k, seed, 1.0f);
    std::vector<uint16_t> w;
    std::vector<float> wd;
    make_half<kBf16>(sh.out * k, seed + 1, &w, &wd);
    auto b = random_floats(sh.out, seed + 2, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> ya(sh.m * sh.out), yb(sh.m * sh.out), work(gemm_half_workspace(sh.m, k) + 1);
    Ref(sh.m, sh.out, k, x.data(), w.data(), bias, ya.data(), work.data());
    Simd(sh.m, sh.out, k, x.data(), w.data(), bias, yb.data(), work.data());
    auto err = compare_gemm(what, sh.m, sh.out, k, x.data(), wd, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}

template <bool kBf16, HalfGemm Ref, HalfGemm Simd>
double bench_gemm_half(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in;
  auto x = random_floats(k, 1);
  std::vector<uint16_t> w;
  std::vector<float> wd, y(sh.out), work(1);
  make_half<kBf16>(sh.out * k, 2, &w, &wd);
  auto f = v == Variant::kSimd ? Simd : Ref;
  return time_per_call(iters, [&] { f(1, sh.out, k, x.data(), w.data(), nullptr, y.data(), work.data()); });
}

}  // namespace

std::vector<KernelCase> gemm_half_cases() {
  return {
      {"gemm_f16_f32", "gemm", check_gemm_half<false, gemm_f16_f32__ref, gemm_f16_f32__wasmsimd>,
       bench_gemm_half<false, gemm_f16_f32__ref, gemm_f16_f32__wasmsimd>, 4},
      {"gemm_bf16_f32", "gemm", check_gemm_half<true, gemm_bf16_f32__ref, gemm_bf16_f32__wasmsimd>,
       bench_gemm_half<true, gemm_bf16_f32__ref, gemm_bf16_f32__wasmsimd>, 4},
  };
}

}  // namespace webquant::kernels
