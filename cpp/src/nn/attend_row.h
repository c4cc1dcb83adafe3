// Attention of one query row over a set of keys (internal), and a decoder layer's cross-attention
// built on it: T5's attention (an additive relative position bias, no scaling) and the cross-
// attention of T5 (over the encoder output) and BLIP (over the image, scaled) run on them.
#pragma once

#include <cstddef>
#include <vector>

#include "nn/blocks.h"

namespace webquant::nn {

// One head of one query row: out[0, hd) = sum_j softmax_j(q . k_j * scale + bias[j]) v_j over nk
// keys and values (rows of `stride` floats from k and v), softmax sum in double; bias may be null.
// sc is scratch of nk floats. The decode attention's inner loop (CachedAttention) and attend_row's.
void attend_keys(const float* q, const float* k, const float* v, size_t nk, size_t stride, size_t hd,
                 float scale, const float* bias, float* sc, float* out);

// One query row q [heads * head_dim] against nk keys/values (rows of `stride` floats, head h at
// offset h * head_dim): out[h] = sum_j softmax_j(q_h . k_jh * scale + bias[h * bias_stride + j]) v_jh.
// bias may be null (no bias). Softmax sums are accumulated in double. `scores` is scratch.
void attend_row(const float* q, const float* k, const float* v, size_t nk, size_t stride, int heads,
                int head_dim, float scale, const float* bias, size_t bias_stride,
                std::vector<float>* scores, float* out);

// A decoder layer's cross-attention keys and values, projected once per encoded input.
struct CrossKv {
  std::vector<float> k, v;  // [len, width]
  size_t len = 0;

  // k = k_proj(enc), v = v_proj(enc) for the n rows of enc; width = the projections' out_features.
  void project(const Weights& w, const Linear& k_proj, const Linear& v_proj, const float* enc, size_t n,
               size_t width);
  // Each of the nq rows of q [nq, heads * head_dim] (= width) attends to all len keys (attend_row,
  // no bias) into the same row of out.
  void attend(const float* q, size_t nq, int heads, int head_dim, float scale, std::vector<float>* scores,
              float* out) const;
  size_t floats() const { return k.size() + v.size(); }
};

}  // namespace webquant::nn
