// Kernel-table entry of the SiLU kernel (silu_mul_f32, kernels.h), appended to kernel_table() by
// table.cpp. Input: normal values (stddev 3), a stretch of large magnitudes (|x| up to 120, past
// both ends of exp's float range), and, by seed, 0, -0, +-inf or NaN at one place; u given or not.
// The SIMD version must agree with float64 or the reference within 5e-7 relative (its exp is a
// polynomial; measured: 2.2e-7 from float64, the reference 1.4e-7, over 2^20 values),
// or within 1e-30 absolute (below x = -87 it gives -0 where the reference's value is < 1e-36),
// and NaN must stay NaN. The reference itself is checked against float64 at the same bound.
#include <cmath>
#include <cstring>
#include <random>

#include "kernels/kernels.h"
#include "kernel_table/table.h"
#include "kernel_table/table_util.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

bool close(double want, float got) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got);
  if (std::isinf(want) || std::isinf(got)) return want == double(got);
  const double d = std::fabs(want - double(got));
  return d <= 5e-7 * std::fabs(want) || d <= 1e-30;
}

std::string check_silu_mul(size_t n, uint64_t seed) {
  auto g = random_floats(n, seed);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; i += 7) g[i] = float(int(rng() % 2401) - 1200) / 10.0f;  // +-120
  const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN};
  g[rng() % n] = special[seed % 5];
  const auto uv = random_floats(n, seed + 1, 1.0f);
  const float* u = (seed & 1) ? uv.data() : nullptr;
  std::vector<float> a = g, b = g;
  silu_mul_f32__ref(a.data(), u, n);
  silu_mul_f32__wasmsimd(b.data(), u, n);
  for (size_t i = 0; i < n; ++i) {
    const double x = g[i], want = x / (1.0 + std::exp(-x)) * (u ? double(u[i]) : 1.0);
    // -inf: -inf / (1 + inf) is NaN in float and in double; x * u rounds once more in float.
    if (!close(a[i], b[i]) && !close(want, b[i])) return mismatch("silu_mul_f32", n, i, a[i], b[i]);
    if (!close(want, a[i])) return mismatch("silu_mul_f32 reference vs float64", n, i, want, a[i]);
  }
  return "";
}

// Each call restores the input first (the kernel works in place, and silu applied again and again
// would drive the values into subnormals): the time includes one copy of n floats.
double bench_silu_mul(Variant v, size_t n, int iters) {
  const auto src = random_floats(n, 5);
  const auto u = random_floats(n, 6);
  std::vector<float> g(n);
  auto f = v == Variant::kSimd ? silu_mul_f32__wasmsimd : silu_mul_f32__ref;
  return time_per_call(iters, [&] {
    std::memcpy(g.data(), src.data(), n * sizeof(float));
    f(g.data(), u.data(), n);
  });
}

}  // namespace

std::vector<KernelCase> activation_cases() {
  return {{"silu_mul_f32", "activation", check_silu_mul, bench_silu_mul, 4}};
}

}  // namespace webquant::kernels
