#include "nn/ops.h"

#include <cmath>
#include <cstring>

#include "kernels/simd.h"
#include "webquant/threads.h"

namespace webquant::nn {

void rms_norm(const float* x, const float* w, int d, float eps, float* y) {
  double ss = 0.0;
  for (int i = 0; i < d; ++i) ss += static_cast<double>(x[i]) * x[i];
  // HF: variance in float32, then x * rsqrt(variance + eps), then weight * that.
  const float var = static_cast<float>(ss / d);
  const float inv = 1.0f / std::sqrt(var + eps);
  for (int i = 0; i < d; ++i) y[i] = w[i] * (x[i] * inv);
}

void layer_norm(const float* x, const float* w, const float* b, int d, float eps, float* y) {
  double s = 0.0;
  for (int i = 0; i < d; ++i) s += x[i];
  const double mean = s / d;
  double ss = 0.0;
  for (int i = 0; i < d; ++i) {
    const double c = x[i] - mean;
    ss += c * c;
  }
  const double inv = 1.0 / std::sqrt(ss / d + static_cast<double>(eps));
  const float m = static_cast<float>(mean), r = static_cast<float>(inv);
  for (int i = 0; i < d; ++i) y[i] = (x[i] - m) * r * w[i] + (b != nullptr ? b[i] : 0.0f);
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

bool parse_activation(const char* name, Activation* out) {
  const struct {
    const char* name;
    Activation a;
  } table[] = {{"silu", Activation::kSilu},          {"swish", Activation::kSilu},
               {"gelu", Activation::kGeluExact},     {"gelu_new", Activation::kGeluTanh},
               {"gelu_pytorch_tanh", Activation::kGeluTanh}, {"relu", Activation::kRelu}};
  for (const auto& e : table) {
    if (std::strcmp(e.name, name) == 0) {
      *out = e.a;
      return true;
    }
  }
  return false;
}

namespace {
inline float act1(Activation a, float x) {
  switch (a) {
    case Activation::kSilu: return x / (1.0f + std::exp(-x));
    case Activation::kGeluExact: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Activation::kGeluTanh: {
      const float c = 0.79788456080286536f;  // sqrt(2 / pi)
      return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
    }
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
  }
  return x;
}

// Element-wise work of at least this many elements is a region of its own, split over the pool:
// a decode step's gated MLP (1,536 SiLUs a layer in SmolLM2, about 9 us on one thread) would
// otherwise be serial. Below it a hand-off costs about as much as it saves. Every element is
// computed the same way whichever thread runs it, so results do not depend on the thread count.
constexpr size_t kParallelElementwise = 1024;

template <typename F>
void elementwise(size_t n, const F& body) {
  if (n < kParallelElementwise) return body(size_t{0}, n);
  ProfileRegion region(RegionKind::kElementwise);
  const size_t threads = static_cast<size_t>(num_threads());
  if (threads < 2) return body(size_t{0}, n);
  parallel_for_chunks(n, 2 * threads, body);
}
}  // namespace

void activate(Activation a, float* x, size_t n) {
  elementwise(n, [=](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) x[i] = act1(a, x[i]);
  });
}

void activate_mul(Activation a, float* g, const float* u, size_t n) {
  elementwise(n, [=](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) g[i] = act1(a, g[i]) * u[i];
  });
}

}  // namespace webquant::nn
