#include "kernel_table/table.h"

#include <chrono>
#include <cmath>
#include <algorithm>
#include <cstring>
#include <random>
#include <sstream>

#include "kernels/gemm/gemm.h"
#include "kernel_table/table_util.h"
#include "kernels/kernels.h"
#include "webquant/pack.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

// ---- quantize ----
struct QParams {
  float scale, zero_point, qmin, qmax;
};
QParams random_qparams(uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x9E3779B97F4A7C15ull);
  const bool is_signed = rng() & 1;
  const int bits = (rng() & 2) ? 8 : 4;
  QParams p;
  p.qmin = is_signed ? -float(1 << (bits - 1)) : 0.0f;
  p.qmax = is_signed ? float((1 << (bits - 1)) - 1) : float((1 << bits) - 1);
  p.scale = 6.0f / (p.qmax - p.qmin) * (0.5f + float(rng() % 100) / 100.0f);
  p.zero_point = p.qmin + float(rng() % uint64_t(p.qmax - p.qmin + 1));
  return p;
}
std::string check_quantize(size_t n, uint64_t seed) {
  auto x = random_floats(n, seed);
  QParams p = random_qparams(seed);
  // Exact ties (x/s + z == k + 0.5) must round to even in both versions.
  for (size_t i = 0; i < n; i += 7) x[i] = (float(int(i % 11) - 5) + 0.5f) * p.scale;
  std::vector<uint8_t> a(n), b(n);
  quantize_f32_q8__ref(x.data(), n, p.scale, p.zero_point, p.qmin, p.qmax, a.data());
  quantize_f32_q8__wasmsimd(x.data(), n, p.scale, p.zero_point, p.qmin, p.qmax, b.data());
  return compare_exact("quantize_f32_q8", n, a, b);
}
double bench_quantize(Variant v, size_t n, int iters) {
  auto x = random_floats(n, 2);
  std::vector<uint8_t> q(n);
  auto f = v == Variant::kSimd ? quantize_f32_q8__wasmsimd : quantize_f32_q8__ref;
  return time_per_call(iters, [&] { f(x.data(), n, 0.05f, 3.0f, -128.0f, 127.0f, q.data()); });
}
std::string check_quantize_vparams(size_t n, uint64_t seed) {
  auto x = random_floats(n, seed);
  QParams p = random_qparams(seed);
  std::vector<float> s(n), z(n);
  for (size_t i = 0; i < n; ++i) {
    QParams pi = random_qparams(seed + i);
    s[i] = pi.scale;
    z[i] = std::fmin(std::fmax(pi.zero_point, p.qmin), p.qmax);
  }
  std::vector<uint8_t> a(n), b(n);
  quantize_f32_q8_vparams__ref(x.data(), n, s.data(), z.data(), p.qmin, p.qmax, a.data());
  quantize_f32_q8_vparams__wasmsimd(x.data(), n, s.data(), z.data(), p.qmin, p.qmax, b.data());
  return compare_exact("quantize_f32_q8_vparams", n, a, b);
}
double bench_quantize_vparams(Variant v, size_t n, int iters) {
  auto x = random_floats(n, 3);
  std::vector<float> s(n, 0.05f), z(n, 1.0f);
  std::vector<uint8_t> q(n);
  auto f = v == Variant::kSimd ? quantize_f32_q8_vparams__wasmsimd : quantize_f32_q8_vparams__ref;
  return time_per_call(iters,
                       [&] { f(x.data(), n, s.data(), z.data(), -128.0f, 127.0f, q.data()); });
}

// ---- dequantize ----
template <typename Q, void (*Ref)(const Q*, size_t, float, float, float*),
          void (*Simd)(const Q*, size_t, float, float, float*)>
std::string check_dequantize(size_t n, uint64_t seed) {
  auto raw = random_bytes(n, seed);
  std::vector<Q> q(n);
  std::memcpy(q.data(), raw.data(), n);
  QParams p = random_qparams(seed);
  std::vector<float> a(n), b(n);
  Ref(q.data(), n, p.scale, p.zero_point, a.data());
  Simd(q.data(), n, p.scale, p.zero_point, b.data());
  return compare_float_bits("dequantize", n, a, b);
}
template <typename Q, void (*Ref)(const Q*, size_t, float, float, float*),
          void (*Simd)(const Q*, size_t, float, float, float*)>
