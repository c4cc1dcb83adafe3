// Round-trip error metrics, accumulated in double so that long tensors do not lose the small
// errors of the last elements.
#include <cmath>
#include <limits>

#include "webquant/quant.h"

namespace webquant {

ErrorMetrics error_metrics(const float* reference, const float* approx, size_t n) {
  ErrorMetrics m;
  if (n == 0) {
    m.sqnr_db = std::numeric_limits<double>::infinity();  // nothing to get wrong
    return m;
  }
  double signal = 0, noise = 0, max_abs = 0;
  for (size_t i = 0; i < n; ++i) {
    const double r = reference[i];
    const double e = r - static_cast<double>(approx[i]);
    signal += r * r;
    noise += e * e;
    max_abs = std::fmax(max_abs, std::fabs(e));
  }
  m.mse = noise / static_cast<double>(n);
  m.max_abs = max_abs;
  // noise == 0: a perfect copy, +inf dB; signal == 0 with noise > 0 gives -inf (log10(0)).
  m.sqnr_db =
      noise == 0 ? std::numeric_limits<double>::infinity() : 10.0 * std::log10(signal / noise);
  return m;
}

}  // namespace webquant
