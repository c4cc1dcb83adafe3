// The Llama graph's forward pass over whole sequences with its activations kept, and its backward
// pass (internal to QuantDistiller, webquant/distill.h). Same semantics as models/llama/llama.cpp:
//   n1 = rmsnorm(x) g1;  q, k, v = n1 Wq^T (+bq), ...;  rope(q), rope(k) (rotate_half);
//   att = softmax(q k^T / sqrt(hd), causal) v  (query head h reads KV head h / (heads / kv_heads));
//   h = x + att Wo^T;  n2 = rmsnorm(h) g2;  x' = h + (silu(n2 Wg^T) * (n2 Wu^T)) Wd^T;
//   logits = rmsnorm(x_L) gf E^T.
// Gradients flow to the linear weights and the norm weights; the embedding, head and biases are
// frozen. Everything float32; row statistics (rms, softmax sums) in double.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "webquant/llama.h"

namespace webquant::train {

// The weights one pass reads (not owned). lin[l][j], j in LlamaGrad::kQ..kDown: [out, in].
struct LlamaParams {
  struct Layer {
    const float* lin[7] = {};
    const float* bias[7] = {};  // null when the layer has none
    const float* norm1 = nullptr;
    const float* norm2 = nullptr;
  };
  std::vector<Layer> layers;
  const float* final_norm = nullptr;
  const float* embed = nullptr;  // [vocab, hidden]
  const float* head = nullptr;   // [vocab, hidden] (the embedding when tied)
};

// Gradients of the trainable weights (same shapes; accumulated by backward()).
struct LlamaGrads {
  struct Layer {
    std::vector<float> lin[7];
    std::vector<float> norm1, norm2;
  };
  std::vector<Layer> layers;
  std::vector<float> final_norm;
};

class LlamaGrad {
 public:
  enum { kQ = 0, kK = 1, kV = 2, kO = 3, kGate = 4, kUp = 5, kDown = 6 };
  explicit LlamaGrad(const LlamaConfig& cfg);
  const LlamaConfig& config() const { return cfg_; }
  // [out, in] of linear j.
  int out_features(int j) const;
  int in_features(int j) const;

  // Runs batch x seq tokens (validated by the caller); logits [batch * seq, vocab] row-major.
  void forward(const LlamaParams& p, const int32_t* tokens, size_t batch, size_t seq,
               std::vector<float>* logits);
  // Zeroes and sizes g, then back-propagates dlogits [batch * seq, vocab] of the last forward().
  void backward(const LlamaParams& p, const float* dlogits, LlamaGrads* g);

 private:
  struct Acts {
    std::vector<float> x, r1, n1, q, k, v, probs, att, h, r2, n2, gate, up, act;
  };
  void attention(const Acts& a, size_t l, float* probs, float* att) const;
  void attention_backward(const Acts& a, const float* datt, float* dq, float* dk, float* dv) const;
  LlamaConfig cfg_;
  std::vector<float> inv_freq_;
  std::vector<float> cs_;  // [seq, head_dim]: cos then sin per position
  size_t batch_ = 0, seq_ = 0;
  std::vector<Acts> acts_;
  std::vector<float> xl_, rf_, nf_;
};

}  // namespace webquant::train
