// T5's attention pieces (internal): relative position buckets and multi-head attention with an
// additive per-head bias and no 1/sqrt(d) scaling (transformers modeling_t5.py, T5Attention).
#pragma once

#include <cstddef>
#include <vector>

namespace webquant::models::t5 {

// T5Attention._relative_position_bucket for relative_position = key_pos - query_pos.
// bidirectional (encoder): half the buckets for keys after the query; causal (decoder): only
// keys at or before the query count (later ones fall into bucket 0). Within each half, distances
// below max_exact = buckets/2 get their own bucket, larger ones share logarithmic buckets up to
// max_distance. The logarithm is computed in float32, as torch does on a float32 tensor.
int relative_position_bucket(int relative_position, bool bidirectional, int num_buckets,
                             int max_distance);

// One query row q [heads * head_dim] against nk keys/values (rows of `stride` floats, head h at
// offset h * head_dim): out[h] = sum_j softmax_j(q_h . k_jh + bias[h * bias_stride + j]) v_jh.
// bias may be null (cross-attention). Softmax sums are accumulated in double. `scores` is scratch.
void attend_row(const float* q, const float* k, const float* v, size_t nk, size_t stride, int heads,
                int head_dim, const float* bias, size_t bias_stride, std::vector<float>* scores,
                float* out);

}  // namespace webquant::models::t5
