#include "models/t5/t5_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "nn/ops.h"

namespace webquant::models::t5 {

int relative_position_bucket(int relative_position, bool bidirectional, int num_buckets,
                             int max_distance) {
  int bucket = 0;
  int n = num_buckets;
  int rp = relative_position;
  if (bidirectional) {
    n /= 2;
    if (rp > 0) bucket += n;
    rp = std::abs(rp);
  } else {
    rp = rp < 0 ? -rp : 0;  // -min(rp, 0)
  }
  const int max_exact = n / 2;
  if (rp < max_exact) return bucket + rp;
  // torch: max_exact + (log(rp.float() / max_exact) / log(max_distance / max_exact)
  //        * (n - max_exact)).to(long), every step in float32.
  const float ratio = static_cast<float>(rp) / static_cast<float>(max_exact);
  const float denom = static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact));
  const float scaled = std::log(ratio) / denom * static_cast<float>(n - max_exact);
  const int large = std::min(max_exact + static_cast<int>(scaled), n - 1);
  return bucket + large;
}

void attend_row(const float* q, const float* k, const float* v, size_t nk, size_t stride, int heads,
                int head_dim, const float* bias, size_t bias_stride, std::vector<float>* scores,
                float* out) {
  const size_t hd = static_cast<size_t>(head_dim);
  scores->resize(nk);
  float* sc = scores->data();
  for (int h = 0; h < heads; ++h) {
    const size_t off = static_cast<size_t>(h) * hd;
    const float* b = bias != nullptr ? bias + static_cast<size_t>(h) * bias_stride : nullptr;
    float mx = -INFINITY;
    for (size_t j = 0; j < nk; ++j) {
      sc[j] = nn::dot_f32(q + off, k + j * stride + off, hd) + (b != nullptr ? b[j] : 0.0f);
      mx = std::max(mx, sc[j]);
    }
    double sum = 0.0;
    for (size_t j = 0; j < nk; ++j) {
      sc[j] = std::exp(sc[j] - mx);
      sum += sc[j];
    }
    const float inv = static_cast<float>(1.0 / sum);
    float* o = out + off;
    std::fill(o, o + hd, 0.0f);
    for (size_t j = 0; j < nk; ++j) nn::axpy_f32(sc[j] * inv, v + j * stride + off, o, hd);
  }
}

}  // namespace webquant::models::t5
