// Kernel-table entry of the 4-bit codebook GEMM (gemm_lut4g.h), appended to kernel_table() by
// table.cpp: `n` is in_features for the check (every kGemmShapes shape, a group size from
// pick_group, a random ascending table by seed) and the weights of one decode GEMV for the bench.
#include <algorithm>
#include <cmath>

#include "kernels/gemm/gemm_lut4g.h"
#include "kernel_table/table.h"
#include "kernel_table/table_util.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

struct LutWeights {
  Lut4gGeometry geo;
  std::vector<uint8_t> packed;
  std::vector<float> table, scale, mag;
};
LutWeights make_lut(size_t out, size_t k, size_t group, uint64_t seed) {
  LutWeights w;
  w.geo = make_lut4g_geometry(out, k, group);
  const auto idx = random_bytes(out * k, seed, 15);
  w.table = random_floats(16, seed + 1, 1.0f);
  std::sort(w.table.begin(), w.table.end());
  w.scale = positive_scales(out * w.geo.groups, seed + 2);
  w.packed.resize(packed_lut4g_bytes(w.geo));
  pack_lut4g(w.geo, idx.data(), w.packed.data());
  w.mag.resize(out * k);
  for (size_t j = 0; j < out; ++j)
    for (size_t c = 0; c < k; ++c)
      w.mag[j * k + c] = w.scale[j * w.geo.groups + c / group] * std::fabs(w.table[idx[j * k + c]]);
  return w;
}

std::string check_gemm_lut4g_f32(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    LutWeights w = make_lut(sh.out, k, pick_group(k, seed + sh.out), seed);
    const auto idx = random_bytes(sh.out * k, seed, 15);
    for (size_t i = 0; i < idx.size(); ++i) {
      const uint8_t got = packed_lut4g_get(w.geo, w.packed.data(), i / k, i % k);
      if (got != idx[i]) return mismatch("pack_lut4g", k, i, idx[i], got);
    }
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> work(gemm_lut4g_workspace(w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_lut4g_f32__ref(sh.m, w.geo, x.data(), w.packed.data(), w.table.data(), w.scale.data(),
                        bias, ya.data(), work.data());
    gemm_lut4g_f32__wasmsimd(sh.m, w.geo, x.data(), w.packed.data(), w.table.data(),
                             w.scale.data(), bias, yb.data(), work.data());
    auto err = compare_gemm("gemm_lut4g_f32", sh.m, sh.out, k, x.data(), w.mag, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_lut4g_f32(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  LutWeights w = make_lut(sh.out, k, group, 1);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_lut4g_workspace(w.geo)), y(sh.out);
  auto f = v == Variant::kSimd ? gemm_lut4g_f32__wasmsimd : gemm_lut4g_f32__ref;
  return time_per_call(iters, [&] {
    f(1, w.geo, x.data(), w.packed.data(), w.table.data(), w.scale.data(), nullptr, y.data(),
      work.data());
  });
}

}  // namespace

std::vector<KernelCase> gemm_lut4g_cases() {
  return {{"gemm_lut4g_f32", "gemm", check_gemm_lut4g_f32, bench_gemm_lut4g_f32, 4}};
}

}  // namespace webquant::kernels
