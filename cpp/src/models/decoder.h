// What every decoder architecture shares (internal): one cached self-attention per layer, the
// cache growth and accounting over them, and the scratch rows of a forward pass.
#pragma once

#include <vector>

#include "nn/blocks.h"
#include "webquant/causal_lm.h"
#include "webquant/threads.h"

namespace webquant::models {

class Decoder : public Architecture {
 public:
  void reserve_cache(int positions) override {
    for (nn::CachedAttention& a : attn_) a.reserve(positions);
  }
  size_t kv_cache_bytes() const override {
    size_t b = 0;
    for (const nn::CachedAttention& a : attn_) b += a.cache_bytes();
    return b;
  }

 protected:
  // Sizes the scratch rows for n tokens: x, a, tmp [n, hidden]; q, att [n, q_width]; k, v
  // [n, kv_width].
  void scratch(size_t n, size_t hidden, size_t q_width, size_t kv_width) {
    x_.resize(n * hidden);
    a_.resize(n * hidden);
    tmp_.resize(n * hidden);
    q_.resize(n * q_width);
    att_.resize(n * q_width);
    k_.resize(n * kv_width);
    v_.resize(n * kv_width);
  }
  // logits [rows, vocab] of the last `rows` of the n rows of x: head(norm(x)).
  void output(const Weights& w, const nn::Norm& norm, const nn::Linear& head, size_t n, size_t rows,
              size_t hidden, float* logits) {
    ProfileRegion region(RegionKind::kHead);
    norm.forward(w, &x_[(n - rows) * hidden], rows, a_.data());
    head.forward(w, a_.data(), rows, logits);
  }

  // One per layer, configured by the architecture's build().
  std::vector<nn::CachedAttention> attn_;
  // Scratch, grown to the largest batch seen: x (residual stream), a (normed), q / k / v, att
  // (attention output), tmp (block output), h / g (MLP hidden).
  std::vector<float> x_, a_, q_, k_, v_, att_, tmp_, h_, g_;
};

}  // namespace webquant::models
