// The shared blocks of the module layer against plain double-precision computations written here:
// attention (causal and bidirectional, with a key mask, grouped-query), the cached attention's
// agreement with the uncached one, LayerNorm / RMSNorm, the MLP block's plain and gated forms; the
// attention loops over several keys at once (dots_f32, axpys_f32) equal one dot_f32 / axpy_f32 per
// key bit for bit.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "nn/blocks.h"
#include "nn/ops.h"

using namespace webquant;

namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

// softmax(q.k * scale) v in double for query i over keys j in [0, last) with mask.
std::vector<double> naive(const std::vector<float>& q, const std::vector<float>& k,
                          const std::vector<float>& v, size_t n, int H, int KVH, int hd, float scale,
                          bool causal, const std::vector<uint8_t>& mask) {
  std::vector<double> out(n * H * hd, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (int h = 0; h < H; ++h) {
      const int kh = h / (H / KVH);
      std::vector<double> s;
      std::vector<size_t> js;
      for (size_t j = 0; j < (causal ? i + 1 : n); ++j) {
        if (!mask.empty() && !mask[j]) continue;
        double d = 0;
        for (int c = 0; c < hd; ++c) d += double(q[(i * H + h) * hd + c]) * k[(j * KVH + kh) * hd + c];
        s.push_back(d * scale);
        js.push_back(j);
      }
      if (s.empty()) continue;
      double mx = s[0], sum = 0;
      for (double x : s) mx = std::max(mx, x);
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (size_t t = 0; t < s.size(); ++t) {
        for (int c = 0; c < hd; ++c) out[(i * H + h) * hd + c] += s[t] / sum * v[(js[t] * KVH + kh) * hd + c];
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("nn: self-attention, bidirectional and causal, with a key mask and grouped-query heads") {
  const size_t n = 7;
  const int H = 4, KVH = 2, hd = 8;
  const float scale = 0.35f;
  const auto q = randn(n * H * hd, 1), k = randn(n * KVH * hd, 2), v = randn(n * KVH * hd, 3);
  std::vector<float> out(n * H * hd), scores;
  for (bool causal : {false, true}) {
    for (const std::vector<uint8_t>& mask : {std::vector<uint8_t>{}, std::vector<uint8_t>{1, 1, 0, 1, 1, 0, 0}}) {
      CAPTURE(causal);
      CAPTURE(mask.size());
      nn::self_attention(q.data(), k.data(), v.data(), n, H, KVH, hd, scale, causal,
                         mask.empty() ? nullptr : mask.data(), &scores, out.data());
      const std::vector<double> want = naive(q, k, v, n, H, KVH, hd, scale, causal, mask);
      for (size_t i = 0; i < out.size(); ++i) REQUIRE(std::fabs(out[i] - want[i]) <= 2e-6 * (1 + std::fabs(want[i])));
    }
  }
  // Bidirectional: the first query sees later keys, so it differs from the causal result.
  std::vector<float> causal(n * H * hd);
  nn::self_attention(q.data(), k.data(), v.data(), n, H, KVH, hd, scale, true, nullptr, &scores, causal.data());
  nn::self_attention(q.data(), k.data(), v.data(), n, H, KVH, hd, scale, false, nullptr, &scores, out.data());
  CHECK(std::fabs(out[0] - causal[0]) > 1e-3);
  // ... and the last query sees every key either way.
  const size_t last = (n - 1) * H * hd;
  for (size_t c = 0; c < H * hd; ++c) CHECK(out[last + c] == causal[last + c]);

  // The cached attention (decoders) computes the causal result, token by token.
  nn::CachedAttention cached;
  cached.n_heads = H;
  cached.n_kv_heads = KVH;
  cached.head_dim = hd;
  cached.scale = scale;
  cached.reserve(static_cast<int>(n));
  std::vector<float> step(n * H * hd);
  cached.forward(q.data(), k.data(), v.data(), 3, 0, step.data());
  cached.forward(q.data() + 3 * H * hd, k.data() + 3 * KVH * hd, v.data() + 3 * KVH * hd, n - 3, 3,
                 step.data() + 3 * H * hd);
  for (size_t i = 0; i < step.size(); ++i) CHECK(std::fabs(step[i] - causal[i]) <= 1e-6f);

  // A query whose keys are all masked gets zeros.
  const std::vector<uint8_t> none(n, 0);
  nn::self_attention(q.data(), k.data(), v.data(), n, H, KVH, hd, scale, false, none.data(), &scores, out.data());
  for (float x : out) CHECK(x == 0.0f);
}

TEST_CASE("nn: LayerNorm and RMSNorm follow their definitions") {
  const int d = 37;
  const auto x = randn(d, 4), w = randn(d, 5), b = randn(d, 6);
  std::vector<float> y(d);
  nn::layer_norm(x.data(), w.data(), b.data(), d, 1e-5f, y.data());
  double mean = 0, var = 0;
  for (float t : x) mean += t;
  mean /= d;
  for (float t : x) var += (t - mean) * (t - mean);
  var /= d;
  for (int i = 0; i < d; ++i) CHECK(y[i] == doctest::Approx((x[i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i]).epsilon(1e-5));
  nn::rms_norm(x.data(), w.data(), d, 1e-6f, y.data());
  double ms = 0;
  for (float t : x) ms += double(t) * t;
  ms /= d;
  for (int i = 0; i < d; ++i) CHECK(y[i] == doctest::Approx(x[i] / std::sqrt(ms + 1e-6) * w[i]).epsilon(1e-5));
}

TEST_CASE("nn: activations match their formulas") {
  for (float x : {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f}) {
    float a = x, b = x, c = x, r = x;
    nn::activate(nn::Activation::kGeluExact, &a, 1);
    nn::activate(nn::Activation::kGeluTanh, &b, 1);
    nn::activate(nn::Activation::kSilu, &c, 1);
    nn::activate(nn::Activation::kRelu, &r, 1);
    const double xd = x;
    CHECK(a == doctest::Approx(0.5 * xd * (1 + std::erf(xd / std::sqrt(2.0)))).epsilon(1e-6));
    CHECK(b == doctest::Approx(0.5 * xd * (1 + std::tanh(std::sqrt(2 / 3.14159265358979323846) * (xd + 0.044715 * xd * xd * xd)))).epsilon(1e-6));
    CHECK(c == doctest::Approx(xd / (1 + std::exp(-xd))).epsilon(1e-6));
    CHECK(r == (x > 0 ? x : 0.0f));
  }
  nn::Activation a;
  CHECK(nn::parse_activation("gelu_pytorch_tanh", &a));
  CHECK(a == nn::Activation::kGeluTanh);
  CHECK_FALSE(nn::parse_activation("mish", &a));
}

TEST_CASE("nn: dots_f32 and axpys_f32 equal one dot_f32 / axpy_f32 per key, bit for bit") {
  for (size_t n : {1u, 3u, 4u, 7u, 8u, 12u, 31u, 32u, 36u, 64u, 67u, 80u, 128u}) {
    for (size_t nk : {1u, 2u, 3u, 4u, 5u, 8u, 9u, 30u}) {
      CAPTURE(n);
      CAPTURE(nk);
      const size_t stride = n + 5;  // keys are rows of a wider cache
      const auto q = randn(n, 1), k = randn(nk * stride, 2), c = randn(nk, 3), y0 = randn(n, 4);
      std::vector<float> s(nk), y = y0, yr = y0;
      nn::dots_f32(q.data(), k.data(), stride, nk, n, s.data());
      nn::axpys_f32(c.data(), k.data(), stride, nk, y.data(), n);
      for (size_t j = 0; j < nk; ++j) {
        const float d = nn::dot_f32(q.data(), k.data() + j * stride, n);
        CHECK(std::memcmp(&s[j], &d, 4) == 0);
        nn::axpy_f32(c[j], k.data() + j * stride, yr.data(), n);
      }
      CHECK(std::memcmp(y.data(), yr.data(), n * 4) == 0);
    }
  }
}
