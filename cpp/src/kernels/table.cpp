#include "kernels/table.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "kernels/kernels.h"
#include "webquant/pack.h"

namespace webquant::kernels {
namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double time_per_call(int iters, F&& f) {
  f();  // warm up
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) f();
  auto t1 = Clock::now();
  return std::chrono::duration<double>(t1 - t0).count() / iters;
}

std::vector<float> random_floats(size_t n, uint64_t seed, float stddev = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

// Floats that stress conversions: normals over the whole exponent range, subnormals, ties,
// signed zeros, infinities and NaNs.
std::vector<float> special_floats(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> x(n);
  const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 65504.0f, 65520.0f,
                            65519.99f, 6.1035156e-05f, 5.9604645e-08f, 2.9802322e-08f,
                            1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 3.3895314e38f, 1e-40f};
  for (size_t i = 0; i < n; ++i) {
    uint32_t r = static_cast<uint32_t>(rng());
    if (r % 8 == 0) {
      x[i] = specials[(r >> 3) % (sizeof(specials) / sizeof(specials[0]))];
    } else {
      uint32_t bits = static_cast<uint32_t>(rng());
      std::memcpy(&x[i], &bits, 4);
    }
  }
  return x;
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed, unsigned mask = 0xFF) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> b(n);
  for (auto& v : b) v = static_cast<uint8_t>(rng() & mask);
  return b;
}

std::string mismatch(const char* what, size_t n, size_t i, double ref, double simd) {
  std::ostringstream os;
  os.precision(9);
  os << what << " n=" << n << ": index " << i << " reference=" << ref << " simd=" << simd;
  return os.str();
}

template <typename T>
std::string compare_exact(const char* what, size_t n, const std::vector<T>& a,
                          const std::vector<T>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return mismatch(what, n, i, double(a[i]), double(b[i]));
  return "";
}

// Floats compared bit for bit except that any NaN matches any NaN.
std::string compare_float_bits(const char* what, size_t n, const std::vector<float>& a,
                               const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], 4) != 0) return mismatch(what, n, i, a[i], b[i]);
  }
  return "";
}

std::string compare_half_bits(const char* what, size_t n, const std::vector<uint16_t>& a,
                              const std::vector<uint16_t>& b, bool bf16) {
  auto is_nan = [bf16](uint16_t h) {
    return bf16 ? ((h & 0x7F80) == 0x7F80 && (h & 0x7F)) : ((h & 0x7C00) == 0x7C00 && (h & 0x3FF));
  };
  for (size_t i = 0; i < a.size(); ++i) {
    if (is_nan(a[i]) && is_nan(b[i])) continue;
    if (a[i] != b[i]) return mismatch(what, n, i, a[i], b[i]);
  }
  return "";
}

// ---- reduce ----
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

}  // namespace

const std::vector<KernelCase>& kernel_table() {
  static const std::vector<KernelCase> table = {
      {"minmax_f32", "reduce", check_minmax, bench_minmax, 4},
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
  };
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
