#include "models/t5/t5_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

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

}  // namespace webquant::models::t5
