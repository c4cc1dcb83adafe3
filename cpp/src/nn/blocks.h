// The shared blocks architectures are written in (internal): embeddings, norms, rotary position
// embedding, cached multi-head / grouped-query attention, MLPs. Weights live in the model's
// Weights registry; a block holds the handles VarBuilder returned and reads them at forward time,
// so quantizing or replacing a linear layer needs no change to any block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nn/ops.h"
#include "webquant/module.h"

namespace webquant::nn {

// Rows of a token embedding table: x[i] = table[tokens[i]] (ids validated by the caller). The
// table may be held quantized (int8 / int4 rows, Weights::gather_rows): rows are dequantized on
// gather.
struct Embedding {
  int table = -1;
  int dim = 0;
  void declare(VarBuilder vb, std::string_view name, int rows, int d);
  // Writes (or, with accumulate, adds) row ids[i] into x[i].
  void lookup(const Weights& w, const int32_t* ids, size_t n, bool accumulate, float* x) const;
  // The same for the consecutive rows first .. first+n-1 (learned positions).
  void rows(const Weights& w, int first, size_t n, bool accumulate, float* x) const;
};

enum class NormType : int { kLayerNorm = 0, kRmsNorm = 1 };

struct Norm {
  NormType type = NormType::kLayerNorm;
  int weight = -1, bias = -1;  // bias only for LayerNorm with bias
  int dim = 0;
  float eps = 1e-5f;
  // <name>.weight (+ <name>.bias for LayerNorm when `bias`).
  void declare(VarBuilder vb, std::string_view name, NormType t, int d, float epsilon, bool bias);
  void forward(const Weights& w, const float* x, size_t rows, float* y) const;
};

// A linear module handle.
struct Linear {
  int index = -1;
  void declare(VarBuilder vb, std::string_view name, int out, int in, bool bias, bool conv1d = false) {
    index = vb.linear(name, out, in, bias, conv1d);
  }
  void forward(const Weights& w, const float* x, size_t m, float* y) const {
    w.forward_linear(static_cast<size_t>(index), x, m, y);
  }
};

// Feed-forward block: down(act(up(x))), or with a gate (SiLU-gated / GEGLU) down(act(gate(x)) * up(x)).
struct Mlp {
  Linear up, down, gate;  // gate.index < 0: no gate
  Activation act = Activation::kGeluExact;
  int hidden = 0;         // intermediate width
  // out [n, out_features of down]; h (and g when gated) are scratch.
  void forward(const Weights& w, const float* x, size_t n, float* out, std::vector<float>* h,
               std::vector<float>* g) const;
};

// Rotary position embedding over the first `dims` dimensions of each head (rotate_half layout:
// for i < dims/2, v'[i] = v[i] cos - v[i + dims/2] sin, v'[i + dims/2] = v[i + dims/2] cos + v[i] sin;
// angle = float(pos) * inv_freq[i], inv_freq[i] = 1 / theta^(2i/dims) in float32, as HF).
struct Rotary {
  int dims = 0;
  std::vector<float> inv_freq;  // dims/2 entries (possibly rescaled by the architecture)
  void init(int rotary_dims, float theta);
  // cs[0..dims/2) = cos, cs[dims/2..dims) = sin for position pos.
  void cos_sin(int pos, float* cs) const;
  // Rotates the first `dims` of each of n_heads vectors of head_dim floats.
  void apply(float* v, int n_heads, int head_dim, const float* cs) const;
};

// Causal self-attention over a growing KV cache. q rows are [n_heads * head_dim], k/v rows are
// [n_kv_heads * head_dim] (grouped-query when fewer KV heads; query head h reads KV head
// h / (n_heads / n_kv_heads)). Scores are q.k * scale; softmax sums in double. The (token, head)
// pairs are split over the pool of webquant/threads.h (outputs bit-identical for every count).
struct CachedAttention {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;
  float scale = 1.0f;
  int sliding_window = 0;  // attend to the last W positions (0 = unlimited)

  void reserve(int positions);
  // Appends k/v rows of positions pos..pos+n-1 to the cache and writes attention outputs
  // [n, n_heads * head_dim] to out.
  void forward(const float* q, const float* k, const float* v, size_t n, int pos, float* out);
  size_t cache_bytes() const { return (k_cache_.size() + v_cache_.size()) * sizeof(float); }

 private:
  std::vector<float> k_cache_, v_cache_, scores_;
  int capacity_ = 0;
};

// Self-attention over n rows without a cache (encoders, bidirectional; or causal): query i attends
// to every key j with key_mask[j] != 0 (key_mask = nullptr: every key), and with `causal` only to
// j <= i. Layouts as CachedAttention (q [n, n_heads * head_dim], k / v [n, n_kv_heads * head_dim]);
// a query that may attend to no key gets zeros. `scores` is scratch (one slot per thread: the
// (token, head) pairs are split over webquant/threads.h's pool, bit-identical for every count).
void self_attention(const float* q, const float* k, const float* v, size_t n, int n_heads,
                    int n_kv_heads, int head_dim, float scale, bool causal, const uint8_t* key_mask,
                    std::vector<float>* scores, float* out);

// y[i] += x[i] for n floats.
void add_inplace(float* y, const float* x, size_t n);
// Adds bias[j] to every row of y [rows, d].
void add_bias(float* y, const float* bias, size_t rows, size_t d);

}  // namespace webquant::nn
