// T5's relative position buckets (internal; transformers modeling_t5.py, T5Attention). The
// attention itself (an additive per-head bias, no 1/sqrt(d) scaling) is nn::attend_row.
#pragma once

namespace webquant::models::t5 {

// T5Attention._relative_position_bucket for relative_position = key_pos - query_pos.
// bidirectional (encoder): half the buckets for keys after the query; causal (decoder): only
// keys at or before the query count (later ones fall into bucket 0). Within each half, distances
// below max_exact = buckets/2 get their own bucket, larger ones share logarithmic buckets up to
// max_distance. The logarithm is computed in float32, as torch does on a float32 tensor.
int relative_position_bucket(int relative_position, bool bidirectional, int num_buckets,
                             int max_distance);

}  // namespace webquant::models::t5
