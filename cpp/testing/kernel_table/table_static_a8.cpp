// Kernel-table entry of the static activation row quantizer (kernels/gemm/quantize_static.h),
// appended to kernel_table() by table.cpp. `n` is the row length k; the seed picks the group
// (pick_group), the padded group stride (16 or 32) and whether input scales are given. Three rows:
// random values (some beyond the +-127 s range, so the clamp bites), exact ties (j + 0.5) * s for
// round-half-to-even, and a row with a NaN or an infinity (which must give scale NaN and zero
// codes). Codes, scales and group sums must match the reference exactly.
#include <cmath>
#include <random>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/quantize_static.h"
#include "kernel_table/table.h"
#include "kernel_table/table_util.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

std::string check_quantize_rows_static(size_t k, uint64_t seed) {
  const size_t m = 3, group = pick_group(k, seed), gs = round_up(group, seed & 1 ? 32 : 16);
  const float scale = 0.03125f;
  auto x = random_floats(m * k, seed, 2.5f);  // |x| > 127 * scale = 3.97 for ~11 %
  std::mt19937_64 rng(seed);
  for (size_t c = 0; c < k; ++c) x[k + c] = (float(int(rng() % 300) - 150) + 0.5f) * scale;
  x[2 * k + (seed / 2) % k] = (seed & 2) ? NAN : ((seed & 4) ? INFINITY : -INFINITY);
  std::vector<float> inv;
  if (seed % 3 != 0) {  // reciprocals of SmoothQuant-like factors in [0.25, 4)
    inv.resize(k);
    for (float& v : inv) v = 1.0f / std::ldexp(1.0f + float(rng() % 1000) / 1000.0f, int(rng() % 4) - 2);
  }
  const float* is = inv.empty() ? nullptr : inv.data();
  const size_t groups = (k + group - 1) / group;  // pick_group may pick a ragged last group
  const size_t len = m * groups * gs;
  std::vector<int8_t> qa(len, 1), qb(len, 2);
  std::vector<float> sa(m), sb(m);
  std::vector<int32_t> ga(m * groups, 3), gb(m * groups, 4);
  quantize_rows_static_f32_s8__ref(m, k, group, gs, x.data(), is, scale, qa.data(), sa.data(), ga.data());
  quantize_rows_static_f32_s8__wasmsimd(m, k, group, gs, x.data(), is, scale, qb.data(), sb.data(), gb.data());
  auto err = compare_float_bits("quantize_rows_static_f32_s8 scale", k, sa, sb);
  if (err.empty()) err = compare_exact("quantize_rows_static_f32_s8 codes", k, qa, qb);
  if (err.empty()) err = compare_exact("quantize_rows_static_f32_s8 group sums", k, ga, gb);
  // The reference itself: the NaN/Inf row is flagged, the finite rows keep the scale.
  if (err.empty() && !(sa[0] == scale && sa[1] == scale && std::isnan(sa[2])))
    err = "quantize_rows_static_f32_s8: the reference's row scales are wrong";
  return err;
}

double bench_quantize_rows_static(Variant v, size_t k, int iters) {
  auto x = random_floats(k, 3);
  std::vector<int8_t> q(k);
  float s;
  int32_t sum;
  auto f = v == Variant::kSimd ? quantize_rows_static_f32_s8__wasmsimd : quantize_rows_static_f32_s8__ref;
  return time_per_call(iters, [&] { f(1, k, k, k, x.data(), nullptr, 0.05f, q.data(), &s, &sum); });
}

}  // namespace

std::vector<KernelCase> static_a8_cases() {
  return {
      {"quantize_rows_static_f32_s8", "quantize", check_quantize_rows_static, bench_quantize_rows_static, 4},
  };
}

}  // namespace webquant::kernels
