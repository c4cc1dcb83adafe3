#include "nn/ops.h"

#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
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

void dots_f32(const float* q, const float* k, size_t stride, size_t nk, size_t n, float* s) {
  size_t j = 0;
#if WEBQUANT_SIMD
  // Four keys at a time, each summed exactly as dot_f32 sums it: lanes of two accumulators over
  // blocks of 8, the accumulators added, lanes folded as (l0 + l1) + (l2 + l3) (here on the
  // transposed sums, four keys in one vector), then the scalar tail.
  const size_t n8 = n & ~size_t{7};
  for (; j + 4 <= nk; j += 4) {
    const float* k0 = k + j * stride;
    const float* k1 = k0 + stride;
    const float* k2 = k1 + stride;
    const float* k3 = k2 + stride;
    v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    v128_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (size_t i = 0; i < n8; i += 8) {
      const v128_t qa = wasm_v128_load(q + i), qb = wasm_v128_load(q + i + 4);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(qa, wasm_v128_load(k0 + i)));
      b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(qb, wasm_v128_load(k0 + i + 4)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(qa, wasm_v128_load(k1 + i)));
      b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(qb, wasm_v128_load(k1 + i + 4)));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(qa, wasm_v128_load(k2 + i)));
      b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(qb, wasm_v128_load(k2 + i + 4)));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(qa, wasm_v128_load(k3 + i)));
      b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(qb, wasm_v128_load(k3 + i + 4)));
    }
    a0 = wasm_f32x4_add(a0, b0);
    a1 = wasm_f32x4_add(a1, b1);
    a2 = wasm_f32x4_add(a2, b2);
    a3 = wasm_f32x4_add(a3, b3);
    const v128_t t01 = wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), t23 = wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5);
    const v128_t u01 = wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7), u23 = wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7);
    const v128_t l0 = wasm_i32x4_shuffle(t01, t23, 0, 1, 4, 5), l1 = wasm_i32x4_shuffle(t01, t23, 2, 3, 6, 7);
    const v128_t l2 = wasm_i32x4_shuffle(u01, u23, 0, 1, 4, 5), l3 = wasm_i32x4_shuffle(u01, u23, 2, 3, 6, 7);
    wasm_v128_store(s + j, wasm_f32x4_add(wasm_f32x4_add(l0, l1), wasm_f32x4_add(l2, l3)));
    for (size_t i = n8; i < n; ++i) {
      s[j] += q[i] * k0[i];
      s[j + 1] += q[i] * k1[i];
      s[j + 2] += q[i] * k2[i];
      s[j + 3] += q[i] * k3[i];
    }
  }
#endif
  for (; j < nk; ++j) s[j] = dot_f32(q, k + j * stride, n);
}

void axpys_f32(const float* c, const float* x, size_t stride, size_t nk, float* y, size_t n) {
  size_t i = 0;
#if WEBQUANT_SIMD
  // 32 outputs held in registers over all keys, then 4; each lane adds c[j] * x in key order, as
  // axpy_f32's lanes do.
  for (; i + 32 <= n; i += 32) {
    v128_t y0 = wasm_v128_load(y + i), y1 = wasm_v128_load(y + i + 4);
    v128_t y2 = wasm_v128_load(y + i + 8), y3 = wasm_v128_load(y + i + 12);
    v128_t y4 = wasm_v128_load(y + i + 16), y5 = wasm_v128_load(y + i + 20);
    v128_t y6 = wasm_v128_load(y + i + 24), y7 = wasm_v128_load(y + i + 28);
    for (size_t j = 0; j < nk; ++j) {
      const float* xj = x + j * stride + i;
      const v128_t cj = wasm_f32x4_splat(c[j]);
      y0 = wasm_f32x4_add(y0, wasm_f32x4_mul(cj, wasm_v128_load(xj)));
      y1 = wasm_f32x4_add(y1, wasm_f32x4_mul(cj, wasm_v128_load(xj + 4)));
      y2 = wasm_f32x4_add(y2, wasm_f32x4_mul(cj, wasm_v128_load(xj + 8)));
      y3 = wasm_f32x4_add(y3, wasm_f32x4_mul(cj, wasm_v128_load(xj + 12)));
      y4 = wasm_f32x4_add(y4, wasm_f32x4_mul(cj, wasm_v128_load(xj + 16)));
      y5 = wasm_f32x4_add(y5, wasm_f32x4_mul(cj, wasm_v128_load(xj + 20)));
      y6 = wasm_f32x4_add(y6, wasm_f32x4_mul(cj, wasm_v128_load(xj + 24)));
      y7 = wasm_f32x4_add(y7, wasm_f32x4_mul(cj, wasm_v128_load(xj + 28)));
    }
    wasm_v128_store(y + i, y0);
    wasm_v128_store(y + i + 4, y1);
    wasm_v128_store(y + i + 8, y2);
    wasm_v128_store(y + i + 12, y3);
    wasm_v128_store(y + i + 16, y4);
    wasm_v128_store(y + i + 20, y5);
    wasm_v128_store(y + i + 24, y6);
    wasm_v128_store(y + i + 28, y7);
  }
  for (; i + 4 <= n; i += 4) {
    v128_t acc = wasm_v128_load(y + i);
    for (size_t j = 0; j < nk; ++j)
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(c[j]), wasm_v128_load(x + j * stride + i)));
    wasm_v128_store(y + i, acc);
  }
#endif
  for (; i < n; ++i) {
    float acc = y[i];
    for (size_t j = 0; j < nk; ++j) acc += c[j] * x[j * stride + i];
    y[i] = acc;
  }
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
    case Activation::kSilu: kernels::silu_f32__ref(&x, nullptr, 1); return x;  // as silu_f32
    case Activation::kGeluExact: return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
    case Activation::kGeluTanh: {
      const float c = 0.79788456080286536f;  // sqrt(2 / pi)
      return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
    }
    case Activation::kRelu: return x > 0.0f ? x : 0.0f;
  }
  return x;
}

// Element-wise work of at least this many elements is a region of its own, split over the pool
// (an ungated MLP's activation, prefill; a decode step's gated MLP applies its act(gate) * up
// inside the gate/up hand-off instead, Mlp::forward). Below it a hand-off costs about as much as
// it saves. Every element is computed the same way whichever thread runs it, so results do not
// depend on the thread count.
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

// SiLU runs on the silu_f32 kernel (kernels.h: the same bits as act1's formula with std::exp).
void activate(Activation a, float* x, size_t n) {
  elementwise(n, [=](size_t begin, size_t end) {
    if (a == Activation::kSilu) return kernels::silu_f32__wasmsimd(x + begin, nullptr, end - begin);
    for (size_t i = begin; i < end; ++i) x[i] = act1(a, x[i]);
  });
}

void activate_mul(Activation a, float* g, const float* u, size_t n) {
  elementwise(n, [=](size_t begin, size_t end) {
    if (a == Activation::kSilu) return kernels::silu_f32__wasmsimd(g + begin, u + begin, end - begin);
    for (size_t i = begin; i < end; ++i) g[i] = act1(a, g[i]) * u[i];
  });
}

}  // namespace webquant::nn
