// Kernel-table entries of the reduce kernels (kernels.h), appended to kernel_table() by table.cpp:
// min/max and argmax over n floats, with the finiteness flag both report.
#include <algorithm>
#include <random>

#include "kernel_table/table.h"
#include "kernel_table/table_util.h"
#include "kernels/kernels.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

std::string check_minmax(size_t n, uint64_t seed) {
  auto x = random_floats(n, seed);
  MinMax a = minmax_f32__ref(x.data(), n), b = minmax_f32__wasmsimd(x.data(), n);
  if (a.min != b.min) return mismatch("minmax_f32 min", n, 0, a.min, b.min);
  if (a.max != b.max) return mismatch("minmax_f32 max", n, 0, a.max, b.max);
  if (!a.finite || !b.finite) return "minmax_f32: finite input reported as non-finite";
  // A single NaN or Inf anywhere must be seen by both.
  std::mt19937_64 rng(seed);
  x[rng() % n] = (seed & 1) ? NAN : -INFINITY;
  a = minmax_f32__ref(x.data(), n);
  b = minmax_f32__wasmsimd(x.data(), n);
  if (a.finite || b.finite) return mismatch("minmax_f32 finite flag", n, 0, a.finite, b.finite);
  return "";
}
double bench_minmax(Variant v, size_t n, int iters) {
  auto x = random_floats(n, 1);
  volatile float sink = 0;
  return time_per_call(iters, [&] {
    MinMax m = v == Variant::kSimd ? minmax_f32__wasmsimd(x.data(), n) : minmax_f32__ref(x.data(), n);
    sink = m.max;
  });
}

std::string check_argmax(size_t n, uint64_t seed) {
  auto x = random_floats(n, seed);
  std::mt19937_64 rng(seed);
  // Ties: copies of the largest value at random places (the first of them must win), and for some
  // seeds the maximum only in the last element (the scalar tail) or repeated in every lane.
  float mx = x[0];
  for (float v : x) mx = v > mx ? v : mx;
  for (int c = 0; c < 3; ++c) x[rng() % n] = mx;
  if (seed % 5 == 0) x[n - 1] = mx + 1.0f;
  if (seed % 7 == 0) std::fill(x.begin(), x.end(), -2.5f);
  ArgMax ra = argmax_f32__ref(x.data(), n), rb = argmax_f32__wasmsimd(x.data(), n);
  if (ra.index != rb.index)  // the message's values are the two indices
    return mismatch("argmax_f32 index", n, ra.index, double(ra.index), double(rb.index));
  if (!ra.finite || !rb.finite) return "argmax_f32: finite input reported as non-finite";
  x[rng() % n] = (seed & 1) ? NAN : INFINITY;
  ra = argmax_f32__ref(x.data(), n);
  rb = argmax_f32__wasmsimd(x.data(), n);
  if (ra.finite || rb.finite) return mismatch("argmax_f32 finite flag", n, 0, ra.finite, rb.finite);
  return "";
}
double bench_argmax(Variant v, size_t n, int iters) {
  auto x = random_floats(n, 1);
  volatile size_t sink = 0;
  return time_per_call(iters, [&] {
    ArgMax r = v == Variant::kSimd ? argmax_f32__wasmsimd(x.data(), n) : argmax_f32__ref(x.data(), n);
    sink = r.index;
  });
}

}  // namespace

std::vector<KernelCase> reduce_cases() {
  return {{"minmax_f32", "reduce", check_minmax, bench_minmax, 4},
          {"argmax_f32", "reduce", check_argmax, bench_argmax, 4}};
}

}  // namespace webquant::kernels
