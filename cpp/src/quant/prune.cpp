// Magnitude pruning (webquant/prune.h).
#include "webquant/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace webquant {

Status prune_magnitude(float* w, size_t rows, size_t cols, const PruneSpec& spec, size_t* zeroed) {
  if (zeroed) *zeroed = 0;
  if (spec.kind == PruneSpec::Kind::kNone) return Status::Ok();
  if (!w) return Status::Error(StatusCode::kInvalidArgument, "prune: null weight");
  const size_t n = rows * cols;
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(w[i]))
      return Status::Error(StatusCode::kNonFinite, "prune: weight [" + std::to_string(i / cols) +
                                                       ", " + std::to_string(i % cols) +
                                                       "] is not finite");
  size_t count = 0;
  const auto zero = [&](size_t i) {
    count += w[i] != 0.0f;
    w[i] = 0.0f;
  };
  if (spec.kind == PruneSpec::Kind::kUnstructured) {
    if (!(spec.sparsity >= 0.0f && spec.sparsity < 1.0f))
      return Status::Error(StatusCode::kInvalidArgument,
                           "prune: sparsity must be in [0, 1) (got " + std::to_string(spec.sparsity) + ")");
    const size_t k = static_cast<size_t>(std::llround(double(spec.sparsity) * double(n)));
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t(0));
    const auto less = [w](size_t a, size_t b) {
      const float fa = std::fabs(w[a]), fb = std::fabs(w[b]);
      return fa < fb || (fa == fb && a < b);
    };
    if (k > 0 && k < n) std::nth_element(order.begin(), order.begin() + long(k), order.end(), less);
    for (size_t t = 0; t < k; ++t) zero(order[t]);
  } else if (spec.kind == PruneSpec::Kind::k2of4) {
    if (cols % 4 != 0)
      return Status::Error(StatusCode::kInvalidArgument,
                           "prune 2:4 needs in_features divisible by 4 (got " + std::to_string(cols) + ")");
    for (size_t b = 0; b < n; b += 4) {
      size_t idx[4] = {b, b + 1, b + 2, b + 3};
      std::sort(idx, idx + 4, [w](size_t a, size_t c) {
        const float fa = std::fabs(w[a]), fc = std::fabs(w[c]);
        return fa < fc || (fa == fc && a < c);
      });
      zero(idx[0]);
      zero(idx[1]);
    }
  } else {
    return Status::Error(StatusCode::kInvalidArgument, "prune: unknown kind");
  }
  if (zeroed) *zeroed = count;
  return Status::Ok();
}

}  // namespace webquant
