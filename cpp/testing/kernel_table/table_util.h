// Helpers shared by the kernel table's checks and benchmarks (table.cpp, table_q8g.cpp, ...):
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
#include <algorithm>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_q8g.h"

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

// ---- quantized weights of the gemm checks (table.cpp, table_x16.cpp) ----
// 4-bit / 2-bit grouped weights with random codes, zero codes and scales. `mag` is
// scale * (u + zu): the float kernels compute sum x u - zu * sum x, whose rounding scales with it.
struct QgWeights {
  GroupGeometry geo;
  bool symmetric = false;
  std::vector<uint8_t> packed, zero;
  const uint8_t* zeros() const { return symmetric ? nullptr : zero.data(); }
  std::vector<float> scale;
  std::vector<float> mag;  // [out, k]
};
inline QgWeights make_qg(size_t out, size_t k, size_t group, int bits, uint64_t seed) {
  QgWeights w;
  w.geo = make_group_geometry(out, k, group);
  const unsigned mask = (1u << bits) - 1;
  auto codes = random_bytes(out * k, seed, mask);
  auto zc = random_bytes(out * w.geo.groups, seed + 1, mask);
  w.symmetric = seed % 3 == 1;  // the kernels then get zero == nullptr: every code 2^(bits-1)
  if (w.symmetric) std::fill(zc.begin(), zc.end(), uint8_t(1u << (bits - 1)));
  auto sc = positive_scales(out * w.geo.groups, seed + 2);
  w.packed.resize(packed_qg_bytes(w.geo, bits));
  pack_qg(w.geo, bits, codes.data(), zc.data(), w.packed.data());
  w.scale.assign(w.geo.params(), 0.0f);
  w.zero.assign(w.geo.params(), 0);
  w.mag.resize(out * k);
  for (size_t j = 0; j < out; ++j) {
    for (size_t g = 0; g < w.geo.groups; ++g) {
      const size_t idx = qg_param_index(w.geo, j, g);
      w.scale[idx] = sc[j * w.geo.groups + g];
      w.zero[idx] = zc[j * w.geo.groups + g];
      for (size_t e = 0; e < w.geo.group_len(g); ++e) {  // a ragged last group is shorter
        const size_t c = g * group + e;
        w.mag[j * k + c] = w.scale[idx] * (float(codes[j * k + c]) + float(w.zero[idx]));
      }
    }
  }
  return w;
}

// Random codes over the whole int8 range, zero codes (asymmetric) and scales. `mag` is
// scale * (u + zu): the float kernels compute sum x u - zu * sum x, whose rounding scales with it.
struct Q8gWeights {
  GroupGeometry geo;
  bool symmetric = false;
  std::vector<uint8_t> packed, zero;
  std::vector<float> scale, mag;
  std::vector<float> w;  // [out, k]: the weights, scale * (u - zu)
  const uint8_t* zeros() const { return symmetric ? nullptr : zero.data(); }
};
inline Q8gWeights make_q8g(size_t out, size_t k, size_t group, bool symmetric, uint64_t seed) {
  Q8gWeights w;
  w.geo = make_q8g_geometry(out, k, group);
  w.symmetric = symmetric;
  auto raw = random_bytes(out * k, seed);
  std::vector<int8_t> q(out * k);
  std::memcpy(q.data(), raw.data(), q.size());
  auto zc = random_bytes(out * w.geo.groups, seed + 1);
  if (symmetric) std::fill(zc.begin(), zc.end(), kQ8Zero);
  auto sc = positive_scales(out * w.geo.groups, seed + 2);
  w.packed.resize(packed_q8g_bytes(w.geo));
  pack_q8g(w.geo, q.data(), symmetric ? nullptr : zc.data(), w.packed.data());
  w.scale.assign(w.geo.params(), 0.0f);
  w.zero.assign(w.geo.params(), kQ8Zero);
  w.mag.resize(out * k);
  w.w.assign(out * k, 0.0f);
  for (size_t j = 0; j < out; ++j) {
    for (size_t g = 0; g < w.geo.groups; ++g) {
      const size_t idx = qg_param_index(w.geo, j, g);
      w.scale[idx] = sc[j * w.geo.groups + g];
      w.zero[idx] = zc[j * w.geo.groups + g];
      for (size_t e = 0; e < w.geo.group_len(g); ++e) {  // a ragged last group is shorter
        const size_t c = g * group + e;
        w.mag[j * k + c] = w.scale[idx] * (float(q[j * k + c]) + 128.0f + float(w.zero[idx]));
        w.w[j * k + c] = w.scale[idx] * (float(q[j * k + c]) + 128.0f - float(w.zero[idx]));
      }
    }
  }
  return w;
}

}  // namespace webquant::kernels::table_util
