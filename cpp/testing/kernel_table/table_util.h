// Helpers shared by the kernel table's checks and benchmarks (table.cpp, table_q8g.cpp):
// seeded random input, int8 activations for the s8 GEMMs, timing, and comparisons that name the
// first differing index. Internal.
#pragma once

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"

namespace webquant::kernels::table_util {

using Clock = std::chrono::steady_clock;

template <typename F>
inline double time_per_call(int iters, F&& f) {
  f();  // warm up
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) f();
  auto t1 = Clock::now();
  return std::chrono::duration<double>(t1 - t0).count() / iters;
}

inline std::vector<float> random_floats(size_t n, uint64_t seed, float stddev = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

// Activations x [m, geo.k] quantized per token by the reference row quantizer in geo's group
// layout: the int8 input of the s8 GEMM kernels (xq [m, kpad], xs [m], sums [m, groups]).
struct A8Rows {
  std::vector<int8_t> xq;
  std::vector<float> xs;
  std::vector<int32_t> sums;
};
inline A8Rows quantize_a8_rows(size_t m, const GroupGeometry& geo, const float* x) {
  A8Rows r{std::vector<int8_t>(m * geo.kpad()), std::vector<float>(m),
           std::vector<int32_t>(m * geo.groups)};
  quantize_rows_f32_s8__ref(m, geo.k, geo.group, geo.gp, x, r.xq.data(), r.xs.data(),
                            r.sums.data());
  return r;
}

// Floats that stress conversions: normals over the whole exponent range, subnormals, ties,
// signed zeros, infinities and NaNs.
inline std::vector<float> special_floats(size_t n, uint64_t seed) {
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

inline std::vector<uint8_t> random_bytes(size_t n, uint64_t seed, unsigned mask = 0xFF) {
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> b(n);
  for (auto& v : b) v = static_cast<uint8_t>(rng() & mask);
  return b;
}

inline std::string mismatch(const char* what, size_t n, size_t i, double ref, double simd) {
  std::ostringstream os;
  os.precision(9);
  os << what << " n=" << n << ": index " << i << " reference=" << ref << " simd=" << simd;
  return os.str();
}

template <typename T>
inline std::string compare_exact(const char* what, size_t n, const std::vector<T>& a,
                          const std::vector<T>& b) {
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return mismatch(what, n, i, double(a[i]), double(b[i]));
  return "";
}

// Floats compared bit for bit except that any NaN matches any NaN.
inline std::string compare_float_bits(const char* what, size_t n, const std::vector<float>& a,
                               const std::vector<float>& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (std::memcmp(&a[i], &b[i], 4) != 0) return mismatch(what, n, i, a[i], b[i]);
  }
  return "";
}

inline std::string compare_half_bits(const char* what, size_t n, const std::vector<uint16_t>& a,
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

// ---- gemm ----
constexpr double kGemmRelTol = 1e-5;
struct BenchShape {
  size_t in, out;
};
inline BenchShape gemm_bench_shape(size_t n) {
  const size_t in = n < 576 ? n : 576;
  return {in, n / in};
}
struct GemmShape {
  size_t m, out;
};
constexpr GemmShape kGemmShapes[] = {{1, 1}, {1, 7}, {2, 4}, {3, 9}};

// A group size for in_features k: per channel (seed % 4 == 0), a size that does NOT divide k so
// the last group of each row is ragged (seed % 4 == 2, when one below k exists), else one that
// divides k (falling back to k).
inline size_t pick_group(size_t k, uint64_t seed) {
  const size_t options[] = {32, 64, 24, 16, 128, 96};
  if (seed % 4 == 0) return k;  // per channel
  if (seed % 4 == 2) {
    for (size_t t = 0; t < 6; ++t) {
      const size_t g = options[(seed + t) % 6];
      if (g < k && k % g != 0) return g;
    }
  }
  for (size_t t = 0; t < 6; ++t) {
    const size_t g = options[(seed + t) % 6];
    if (g <= k && k % g == 0) return g;
  }
  return k;
}

// y (kernel) vs y_ref within the float tolerance, given |w| (or the folded magnitude) for the bound.
// `extra` (optional, m * n): a tolerance added to output o beyond the float reordering one.
inline std::string compare_gemm(const char* what, size_t m, size_t n, size_t k, const float* x,
                         const std::vector<float>& wd, const float* bias,
                         const std::vector<float>& a, const std::vector<float>& b,
                         const std::vector<double>* extra = nullptr) {
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j < n; ++j) {
      double mag = bias ? std::fabs(bias[j]) : 0.0;
      for (size_t c = 0; c < k; ++c) mag += std::fabs(double(x[i * k + c]) * wd[j * k + c]);
      const size_t o = i * n + j;
      const double tol = kGemmRelTol * mag + (extra ? (*extra)[o] : 0.0) + 1e-30;
      if (!(std::fabs(double(a[o]) - double(b[o])) <= tol)) {
        std::ostringstream os;
        os << what << " m=" << m << " out=" << n << " k=" << k;
        return mismatch(os.str().c_str(), k, o, a[o], b[o]);
      }
    }
  }
  return "";
}

inline std::string compare_gemm_exact(const char* what, size_t m, size_t n, size_t k,
                               const std::vector<float>& a, const std::vector<float>& b) {
  for (size_t o = 0; o < a.size(); ++o) {
    if (std::memcmp(&a[o], &b[o], 4) != 0) {
      std::ostringstream os;
      os << what << " m=" << m << " out=" << n << " k=" << k;
      return mismatch(os.str().c_str(), k, o, a[o], b[o]);
    }
  }
  return "";
}

inline std::vector<float> positive_scales(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> s(n);
  for (auto& v : s) v = 0.001f + float(rng() % 1000) * 1e-4f;
  return s;
}

}  // namespace webquant::kernels::table_util
