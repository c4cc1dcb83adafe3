// Float32 operations the shared blocks are made of (internal). Row-major, no aliasing unless said.
// Statistics (norm sums, softmax sums) are accumulated in double and rounded once, so results
// track a float64 reference closely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace webquant::nn {

// y = x / sqrt(mean(x^2) + eps) * w over d elements (HF LlamaRMSNorm). y may alias x.
void rms_norm(const float* x, const float* w, int d, float eps, float* y);
// y = (x - mean) / sqrt(var + eps) * w + b (torch.nn.LayerNorm, biased variance). y may alias x.
void layer_norm(const float* x, const float* w, const float* b, int d, float eps, float* y);

float dot_f32(const float* a, const float* b, size_t n);
// y[i] += a * x[i]
void axpy_f32(float a, const float* x, float* y, size_t n);
// Attention's loops over keys: s[j] = dot_f32(q, k + j * stride, n) for j < nk, and y[i] += c[j] *
// x[j * stride + i] for j = 0, 1, ... in turn (nk calls of axpy_f32), bit for bit the same as those
// calls; q and y are loaded once per group of keys instead of once per key.
void dots_f32(const float* q, const float* k, size_t stride, size_t nk, size_t n, float* s);
void axpys_f32(const float* c, const float* x, size_t stride, size_t nk, float* y, size_t n);
// y[m, n_out] = x[m, k] * W[n_out, k]^T (float32, W not owned).
void gemm_nt_f32(const float* x, size_t m, const float* w, size_t n_out, size_t k, float* y);

enum class Activation : int {
  kSilu = 0,      // x * sigmoid(x)
  kGeluExact = 1, // 0.5 x (1 + erf(x / sqrt 2))     (HF "gelu")
  kGeluTanh = 2,  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (HF "gelu_new", "gelu_pytorch_tanh")
  kRelu = 3,
};
// Parses an HF activation name: "silu"/"swish", "gelu", "gelu_new"/"gelu_pytorch_tanh", "relu";
// false for anything else.
bool parse_activation(const char* name, Activation* out);
void activate(Activation a, float* x, size_t n);
// g[i] = act(g[i]) * u[i]
void activate_mul(Activation a, float* g, const float* u, size_t n);

}  // namespace webquant::nn