double bench_dequantize(Variant v, size_t n, int iters) {
  auto raw = random_bytes(n, 4);
  std::vector<Q> q(n);
  std::memcpy(q.data(), raw.data(), n);
  std::vector<float> y(n);
  auto f = v == Variant::kSimd ? Simd : Ref;
  return time_per_call(iters, [&] { f(q.data(), n, 0.05f, 3.0f, y.data()); });
}

// ---- convert ----
template <void (*Ref)(const float*, size_t, uint16_t*), void (*Simd)(const float*, size_t, uint16_t*),
          bool kBf16>
std::string check_to_half(size_t n, uint64_t seed) {
  auto x = special_floats(n, seed);
  std::vector<uint16_t> a(n), b(n);
  Ref(x.data(), n, a.data());
  Simd(x.data(), n, b.data());
  return compare_half_bits(kBf16 ? "convert_f32_bf16" : "convert_f32_f16", n, a, b, kBf16);
}
template <void (*Ref)(const float*, size_t, uint16_t*), void (*Simd)(const float*, size_t, uint16_t*)>
double bench_to_half(Variant v, size_t n, int iters) {
  auto x = random_floats(n, 5);
  std::vector<uint16_t> y(n);
  auto f = v == Variant::kSimd ? Simd : Ref;
  return time_per_call(iters, [&] { f(x.data(), n, y.data()); });
}
template <void (*Ref)(const uint16_t*, size_t, float*), void (*Simd)(const uint16_t*, size_t, float*)>
std::string check_from_half(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint16_t> x(n);
  for (auto& h : x) h = static_cast<uint16_t>(rng());
  std::vector<float> a(n), b(n);
  Ref(x.data(), n, a.data());
  Simd(x.data(), n, b.data());
  return compare_float_bits("convert_half_f32", n, a, b);
}
template <void (*Ref)(const uint16_t*, size_t, float*), void (*Simd)(const uint16_t*, size_t, float*)>
double bench_from_half(Variant v, size_t n, int iters) {
  std::vector<uint16_t> x(n, 0x3C00);
  std::vector<float> y(n);
  auto f = v == Variant::kSimd ? Simd : Ref;
  return time_per_call(iters, [&] { f(x.data(), n, y.data()); });
}

// ---- pack / unpack ----
template <int kBits, void (*Ref)(const uint8_t*, size_t, uint8_t*),
          void (*Simd)(const uint8_t*, size_t, uint8_t*)>
std::string check_pack(size_t n, uint64_t seed) {
  auto codes = random_bytes(n, seed, (1u << kBits) - 1);
  const size_t m = packed_size(n, kBits);
  std::vector<uint8_t> a(m, 0xAA), b(m, 0x55);
  Ref(codes.data(), n, a.data());
  Simd(codes.data(), n, b.data());
  return compare_exact("pack", n, a, b);
}
template <int kBits, void (*Ref)(const uint8_t*, size_t, uint8_t*),
          void (*Simd)(const uint8_t*, size_t, uint8_t*)>
double bench_pack(Variant v, size_t n, int iters) {
  auto codes = random_bytes(n, 6, (1u << kBits) - 1);
  std::vector<uint8_t> p(packed_size(n, kBits));
  auto f = v == Variant::kSimd ? Simd : Ref;
  return time_per_call(iters, [&] { f(codes.data(), n, p.data()); });
}
template <int kBits, void (*Ref)(const uint8_t*, size_t, uint8_t*),
          void (*Simd)(const uint8_t*, size_t, uint8_t*)>
std::string check_unpack(size_t n, uint64_t seed) {
  auto packed = random_bytes(packed_size(n, kBits), seed);
  std::vector<uint8_t> a(n, 0xAA), b(n, 0x55);
  Ref(packed.data(), n, a.data());
  Simd(packed.data(), n, b.data());
  return compare_exact("unpack", n, a, b);
}
template <int kBits, void (*Ref)(const uint8_t*, size_t, uint8_t*),
          void (*Simd)(const uint8_t*, size_t, uint8_t*)>
