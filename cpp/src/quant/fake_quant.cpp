// The straight-through estimator's mask for quantization-aware training (webquant/qat.h).
#include <cmath>
#include <string>

#include "webquant/dtype.h"
#include "webquant/qat.h"

namespace webquant {

size_t param_index(const QuantizedTensor& q, size_t i) {
  const auto& shape = q.shape;
  switch (q.scheme.granularity) {
    case Granularity::kPerTensor: return 0;
    case Granularity::kPerChannel: {
      const int rank = static_cast<int>(shape.size());
      const int axis = q.scheme.axis < 0 ? q.scheme.axis + rank : q.scheme.axis;
      size_t inner = 1;
      for (int d = axis + 1; d < rank; ++d) inner *= static_cast<size_t>(shape[d]);
      return (i / inner) % static_cast<size_t>(shape[axis]);
    }
    case Granularity::kPerGroup: {
      const size_t last = static_cast<size_t>(shape.back());
      const size_t g = static_cast<size_t>(q.scheme.group_size);
      const size_t groups = (last + g - 1) / g;
      return (i / last) * groups + (i % last) / g;
    }
  }
  return 0;
}

Status straight_through_mask(const QuantizedTensor& q, const float* x, uint8_t* pass) {
  const size_t n = q.numel();
  if (n == 0) return Status::Ok();
  if (q.scales.empty() || q.scales.size() != q.zero_points.size() || q.shape.empty() ||
      q.shape.back() <= 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "straight_through_mask: the quantized tensor has no consistent parameters");
  const size_t last_param = param_index(q, n - 1);
  if (last_param >= q.scales.size())
    return Status::Error(StatusCode::kInvalidArgument,
                         "straight_through_mask: " + std::to_string(q.scales.size()) +
                             " scales do not cover the tensor's scheme (needs " +
                             std::to_string(last_param + 1) + ")");
  const double lo = qmin_of(q.scheme.bits, q.scheme.is_signed) - 0.5;
  const double hi = qmax_of(q.scheme.bits, q.scheme.is_signed) + 0.5;
  for (size_t i = 0; i < n; ++i) {
    const size_t p = param_index(q, i);
    // In double so that r / s + z sits on the same side of the bound as the float rounding did.
    const double v = static_cast<double>(x[i]) / q.scales[p] + q.zero_points[p];
    pass[i] = (v >= lo && v <= hi) ? 1 : 0;
  }
  return Status::Ok();
}

}  // namespace webquant
