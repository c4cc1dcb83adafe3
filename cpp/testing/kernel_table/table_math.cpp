// Kernel-table entries of the math kernels (kernels.h: exp_f32, silu_f32), appended to
// kernel_table() by table.cpp. The SIMD kernels compute the same double operations as the scalar
// expf (kernels/math/exp_scalar.h), so the check is bit for bit, over arguments spread past the
// special range (|x| >= 88: overflow, underflow to subnormals and zero) plus NaN, +-Inf, +-0 and
// subnormal inputs at seeded positions.
#include <cmath>
#include <cstring>
#include <random>

#include "kernel_table/table.h"
#include "kernel_table/table_util.h"
#include "kernels/kernels.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

std::vector<float> exp_args(size_t n, uint64_t seed) {
  auto x = random_floats(n, seed, 40.0f);  // about 3 % of them at |x| >= 88
  const float specials[] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-40f, -1e-40f,
                            88.72283f, 88.72284f, -103.97208f, -103.97209f, -87.99999f};
  std::mt19937_64 rng(seed);
  for (float v : specials)
    if (n > 0 && rng() % 3 == 0) x[rng() % n] = v;
  return x;
}

std::string compare_bits(const char* what, size_t n, const std::vector<float>& a,
                         const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0 && !(std::isnan(a[i]) && std::isnan(b[i])))
      return mismatch(what, n, i, a[i], b[i]);
  return "";
}

std::string check_exp(size_t n, uint64_t seed) {
  const auto x = exp_args(n, seed);
  std::vector<float> a(n), b(n), c(x);
  exp_f32__ref(x.data(), a.data(), n);
  exp_f32__wasmsimd(x.data(), b.data(), n);
  exp_f32__wasmsimd(c.data(), c.data(), n);  // in place
  std::string err = compare_bits("exp_f32", n, a, b);
  return err.empty() ? compare_bits("exp_f32 in place", n, a, c) : err;
}
double bench_exp(Variant v, size_t n, int iters) {
  const auto x = random_floats(n, 1, 4.0f);
  std::vector<float> y(n);
  return time_per_call(iters, [&] {
    (v == Variant::kSimd ? exp_f32__wasmsimd : exp_f32__ref)(x.data(), y.data(), n);
  });
}

std::string check_silu(size_t n, uint64_t seed) {
  const auto x = exp_args(n, seed);
  const auto u = random_floats(n, seed + 1, 1.0f);
  for (const float* up : {static_cast<const float*>(nullptr), u.data()}) {
    std::vector<float> a(x), b(x);
    silu_f32__ref(a.data(), up, n);
    silu_f32__wasmsimd(b.data(), up, n);
    const std::string err = compare_bits(up ? "silu_f32 * u" : "silu_f32", n, a, b);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_silu(Variant v, size_t n, int iters) {
  const auto x = random_floats(n, 1, 4.0f);
  std::vector<float> y(n);
  return time_per_call(iters, [&] {
    std::memcpy(y.data(), x.data(), n * sizeof(float));
    (v == Variant::kSimd ? silu_f32__wasmsimd : silu_f32__ref)(y.data(), nullptr, n);
  });
}

}  // namespace

std::vector<KernelCase> math_cases() {
  return {
      {"exp_f32", "math", check_exp, bench_exp, 4},
      {"silu_f32", "math", check_silu, bench_silu, 4},
  };
}

}  // namespace webquant::kernels
