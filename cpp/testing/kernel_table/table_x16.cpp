// Kernel-table entries of the 16-bit-activation model decode (gemm.h: x16_prepare_q4g +
// gemm_q4g_x16 for w4a16; gemm_q8g.h: x16_prepare_q8g + gemm_q8g_x16 for every w8a16 layer, per
// channel or per group; the _offset variants with float group offsets for GGUF's
// float-minimum block types), appended to kernel_table()
// by table.cpp; SIMD builds only (the baseline build keeps float32 activations). `n` is
// in_features for the check (the decode shapes of kGemmShapes, m = 1 and 2, against the float
// reference kernels within the documented x16 bound) and the number of weights of one decode GEMV
// for the bench; the SIMD timing includes the row's preparation, the "reference" one is the float
// reference kernel.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernel_table/table.h"
#include "kernel_table/table_util.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_q8g.h"

namespace webquant::kernels {

#if WEBQUANT_SIMD
namespace {

using namespace table_util;

// The w4a16 / w8a16 model decode (x16_prepare_q4g + gemm_q4g_x16, x16_prepare_q8g +
// gemm_q8g_x16) rounds each 32-element block of x (from the start of each group; per channel: of
// the row) to 16-bit integers: besides the float tolerance (on wd, the magnitude the sums carry)
// each element may move by 2^-15 of its block's largest |x| (times 1 + 2^-15 when that maximum is
// clamped to 32767 steps), so
// |y_x16 - y_ref| <= kGemmRelTol * mag + sum_c |w_c| max_block|x| 2^-15 (1 + 2^-14), w = wabs.
std::string compare_gemm_x16(const char* what, size_t m, const GroupGeometry& geo, const float* x,
                             const std::vector<float>& wd, const std::vector<float>& wabs,
                             const float* bias, const std::vector<float>& a,
                             const std::vector<float>& b) {
  const size_t n = geo.n, k = geo.k;
  std::vector<double> bmax(k), extra(m * n);
  for (size_t i = 0; i < m; ++i) {
    const float* xr = x + i * k;
    for (size_t c0 = 0; c0 < k;) {  // blocks of 32 from the start of each group
      const size_t g = c0 / geo.group;
      const size_t c1 = std::min({c0 + kQLowBlock, g * geo.group + geo.group_len(g), k});
      double mx = 0.0;
      for (size_t c = c0; c < c1; ++c) mx = std::max(mx, std::fabs(double(xr[c])));
      for (size_t c = c0; c < c1; ++c) bmax[c] = mx;
      c0 = c1;
    }
    for (size_t j = 0; j < n; ++j) {
      double q = 0.0;
      for (size_t c = 0; c < k; ++c) q += std::fabs(double(wabs[j * k + c])) * bmax[c];
      extra[i * n + j] = q * 0x1p-15 * (1 + 0x1p-14);
    }
  }
  return compare_gemm(what, m, n, k, x, wd, bias, a, b, &extra);
}

// Decode rows (m = 1, 2) one at a time through x16_prepare_q4g and gemm_q4g_x16, against the
// float reference gemm_q4g_f32__ref.
std::string check_gemm_q4g_x16(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    if (sh.m >= kPrefillRows) continue;
    QgWeights w = make_qg(sh.out, k, pick_group(k, seed + sh.out), 4, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> xp(x16_floats(w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q4g_f32__ref(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zeros(), bias,
                      ya.data(), nullptr);
    for (size_t i = 0; i < sh.m; ++i) {
      x16_prepare_q4g(w.geo, x.data() + i * k, xp.data());
      gemm_q4g_x16__wasmsimd(w.geo, xp.data(), w.packed.data(), w.scale.data(), w.zeros(), bias,
                             yb.data() + i * sh.out);
    }
    auto err = compare_gemm_x16("gemm_q4g_x16", sh.m, w.geo, x.data(), w.mag, w.mag, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
// One decode row: the row's preparation and the product, as a model's decode step runs them.
double bench_gemm_q4g_x16(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  QgWeights w = make_qg(sh.out, k, group, 4, 1);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_f32_workspace(1, w.geo)), xp(x16_floats(w.geo)), y(sh.out);
  return time_per_call(iters, [&] {
    if (v == Variant::kSimd) {
      x16_prepare_q4g(w.geo, x.data(), xp.data());
      gemm_q4g_x16__wasmsimd(w.geo, xp.data(), w.packed.data(), w.scale.data(), nullptr, nullptr,
                             y.data());
    } else {
      gemm_q4g_f32__ref(1, w.geo, x.data(), w.packed.data(), w.scale.data(), nullptr, nullptr,
                        y.data(), work.data());
    }
  });
}

// Decode rows (m = 1, 2) one at a time through x16_prepare_q8g and gemm_q8g_x16, against the float
// reference gemm_q8g_f32__ref (groups from pick_group, per channel among them; symmetric or not);
// the float tolerance on the folded magnitude, the x16 term on |w|.
std::string check_gemm_q8g_x16(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    if (sh.m >= kPrefillRows) continue;
    Q8gWeights w = make_q8g(sh.out, k, pick_group(k, seed + sh.out), seed % 3 == 1, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    if (k > 40) x[seed % k] = 64.0f;  // an outlier: its block's other elements get coarse steps
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> xp(x16_q8g_floats(w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q8g_f32__ref(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zeros(), bias,
                      ya.data(), nullptr);
    for (size_t i = 0; i < sh.m; ++i) {
      x16_prepare_q8g(w.geo, x.data() + i * k, xp.data());
      gemm_q8g_x16__wasmsimd(w.geo, xp.data(), w.packed.data(), w.scale.data(), w.zeros(), bias,
                             yb.data() + i * sh.out);
    }
    auto err = compare_gemm_x16("gemm_q8g_x16", sh.m, w.geo, x.data(), w.mag, w.w, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
// One decode row of the default int8 layer (per channel, symmetric: the q8c bytes): the row's
// preparation and the product, as a model's decode step runs them; the reference is
// gemm_q8c_f32__ref, beside the gemm_q8c_f32 entry.
double bench_gemm_q8g_x16(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in;
  Q8gWeights w = make_q8g(sh.out, k, k, true, 1);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_f32_workspace(1, w.geo)), xp(x16_q8g_floats(w.geo)), y(sh.out);
  return time_per_call(iters, [&] {
    if (v == Variant::kSimd) {
      x16_prepare_q8g(w.geo, x.data(), xp.data());
      gemm_q8g_x16__wasmsimd(w.geo, xp.data(), w.packed.data(), w.scale.data(), nullptr, nullptr,
                             y.data());
    } else {
      gemm_q8c_f32__ref(1, w.geo, x.data(), w.packed.data(), w.scale.data(), nullptr, y.data(),
                        work.data());
    }
  });
}

// Float offsets per row and group on symmetric codes (gemm_q4g_x16_offset, gemm_q8g_x16_offset:
// the GGUF float-minimum layers), offset row-major [out, groups]: y_ref = the float reference
// kernel's y + sum_g offset[j, g] * (sum of x over group g), in double. The weights are
// w = scale * (u - zu) + offset, so the x16 term is on |w| and the float tolerance on the
// magnitude plus |offset|.
struct OffsetRef {
  std::vector<float> offset, wd, wabs;
};
OffsetRef make_offsets(const GroupGeometry& geo, const std::vector<float>& mag,
                       const std::vector<float>& w, uint64_t seed) {
  OffsetRef r;
  const size_t n = geo.n, k = geo.k;
  r.offset = random_floats(n * geo.groups, seed + 9, 0.05f);
  r.wd = mag;
  r.wabs = w;
  for (size_t j = 0; j < n; ++j)
    for (size_t c = 0; c < k; ++c) {
      const float o = r.offset[j * geo.groups + c / geo.group];
      r.wd[j * k + c] = std::fabs(mag[j * k + c]) + std::fabs(o);
      r.wabs[j * k + c] = w[j * k + c] + o;
    }
  return r;
}
void add_offsets(size_t m, const GroupGeometry& geo, const float* x, const std::vector<float>& offset,
                 std::vector<float>* y) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < geo.n; ++j) {
      double t = (*y)[i * geo.n + j];
      for (size_t g = 0; g < geo.groups; ++g) {
        double sx = 0.0;
        for (size_t e = 0; e < geo.group_len(g); ++e) sx += x[i * geo.k + g * geo.group + e];
        t += double(offset[j * geo.groups + g]) * sx;
      }
      (*y)[i * geo.n + j] = float(t);
    }
}

std::string check_gemm_q4g_x16_offset(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    if (sh.m >= kPrefillRows) continue;
    QgWeights w = make_qg(sh.out, k, pick_group(k, seed + sh.out), 4, seed - seed % 3 + 1);
    std::vector<float> wv(sh.out * k);  // scale * (u - 8)
    for (size_t j = 0; j < sh.out; ++j)
      for (size_t c = 0; c < k; ++c)
        wv[j * k + c] = w.scale[qg_param_index(w.geo, j, c / w.geo.group)] *
                        float(packed_qg_get(w.geo, 4, w.packed.data(), j, c) - 8);
    const OffsetRef o = make_offsets(w.geo, w.mag, wv, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> xp(x16_floats(w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q4g_f32__ref(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), nullptr, bias,
                      ya.data(), nullptr);
    add_offsets(sh.m, w.geo, x.data(), o.offset, &ya);
    for (size_t i = 0; i < sh.m; ++i) {
      x16_prepare_q4g(w.geo, x.data() + i * k, xp.data());
      gemm_q4g_x16_offset__wasmsimd(w.geo, xp.data(), w.packed.data(), w.scale.data(),
                                    o.offset.data(), bias, yb.data() + i * sh.out);
    }
    auto err = compare_gemm_x16("gemm_q4g_x16_offset", sh.m, w.geo, x.data(), o.wd, o.wabs, bias,
                                ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_q4g_x16_offset(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  QgWeights w = make_qg(sh.out, k, group, 4, 1);
  const auto offset = random_floats(sh.out * w.geo.groups, 3, 0.05f);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_f32_workspace(1, w.geo)), xp(x16_floats(w.geo)), y(sh.out);
  return time_per_call(iters, [&] {
    if (v == Variant::kSimd) {
      x16_prepare_q4g(w.geo, x.data(), xp.data());
      gemm_q4g_x16_offset__wasmsimd(w.geo, xp.data(), w.packed.data(), w.scale.data(),
                                    offset.data(), nullptr, y.data());
    } else {
      gemm_q4g_f32__ref(1, w.geo, x.data(), w.packed.data(), w.scale.data(), nullptr, nullptr,
                        y.data(), work.data());
    }
  });
}

std::string check_gemm_q8g_x16_offset(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    if (sh.m >= kPrefillRows) continue;
    Q8gWeights w = make_q8g(sh.out, k, pick_group(k, seed + sh.out), true, seed);
    const OffsetRef o = make_offsets(w.geo, w.mag, w.w, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    if (k > 40) x[seed % k] = 64.0f;  // an outlier, as in gemm_q8g_x16
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> xp(x16_q8g_floats(w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q8g_f32__ref(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), nullptr, bias,
                      ya.data(), nullptr);
    add_offsets(sh.m, w.geo, x.data(), o.offset, &ya);
    for (size_t i = 0; i < sh.m; ++i) {
      x16_prepare_q8g(w.geo, x.data() + i * k, xp.data());
      gemm_q8g_x16_offset__wasmsimd(w.geo, xp.data(), w.packed.data(), w.scale.data(),
                                    o.offset.data(), bias, yb.data() + i * sh.out);
    }
    auto err = compare_gemm_x16("gemm_q8g_x16_offset", sh.m, w.geo, x.data(), o.wd, o.wabs, bias,
                                ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}

// One decode row of a GGUF Q5_K / Q5_1 layer (int8 codes in groups of 32 plus float offsets); the
// reference is gemm_q8g_f32__ref without the offsets.
double bench_gemm_q8g_x16_offset(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  Q8gWeights w = make_q8g(sh.out, k, group, true, 1);
  const auto offset = random_floats(sh.out * w.geo.groups, 3, 0.05f);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_f32_workspace(1, w.geo)), xp(x16_q8g_floats(w.geo)), y(sh.out);
  return time_per_call(iters, [&] {
    if (v == Variant::kSimd) {
      x16_prepare_q8g(w.geo, x.data(), xp.data());
      gemm_q8g_x16_offset__wasmsimd(w.geo, xp.data(), w.packed.data(), w.scale.data(),
                                    offset.data(), nullptr, y.data());
    } else {
      gemm_q8g_f32__ref(1, w.geo, x.data(), w.packed.data(), w.scale.data(), nullptr, nullptr,
                        y.data(), work.data());
    }
  });
}

}  // namespace

std::vector<KernelCase> gemm_x16_cases() {
  return {
      {"gemm_q4g_x16", "gemm", check_gemm_q4g_x16, bench_gemm_q4g_x16, 4},
      {"gemm_q8g_x16", "gemm", check_gemm_q8g_x16, bench_gemm_q8g_x16, 4},
      {"gemm_q4g_x16_offset", "gemm", check_gemm_q4g_x16_offset, bench_gemm_q4g_x16_offset, 4},
      {"gemm_q8g_x16_offset", "gemm", check_gemm_q8g_x16_offset, bench_gemm_q8g_x16_offset, 4},
  };
}
#else
std::vector<KernelCase> gemm_x16_cases() { return {}; }
#endif

}  // namespace webquant::kernels
