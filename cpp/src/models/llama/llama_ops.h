// Float32 building blocks of the Llama forward pass (internal). Row-major, no aliasing unless said.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace webquant::llama {

// y = x / sqrt(mean(x^2) + eps) * w over d elements (sum of squares in double). y may alias x.
void rms_norm(const float* x, const float* w, int d, float eps, float* y);

// inv_freq[i] for i < head_dim/2, HF's float32 formula plus the "linear" / "llama3" scalings.
struct RopeParams {
  int head_dim;
  float theta;
  int type;  // 0 none, 1 linear, 2 llama3
  float factor, low_freq_factor, high_freq_factor;
  int original_max_position;
};
std::vector<float> rope_inv_freq(const RopeParams& p);

// cos/sin of float(pos) * inv_freq[i] for i < half, written to cs[0..half) and cs[half..2*half).
void rope_cos_sin(const float* inv_freq, int half, int pos, float* cs);

// In-place rotate_half RoPE on n_heads consecutive vectors of head_dim = 2*half floats.
void rope_apply(float* v, int n_heads, int half, const float* cs);

float dot_f32(const float* a, const float* b, size_t n);
// y[i] += a * x[i]
void axpy_f32(float a, const float* x, float* y, size_t n);

// y[m, n_out] = x[m, k] * W[n_out, k]^T (float32, W not owned).
void gemm_nt_f32(const float* x, size_t m, const float* w, size_t n_out, size_t k, float* y);

// g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + exp(-x)).
void silu_mul(float* g, const float* u, size_t n);

}  // namespace webquant::llama
