#include "models/llama/llama_ops.h"

#include <cmath>

#include "kernels/simd.h"

namespace webquant::llama {

void rms_norm(const float* x, const float* w, int d, float eps, float* y) {
  double ss = 0.0;
  for (int i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  // HF: variance in float32, then x * rsqrt(variance + eps), then weight * that.
  const float var = static_cast<float>(ss / d);
  const float inv = 1.0f / std::sqrt(var + eps);
  for (int i = 0; i < d; ++i) y[i] = w[i] * (x[i] * inv);
}

std::vector<float> rope_inv_freq(const RopeParams& p) {
  const int half = p.head_dim / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32.
    const float expo = static_cast<float>(2 * i) / static_cast<float>(p.head_dim);
    inv[i] = 1.0f / std::pow(p.theta, expo);
  }
  if (p.type == 1) {
    for (float& f : inv) f /= p.factor;
  } else if (p.type == 2) {
    // transformers' _compute_llama3_parameters.
    const float pi = 3.14159265358979323846f;
    const float old_ctx = static_cast<float>(p.original_max_position);
    const float low_wavelen = old_ctx / p.low_freq_factor;
    const float high_wavelen = old_ctx / p.high_freq_factor;
    for (float& f : inv) {
      const float wavelen = 2.0f * pi / f;
      float g = wavelen > low_wavelen ? f / p.factor : f;
      if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
        const float smooth =
            (old_ctx / wavelen - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
        g = (1.0f - smooth) * g / p.factor + smooth * g;
      }
      f = g;
    }
  }
  return inv;
}

void rope_cos_sin(const float* inv_freq, int half, int pos, float* cs) {
  for (int i = 0; i < half; ++i) {
    const float a = static_cast<float>(pos) * inv_freq[i];
    cs[i] = std::cos(a);
    cs[half + i] = std::sin(a);
  }
}

void rope_apply(float* v, int n_heads, int half, const float* cs) {
  const float* c = cs;
  const float* s = cs + half;
  for (int h = 0; h < n_heads; ++h) {
    float* x = v + static_cast<size_t>(h) * 2 * half;
    for (int i = 0; i < half; ++i) {
      const float x1 = x[i];
      const float x2 = x[i + half];
      x[i] = x1 * c[i] - x2 * s[i];
      x[i + half] = x2 * c[i] + x1 * s[i];
    }
  }
}

float dot_f32(const float* a, const float* b, size_t n) {
  size_t i = 0;
  float acc = 0.0f;
#if WEBQUANT_SIMD
  v128_t s0 = wasm_f32x4_splat(0.0f), s1 = wasm_f32x4_splat(0.0f);
  for (; i + 8 <= n; i += 8) {
    s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_v128_load(a + i), wasm_v128_load(b + i)));
    s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4)));
  }
  s0 = wasm_f32x4_add(s0, s1);
  acc = (wasm_f32x4_extract_lane(s0, 0) + wasm_f32x4_extract_lane(s0, 1)) +
        (wasm_f32x4_extract_lane(s0, 2) + wasm_f32x4_extract_lane(s0, 3));
#endif
  for (; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

void axpy_f32(float a, const float* x, float* y, size_t n) {
  size_t i = 0;
#if WEBQUANT_SIMD
  const v128_t va = wasm_f32x4_splat(a);
  for (; i + 4 <= n; i += 4) {
    wasm_v128_store(y + i, wasm_f32x4_add(wasm_v128_load(y + i),
                                          wasm_f32x4_mul(va, wasm_v128_load(x + i))));
  }
#endif
  for (; i < n; ++i) y[i] += a * x[i];
}

void gemm_nt_f32(const float* x, size_t m, const float* w, size_t n_out, size_t k, float* y) {
  // Each weight row is read once and reused for every x row (the weight matrix is the big one).
  for (size_t j = 0; j < n_out; ++j) {
    const float* wj = w + j * k;
    for (size_t r = 0; r < m; ++r) y[r * n_out + j] = dot_f32(x + r * k, wj, k);
  }
}

void silu_mul(float* g, const float* u, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float x = g[i];
    g[i] = x / (1.0f + std::exp(-x)) * u[i];
  }
}

}  // namespace webquant::llama
