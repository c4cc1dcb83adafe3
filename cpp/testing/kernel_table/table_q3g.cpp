// Kernel-table entry of the 3-bit grouped GEMM (gemm_q3g.h), appended to kernel_table() by
// table.cpp. `n` is in_features for the check (every kGemmShapes shape, a group size from
// pick_group, integer or float zero points by seed) and the weights of one decode GEMV for the
// bench (groups of 32).
#include <cmath>
#include <random>

#include "kernels/gemm/gemm_q3g.h"
#include "kernel_table/table.h"
#include "kernel_table/table_util.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

struct Q3gWeights {
  Q3gGeometry geo;
  std::vector<uint8_t> packed;
  std::vector<float> scale, zero, mag;
};
// Random codes over [0, 8), scales, and zero points: integer codes (rtn) or any float in
// [-1, 8] (hqq) depending on `float_zero`. mag = scale * (u + |zero|) bounds the rounding.
Q3gWeights make_q3g(size_t out, size_t k, size_t group, bool float_zero, uint64_t seed) {
  Q3gWeights w;
  w.geo = make_q3g_geometry(out, k, group);
  const auto codes = random_bytes(out * k, seed, 7);
  w.scale = positive_scales(out * w.geo.groups, seed + 2);
  std::mt19937_64 rng(seed + 3);
  std::uniform_real_distribution<float> d(-1.0f, 8.0f);
  w.zero.resize(out * w.geo.groups);
  for (auto& z : w.zero) z = float_zero ? d(rng) : float(rng() % 8);
  w.packed.resize(packed_q3g_bytes(w.geo));
  pack_q3g(w.geo, codes.data(), w.packed.data());
  w.mag.resize(out * k);
  for (size_t j = 0; j < out; ++j)
    for (size_t c = 0; c < k; ++c) {
      const size_t p = j * w.geo.groups + c / group;
      w.mag[j * k + c] = w.scale[p] * (float(codes[j * k + c]) + std::fabs(w.zero[p]));
    }
  return w;
}

std::string check_gemm_q3g_f32(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    Q3gWeights w = make_q3g(sh.out, k, pick_group(k, seed + sh.out), seed % 2 == 0, seed);
    // The packing round-trips.
    const auto codes = random_bytes(sh.out * k, seed, 7);
    for (size_t i = 0; i < codes.size(); ++i) {
      const uint8_t got = packed_q3g_get(w.geo, w.packed.data(), i / k, i % k);
      if (got != codes[i]) return mismatch("pack_q3g", k, i, codes[i], got);
    }
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> work(gemm_q3g_workspace(w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q3g_f32__ref(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zero.data(), bias,
                      ya.data(), work.data());
    gemm_q3g_f32__wasmsimd(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zero.data(),
                           bias, yb.data(), work.data());
    auto err = compare_gemm("gemm_q3g_f32", sh.m, sh.out, k, x.data(), w.mag, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_q3g_f32(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  Q3gWeights w = make_q3g(sh.out, k, group, false, 1);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_q3g_workspace(w.geo)), y(sh.out);
  auto f = v == Variant::kSimd ? gemm_q3g_f32__wasmsimd : gemm_q3g_f32__ref;
  return time_per_call(iters, [&] {
    f(1, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zero.data(), nullptr, y.data(),
      work.data());
  });
}

}  // namespace

std::vector<KernelCase> gemm_q3g_cases() {
  return {{"gemm_q3g_f32", "gemm", check_gemm_q3g_f32, bench_gemm_q3g_f32, 4}};
}

}  // namespace webquant::kernels
