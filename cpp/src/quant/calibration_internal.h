// Internal pieces shared by the calibrated methods (gptq.cpp, awq.cpp, linear_layers.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "webquant/linear.h"
#include "webquant/status.h"

namespace webquant::calib_detail {

Status invalid(std::string m);
// Weight bits of a quantized scheme, 0 for f32 / unknown.
int spec_bits(LinearScheme s);
// Validates the common arguments; *group is the effective group (in_features on fallback, with
// *fallback = "172 % 32 != 0" and *note as make_linear_quantized's).
Status check_layer_args(const float* w, int out_features, int in_features, const double* h,
                        const LinearQuantSpec& spec, int* bits, int* group, std::string* fallback,
                        std::string* note);
// clamp(round_half_even(w / s + z)) to the signed range of `bits` (the RTN kernels' rounding).
int32_t round_code(float w, float s, int32_t z, int bits);
// make_linear_from_quantized of d with the bias copied in (bias may be null).
Status build_layer(LinearQuantizedData d, const float* bias, std::unique_ptr<LinearLayer>* out);
// In-place lower Cholesky factor of a symmetric n x n matrix (upper triangle zeroed); false when
// not positive definite.
bool cholesky_lower(std::vector<double>* a, int n);

// A layer that divides its input by per-input-channel scales before `inner` (AWQ):
// y = inner((x * (1 / s))). s: [in], finite and > 0 (validated by the caller).
std::unique_ptr<LinearLayer> make_linear_input_scaled(std::unique_ptr<LinearLayer> inner,
                                                      std::vector<float> s);

}  // namespace webquant::calib_detail