double bench_unpack(Variant v, size_t n, int iters) {
  auto packed = random_bytes(packed_size(n, kBits), 7);
  std::vector<uint8_t> c(n);
  auto f = v == Variant::kSimd ? Simd : Ref;
  return time_per_call(iters, [&] { f(packed.data(), n, c.data()); });
}


// ---- gemm ----
// For the gemm family `n` is in_features (k). Each check runs the shapes kGemmShapes (m rows of
// activations x out_features), with and without bias, and for grouped weights a group size from
// pick_group (rotating by seed: per-channel G = k, sizes that divide k, and sizes that do not, so
// groups that are not a multiple of 32, their padding and a ragged last group are covered). Integer-activation kernels must match bit for bit; float ones
// within kGemmRelTol * (sum_c |x_c| |w_c| + |bias|), since SIMD reorders the sums. For quantized
// weights |w_c| there means scale * (u_c + zu): the SIMD kernels compute sum x u - zu * sum x (the
// zero code folded out of the inner loop), whose rounding scales with it.
// The bench is one decode GEMV (m = 1) over n WEIGHT elements: in_features = min(n, 576) (SmolLM2's
// hidden size), out_features = n / in_features, so GB/s are fp32-equivalent weight bytes.
std::string check_gemm_f32(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    auto x = random_floats(sh.m * k, seed, 1.0f);
    auto w = random_floats(sh.out * k, seed + 1, 1.0f);
    auto b = random_floats(sh.out, seed + 2, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_f32_f32__ref(sh.m, sh.out, k, x.data(), w.data(), bias, ya.data());
    gemm_f32_f32__wasmsimd(sh.m, sh.out, k, x.data(), w.data(), bias, yb.data());
    auto err = compare_gemm("gemm_f32_f32", sh.m, sh.out, k, x.data(), w, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_f32(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in;
  auto x = random_floats(k, 1), w = random_floats(sh.out * k, 2);
  std::vector<float> y(sh.out);
  auto f = v == Variant::kSimd ? gemm_f32_f32__wasmsimd : gemm_f32_f32__ref;
  return time_per_call(iters, [&] { f(1, sh.out, k, x.data(), w.data(), nullptr, y.data()); });
}

// int8 per-channel weights: codes over the whole int8 range, packed. `mag` is the magnitude the
// float kernels' sums carry, scale * (u + 128) with u = q + 128 (the zero code is folded out).
struct Q8Weights {
  GroupGeometry geo;
  std::vector<uint8_t> packed;
  std::vector<float> scale;  // padded to a multiple of 4
  std::vector<float> mag;    // [out, k]
};
Q8Weights make_q8(size_t out, size_t k, uint64_t seed) {
  auto raw = random_bytes(out * k, seed);
  std::vector<int8_t> q(out * k);
  std::memcpy(q.data(), raw.data(), q.size());
  Q8Weights w;
  w.geo = make_q8c_geometry(out, k);
  w.packed.resize(packed_q8c_bytes(out, k));
  pack_q8c(q.data(), out, k, w.packed.data());
  w.scale = positive_scales(round_up(out, kGemmNr), seed + 3);
  w.mag.resize(out * k);
  for (size_t j = 0; j < out; ++j)
    for (size_t c = 0; c < k; ++c) w.mag[j * k + c] = w.scale[j] * (float(q[j * k + c]) + 256.0f);
  return w;
}

std::string check_gemm_q8c_f32(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    Q8Weights w = make_q8(sh.out, k, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> work(gemm_f32_workspace(sh.m, w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q8c_f32__ref(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), bias, ya.data(),
                      work.data());
    gemm_q8c_f32__wasmsimd(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), bias,
                           yb.data(), work.data());
    auto err = compare_gemm("gemm_q8c_f32", sh.m, sh.out, k, x.data(), w.mag, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_q8c_f32(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in;
  Q8Weights w = make_q8(sh.out, k, 1);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_f32_workspace(1, w.geo)), y(sh.out);
  auto f = v == Variant::kSimd ? gemm_q8c_f32__wasmsimd : gemm_q8c_f32__ref;
  return time_per_call(iters, [&] {
    f(1, w.geo, x.data(), w.packed.data(), w.scale.data(), nullptr, y.data(), work.data());
  });
}

std::string check_gemm_q8c_s8(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    Q8Weights w = make_q8(sh.out, k, seed);
    const size_t kp = w.geo.kpad();
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    const A8Rows a = quantize_a8_rows(sh.m, w.geo, x.data());
    std::vector<float> ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q8c_s8__ref(sh.m, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(),
                     w.scale.data(), bias, ya.data());
    gemm_q8c_s8__wasmsimd(sh.m, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(),
                          w.scale.data(), bias, yb.data());
    auto err = compare_gemm_exact("gemm_q8c_s8", sh.m, sh.out, k, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_q8c_s8(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in;
  Q8Weights w = make_q8(sh.out, k, 1);
  auto x = random_floats(k, 2);
  const A8Rows a = quantize_a8_rows(1, w.geo, x.data());
  std::vector<float> y(sh.out);
  auto f = v == Variant::kSimd ? gemm_q8c_s8__wasmsimd : gemm_q8c_s8__ref;
  return time_per_call(iters, [&] {
    f(1, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(), w.scale.data(), nullptr,
      y.data());
  });
}

using QgF32Kernel = void (*)(size_t, const GroupGeometry&, const float*, const uint8_t*,
                             const float*, const uint8_t*, const float*, float*, float*);


template <int kBits, QgF32Kernel Ref, QgF32Kernel Simd>
std::string check_gemm_qg_f32(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    QgWeights w = make_qg(sh.out, k, pick_group(k, seed + sh.out), kBits, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    std::vector<float> work(gemm_f32_workspace(sh.m, w.geo)), ya(sh.m * sh.out), yb(sh.m * sh.out);
    Ref(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zeros(), bias, ya.data(),
        work.data());
    Simd(sh.m, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zeros(), bias, yb.data(),
         work.data());
    auto err = compare_gemm(kBits == 4 ? "gemm_q4g_f32" : "gemm_q2g_f32", sh.m, sh.out, k,
                            x.data(), w.mag, bias, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
template <int kBits, QgF32Kernel Ref, QgF32Kernel Simd>
double bench_gemm_qg_f32(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  QgWeights w = make_qg(sh.out, k, group, kBits, 1);
  auto x = random_floats(k, 2);
  std::vector<float> work(gemm_f32_workspace(1, w.geo)), y(sh.out);
  auto f = v == Variant::kSimd ? Simd : Ref;
  return time_per_call(iters, [&] {
    f(1, w.geo, x.data(), w.packed.data(), w.scale.data(), w.zeros(), nullptr, y.data(),
      work.data());
  });
}

std::string check_gemm_q4g_s8(size_t k, uint64_t seed) {
  for (const GemmShape& sh : kGemmShapes) {
    QgWeights w = make_qg(sh.out, k, pick_group(k, seed + sh.out), 4, seed);
    auto x = random_floats(sh.m * k, seed + 4, 1.0f);
    auto b = random_floats(sh.out, seed + 5, 1.0f);
    const float* bias = seed & 1 ? b.data() : nullptr;
    const A8Rows a = quantize_a8_rows(sh.m, w.geo, x.data());
    std::vector<float> ya(sh.m * sh.out), yb(sh.m * sh.out);
    gemm_q4g_s8__ref(sh.m, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(),
                     w.scale.data(), w.zeros(), bias, ya.data());
    gemm_q4g_s8__wasmsimd(sh.m, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(),
                          w.scale.data(), w.zeros(), bias, yb.data());
    auto err = compare_gemm_exact("gemm_q4g_s8", sh.m, sh.out, k, ya, yb);
    if (!err.empty()) return err;
  }
  return "";
}
double bench_gemm_q4g_s8(Variant v, size_t n, int iters) {
  const BenchShape sh = gemm_bench_shape(n);
  const size_t k = sh.in, group = k % 32 == 0 ? 32 : k;
  QgWeights w = make_qg(sh.out, k, group, 4, 1);
  auto x = random_floats(k, 2);
  const A8Rows a = quantize_a8_rows(1, w.geo, x.data());
  std::vector<float> y(sh.out);
  auto f = v == Variant::kSimd ? gemm_q4g_s8__wasmsimd : gemm_q4g_s8__ref;
  return time_per_call(iters, [&] {
    f(1, w.geo, a.xq.data(), a.xs.data(), a.sums.data(), w.packed.data(), w.scale.data(),
      w.zeros(), nullptr, y.data());
  });
}

// Activation quantizer: codes, scales and group sums must match exactly. Row 1 has max |x| = 127
// (s = 1) and exact halves, so round-half-to-even is exercised; row 2 is all zeros.
std::string check_quantize_rows(size_t k, uint64_t seed) {
  const size_t m = 3, group = pick_group(k, seed), gs = round_up(group, seed & 1 ? 32 : 16);
  auto x = random_floats(m * k, seed, 2.0f);
  std::mt19937_64 rng(seed);
  for (size_t c = 0; c < k; ++c) x[k + c] = float(int(rng() % 255) - 127) + (c % 2 ? 0.5f : 0.0f);
  x[k] = -127.0f;
  x[k + (k - 1) / 2] = 127.0f;
  for (size_t c = 0; c < k; ++c) x[2 * k + c] = 0.0f;
  const size_t ng = (k + group - 1) / group;  // a ragged last group when group does not divide k
  const size_t len = m * ng * gs;
  std::vector<int8_t> qa(len, 1), qb(len, 2);
  std::vector<float> sa(m), sb(m);
  std::vector<int32_t> ga(m * ng), gb(m * ng);
  quantize_rows_f32_s8__ref(m, k, group, gs, x.data(), qa.data(), sa.data(), ga.data());
  quantize_rows_f32_s8__wasmsimd(m, k, group, gs, x.data(), qb.data(), sb.data(), gb.data());
  auto err = compare_float_bits("quantize_rows_f32_s8 scale", k, sa, sb);
  if (err.empty()) err = compare_exact("quantize_rows_f32_s8 codes", k, qa, qb);
  if (err.empty()) err = compare_exact("quantize_rows_f32_s8 group sums", k, ga, gb);
  return err;
}
double bench_quantize_rows(Variant v, size_t k, int iters) {
  auto x = random_floats(k, 3);
  std::vector<int8_t> q(k);
  float s;
  int32_t sum;
  auto f = v == Variant::kSimd ? quantize_rows_f32_s8__wasmsimd : quantize_rows_f32_s8__ref;
  return time_per_call(iters, [&] { f(1, k, k, k, x.data(), q.data(), &s, &sum); });
}

}  // namespace

const std::vector<KernelCase>& kernel_table() {
  static const std::vector<KernelCase> table = [] {
    std::vector<KernelCase> t = reduce_cases();
    const std::vector<KernelCase> rest = {
        {"quantize_f32_q8", "quantize", check_quantize, bench_quantize, 4},
        {"quantize_f32_q8_vparams", "quantize", check_quantize_vparams, bench_quantize_vparams, 4},
        {"dequantize_s8_f32", "dequantize",
         check_dequantize<int8_t, dequantize_s8_f32__ref, dequantize_s8_f32__wasmsimd>,
         bench_dequantize<int8_t, dequantize_s8_f32__ref, dequantize_s8_f32__wasmsimd>, 4},
        {"dequantize_u8_f32", "dequantize",
         check_dequantize<uint8_t, dequantize_u8_f32__ref, dequantize_u8_f32__wasmsimd>,
         bench_dequantize<uint8_t, dequantize_u8_f32__ref, dequantize_u8_f32__wasmsimd>, 4},
        {"convert_f32_f16", "convert",
         check_to_half<convert_f32_f16__ref, convert_f32_f16__wasmsimd, false>,
         bench_to_half<convert_f32_f16__ref, convert_f32_f16__wasmsimd>, 4},
        {"convert_f32_bf16", "convert",
         check_to_half<convert_f32_bf16__ref, convert_f32_bf16__wasmsimd, true>,
         bench_to_half<convert_f32_bf16__ref, convert_f32_bf16__wasmsimd>, 4},
        {"convert_f16_f32", "convert", check_from_half<convert_f16_f32__ref, convert_f16_f32__wasmsimd>,
         bench_from_half<convert_f16_f32__ref, convert_f16_f32__wasmsimd>, 4},
        {"convert_bf16_f32", "convert",
         check_from_half<convert_bf16_f32__ref, convert_bf16_f32__wasmsimd>,
         bench_from_half<convert_bf16_f32__ref, convert_bf16_f32__wasmsimd>, 4},
        {"pack_u2", "pack", check_pack<2, pack_u2__ref, pack_u2__wasmsimd>,
         bench_pack<2, pack_u2__ref, pack_u2__wasmsimd>, 4},
        {"pack_u3", "pack", check_pack<3, pack_u3__ref, pack_u3__wasmsimd>,
         bench_pack<3, pack_u3__ref, pack_u3__wasmsimd>, 4},
        {"pack_u4", "pack", check_pack<4, pack_u4__ref, pack_u4__wasmsimd>,
         bench_pack<4, pack_u4__ref, pack_u4__wasmsimd>, 4},
        {"unpack_u2", "unpack", check_unpack<2, unpack_u2__ref, unpack_u2__wasmsimd>,
         bench_unpack<2, unpack_u2__ref, unpack_u2__wasmsimd>, 4},
        {"unpack_u3", "unpack", check_unpack<3, unpack_u3__ref, unpack_u3__wasmsimd>,
         bench_unpack<3, unpack_u3__ref, unpack_u3__wasmsimd>, 4},
        {"unpack_u4", "unpack", check_unpack<4, unpack_u4__ref, unpack_u4__wasmsimd>,
         bench_unpack<4, unpack_u4__ref, unpack_u4__wasmsimd>, 4},
        // gemm: check n = in_features; bench n = weight elements of one decode GEMV (m = 1), so
        // GB/s count fp32-equivalent weight bytes (4 per weight).
        {"quantize_rows_f32_s8", "quantize", check_quantize_rows, bench_quantize_rows, 4},
        {"gemm_f32_f32", "gemm", check_gemm_f32, bench_gemm_f32, 4},
        {"gemm_q8c_f32", "gemm", check_gemm_q8c_f32, bench_gemm_q8c_f32, 4},
        {"gemm_q8c_s8", "gemm", check_gemm_q8c_s8, bench_gemm_q8c_s8, 4},
        {"gemm_q4g_f32", "gemm",
         check_gemm_qg_f32<4, gemm_q4g_f32__ref, gemm_q4g_f32__wasmsimd>,
         bench_gemm_qg_f32<4, gemm_q4g_f32__ref, gemm_q4g_f32__wasmsimd>, 4},
        {"gemm_q2g_f32", "gemm",
         check_gemm_qg_f32<2, gemm_q2g_f32__ref, gemm_q2g_f32__wasmsimd>,
         bench_gemm_qg_f32<2, gemm_q2g_f32__ref, gemm_q2g_f32__wasmsimd>, 4},
        {"gemm_q4g_s8", "gemm", check_gemm_q4g_s8, bench_gemm_q4g_s8, 4},
    };
    t.insert(t.end(), rest.begin(), rest.end());
    for (const KernelCase& c : gemm_q8g_cases()) t.push_back(c);
    for (const KernelCase& c : gemm_q3g_cases()) t.push_back(c);
    for (const KernelCase& c : gemm_lut4g_cases()) t.push_back(c);
    for (const KernelCase& c : gemm_half_cases()) t.push_back(c);
    for (const KernelCase& c : conv_cases()) t.push_back(c);
    for (const KernelCase& c : static_a8_cases()) t.push_back(c);
    for (const KernelCase& c : gemm_x16_cases()) t.push_back(c);
    for (const KernelCase& c : math_cases()) t.push_back(c);
    return t;
  }();
  return table;
}

const KernelCase* find_kernel(const std::string& name) {
  for (const auto& k : kernel_table())
    if (name == k.name) return &k;
  return nullptr;
}

std::vector<size_t> sweep_sizes() {
  std::vector<size_t> s;
  for (size_t n = 1; n <= 15; ++n) s.push_back(n);
  for (size_t n = 16; n <= 4096; n *= 2) s.push_back(n);
  for (size_t n : {17, 31, 33, 43, 63, 65, 95, 127, 129, 172, 401, 500, 1000, 4097, 20043})
    s.push_back(n);
  return s;
}

}  // namespace webquant::kernels
