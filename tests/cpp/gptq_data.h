// Synthetic data and float64 building blocks the GPTQ tests share (test_gptq.cpp,
// test_gptq_grid.cpp): calibration activations shaped like an LLM's inputs, small random weights,
// their Hessian, the damped inverse Hessian and its downdate for the independent references, and
// a layer's weights dequantized.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "webquant/linear.h"

namespace webquant::testing {

// Calibration activations [n, in] with correlated channels (4 shared factors plus noise) and
// every 13th channel an outlier (x 8).
inline std::vector<float> make_x(int n, int in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> mix(static_cast<size_t>(in) * 4), x(static_cast<size_t>(n) * in);
  for (float& v : mix) v = nd(rng);
  for (int t = 0; t < n; ++t) {
    float z[4];
    for (float& v : z) v = nd(rng);
    for (int c = 0; c < in; ++c) {
      float v = 0.3f * nd(rng);
      for (int k = 0; k < 4; ++k) v += mix[static_cast<size_t>(c) * 4 + k] * z[k];
      if (c % 13 == 5) v *= 8.0f;  // outlier channels
      x[static_cast<size_t>(t) * in + c] = v;
    }
  }
  return x;
}

// Weights [out, in] drawn from N(0, 0.05^2).
inline std::vector<float> make_w(int out, int in, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(out) * in);
  for (float& v : w) v = nd(rng);
  return w;
}

// H = X^T X [in, in] in float64 (no 2 / n factor).
inline std::vector<double> hessian(const std::vector<float>& x, int n, int in) {
  std::vector<double> h(static_cast<size_t>(in) * in, 0.0);
  for (int t = 0; t < n; ++t) {
    const float* row = x.data() + static_cast<size_t>(t) * in;
    for (int i = 0; i < in; ++i)
      for (int j = 0; j < in; ++j)
        h[static_cast<size_t>(i) * in + j] += static_cast<double>(row[i]) * row[j];
  }
  return h;
}

// (H + damp * mean(diag H) * I)^-1 for H [C, C], by Gauss-Jordan elimination (no pivoting: the
// damped Hessian is symmetric positive definite).
inline std::vector<double> damped_inverse(std::vector<double> h, size_t C, double damp) {
  double mean = 0;
  for (size_t i = 0; i < C; ++i) mean += h[i * C + i] / static_cast<double>(C);
  for (size_t i = 0; i < C; ++i) h[i * C + i] += damp * mean;
  std::vector<double> a = h, inv(C * C, 0.0);
  for (size_t i = 0; i < C; ++i) inv[i * C + i] = 1.0;
  for (size_t p = 0; p < C; ++p) {
    const double d = a[p * C + p];
    for (size_t j = 0; j < C; ++j) {
      a[p * C + j] /= d;
      inv[p * C + j] /= d;
    }
    for (size_t r = 0; r < C; ++r) {
      if (r == p) continue;
      const double f = a[r * C + p];
      for (size_t j = 0; j < C; ++j) {
        a[r * C + j] -= f * a[p * C + j];
        inv[r * C + j] -= f * inv[p * C + j];
      }
    }
  }
  return inv;
}

// Removes column i from the inverse Hessian of the columns not yet quantized (the OBS rank-one
// downdate inv -= inv[:, i] inv[i, :] / inv[i, i]).
inline void downdate_inverse(std::vector<double>* inv, size_t C, size_t i) {
  std::vector<double>& v = *inv;
  const double d = v[i * C + i];
  std::vector<double> col(C), row(C);
  for (size_t k = 0; k < C; ++k) {
    col[k] = v[k * C + i];
    row[k] = v[i * C + k];
  }
  for (size_t r = 0; r < C; ++r)
    for (size_t j = 0; j < C; ++j) v[r * C + j] -= col[r] * row[j] / d;
}

// The layer's weights [out, in] as float32.
inline std::vector<float> dequant(const LinearLayer& l) {
  std::vector<float> d(static_cast<size_t>(l.out_features) * l.in_features);
  l.dequantize_weight(d.data());
  return d;
}

}  // namespace webquant::testing
