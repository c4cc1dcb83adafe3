// What every decoder architecture shares (internal): one cached self-attention per layer, the
// cache growth and accounting over them, and the scratch rows of a forward pass.
#pragma once

#include <vector>

#include "nn/blocks.h"
#include "webquant/causal_lm.h"

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
  // One per layer, configured by the architecture's build().
  std::vector<nn::CachedAttention> attn_;
  // Scratch, grown to the largest batch seen: x (residual stream), a (normed), att (attention
  // output), tmp (block output), h / g (MLP hidden).
  std::vector<float> x_, a_, att_, tmp_, h_, g_;
};

}  // namespace webquant::models
