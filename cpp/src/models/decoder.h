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
  // forward() is embed -> every block -> head for every decoder architecture, so the block-wise
  // entry points below (calibration) compute exactly what forward() does.
  void forward(const Weights& w, const int32_t* tokens, size_t n, int pos, size_t rows,
               float* logits) final {
    begin(n, pos);
    embed_rows(w, tokens, n, pos, x_.data());
    for (int b = 0; b < num_blocks(); ++b) block(w, b, x_.data(), n, pos);
    head(w, x_.data(), n, rows, logits);
  }
  int num_blocks() const final { return static_cast<int>(attn_.size()); }
  void embed(const Weights& w, const int32_t* tokens, size_t n, int pos, float* x) final {
    begin(n, pos);
    embed_rows(w, tokens, n, pos, x);
  }
  void run_block(const Weights& w, int b, float* x, size_t n, int pos) final {
    begin(n, pos);
    block(w, b, x, n, pos);
  }
  void run_head(const Weights& w, const float* x, size_t n, size_t rows, float* logits) final {
    begin(n, 0);
    head(w, x, n, rows, logits);
  }
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
  void output(const Weights& w, const nn::Norm& norm, const nn::Linear& head, const float* x,
              size_t n, size_t rows, size_t hidden, float* logits) {
    ProfileRegion region(RegionKind::kHead);
    norm.forward(w, &x[(n - rows) * hidden], rows, a_.data());
    head.forward(w, a_.data(), rows, logits);
  }
  // The pieces of forward(), written by each architecture. begin() sizes the scratch (and
  // position tables) for n tokens at pos; the others assume it was called for the same n and pos.
  virtual void begin(size_t n, int pos) = 0;
  virtual void embed_rows(const Weights& w, const int32_t* tokens, size_t n, int pos, float* x) = 0;
  // Block b in place on the residual stream x [n, hidden].
  virtual void block(const Weights& w, int b, float* x, size_t n, int pos) = 0;
  virtual void head(const Weights& w, const float* x, size_t n, size_t rows, float* logits) = 0;

  // One per layer, configured by the architecture's build().
  std::vector<nn::CachedAttention> attn_;
  // Scratch, grown to the largest batch seen: x (residual stream), a (normed), q / k / v, att
  // (attention output), tmp (block output), h / g (MLP hidden).
  std::vector<float> x_, a_, q_, k_, v_, att_, tmp_, h_, g_;
};

}  // namespace webquant::models
