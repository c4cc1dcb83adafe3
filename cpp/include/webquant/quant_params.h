// Quantized tensors built from integer codes and GIVEN parameters: the inverse of the course's
// linear_q_with_scale_and_zero_point, i.e. its linear_dequantization r' = s * (q - z), with the
// scales / zero points laid out as quant.h's param_shape says (per-tensor {1}, per-channel
// {shape[axis]}, per-group {rows, ceil(last / G)}).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "webquant/quant.h"
#include "webquant/status.h"

namespace webquant {

// The param_shape (and its element count) a scheme implies for `shape`; the scheme's
// bits / axis / group size are validated as validate_scheme does.
Status param_shape_of(const QuantScheme& scheme, const std::vector<int64_t>& shape,
                      std::vector<int64_t>* param_shape, size_t* num_params);

// Builds a QuantizedTensor from `codes` (numel int32 values, row-major like `shape`), validating
// everything first: numel >= 1 and equal to the product of shape; each code within
// [qmin, qmax] of the scheme's bit width and signedness (an error names the first bad index);
// scales / zero points of the implied count, scales finite and > 0, zero points within
// [qmin, qmax] (symmetric schemes: exactly the fixed z, as quantize_with_params). On error `out`
// is untouched. dequantize(*out, ...) then gives s * (q - z).
Status quantized_from_codes(const int32_t* codes, const std::vector<int64_t>& shape,
                            const QuantScheme& scheme, const std::vector<float>& scales,
                            const std::vector<int32_t>& zero_points, QuantizedTensor* out);

// r' = s * (q - z) from codes and given parameters, with quantized_from_codes' validation;
// `out` receives numel floats and is untouched on error.
Status dequantize_with_params(const int32_t* codes, const std::vector<int64_t>& shape,
                              const QuantScheme& scheme, const std::vector<float>& scales,
                              const std::vector<int32_t>& zero_points, float* out);

}  // namespace webquant
