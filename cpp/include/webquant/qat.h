// Quantization-aware training (QAT): the pieces of a training step that are about quantization.
//
// A QAT forward pass uses fake-quantized weights r' = s (clamp(round(r / s + z), qmin, qmax) - z),
// with (s, z) computed from the current weights exactly as quantize() does (quant.h). The backward
// pass uses the straight-through estimator (STE; Bengio et al. 2013, and the "Quantization in
// Depth" slides' `x_q + (x - x_q).detach()`): round() is treated as the identity, so
// dL/dr = dL/dr' wherever r lies inside the representable range [s (qmin - z - 1/2),
// s (qmax - z + 1/2)], and 0 where the clamp cut the value off (PyTorch's FakeQuantize does the same).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "webquant/quant.h"
#include "webquant/status.h"

namespace webquant {

// For each element i of the tensor that `q` quantizes (q as quantize() left it, x the float values
// it was quantized from, q.numel() of them): pass[i] = 1 if x[i] / s + z lies within
// [qmin - 1/2, qmax + 1/2] for the element's own (s, z) (the gradient passes), 0 otherwise.
// kInvalidArgument if q is inconsistent (parameter counts that do not match its scheme and shape).
Status straight_through_mask(const QuantizedTensor& q, const float* x, uint8_t* pass);

// Index into q.scales / q.zero_points of element i (row-major over q.shape); q must be consistent.
size_t param_index(const QuantizedTensor& q, size_t i);

}  // namespace webquant
