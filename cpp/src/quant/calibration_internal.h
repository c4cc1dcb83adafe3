// Internal pieces shared by the calibrated methods (gptq.cpp, awq.cpp, linear_make.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "webquant/calibration.h"
#include "webquant/causal_lm.h"
#include "webquant/linear.h"
#include "webquant/status.h"

namespace webquant::calib_detail {

Status invalid(std::string m);
// Runs the model over calib.tokens in sequences of calib.sequence_length (the cache reset before
// each), so the layers' observers see the calibration activations; the cache is reset after, and
// on an error (returned with "calibration: " before its message).
Status run_calibration(CausalLM* model, const CalibrationOptions& calib);
// Weight bits of a quantized scheme, 0 for f32 / unknown.
int spec_bits(LinearScheme s);
// Validates the common arguments; *group is the effective group (in_features on fallback, with
// *fallback = "172 % 32 != 0" and *note as make_linear_quantized's).
// h == nullptr skips the Hessian checks when check_h is false (GPTQ on a prepared factor).
Status check_layer_args(const float* w, int out_features, int in_features, const double* h,
                        const LinearQuantSpec& spec, int* bits, int* group, std::string* fallback,
                        std::string* note, bool check_h = true);
// clamp(round_half_even(w / s + z)) to the signed range of `bits` (the RTN kernels' rounding).
int32_t round_code(float w, float s, int32_t z, int bits);
// make_linear_from_quantized of d with the bias copied in (bias may be null).
Status build_layer(LinearQuantizedData d, const float* bias, std::unique_ptr<LinearLayer>* out);
// In-place lower Cholesky factor of a symmetric n x n matrix (upper triangle zeroed); false when
// not positive definite. The plain reference (gptq_linalg.cpp).
bool cholesky_lower(std::vector<double>* a, int n);

// U upper [n, n] row-major float with H^-1 = U^T U, from a symmetric H [n, n] double (both
// triangles set); false when H is not positive definite. Computed in double: the reference in plain
// loops, the fast one blocked (four rows / right-hand sides per pass) with f64x2 dot products.
bool upper_cholesky_of_inverse__ref(const std::vector<double>& h, int n, std::vector<float>* u);
bool upper_cholesky_of_inverse(const std::vector<double>& h, int n, std::vector<float>* u);

// h [c, c] row-major double, upper triangle (j >= i) += X^T X of x [m, c]. The reference sums each
// product in double; the fast one runs the SIMD float32 GEMM on tiles of 128 tokens (float32 sums
// of at most 128 products) and adds each tile to h in double. work: scratch, grown as needed.
void accumulate_gram__ref(const float* x, size_t m, size_t c, double* h);
void accumulate_gram(const float* x, size_t m, size_t c, double* h, std::vector<float>* work);

// The half of GPTQ that depends on the Hessian only, shared by the layers that read the same input
// (q/k/v, gate/up): dead columns (H[i,i] == 0), the act-order permutation, dampening and U.
struct GptqFactor {
  int n = 0;
  std::vector<uint8_t> dead;  // [n] 1: a never active input (its weights are zeroed)
  std::vector<size_t> perm;   // [n] column processed at step i (identity without act-order)
  std::vector<float> u;       // [n, n] upper Cholesky factor of the permuted dampened H^-1
};
// Errors: kInvalidArgument (null h, n < 1, dampening, not positive definite), kNonFinite (h).
Status gptq_factor(const double* h, int n, const GptqOptions& opt, GptqFactor* out);
// gptq_quantize_linear on a factor of the layer's Hessian (f.n == in_features; made with the same
// options). Same results and errors.
Status gptq_quantize_factored(const float* w, int out_features, int in_features, const float* bias,
                              const GptqFactor& f, const LinearQuantSpec& spec,
                              const GptqOptions& opt, std::unique_ptr<LinearLayer>* out,
                              std::string* note);

// A layer that divides its input by per-input-channel scales before `inner` (AWQ):
// y = inner((x * (1 / s))). s: [in], finite and > 0 (validated by the caller).
std::unique_ptr<LinearLayer> make_linear_input_scaled(std::unique_ptr<LinearLayer> inner,
                                                      std::vector<float> s);
// The inner layer of a make_linear_input_scaled layer, or nullptr for any other layer.
const LinearLayer* input_scaled_inner(const LinearLayer* l);

// quantize_calibrated's GPTQ / AWQ pass (options.method kGptq or kAwq; calib.activations unused).
// input_scales (may be null): per linear index, the SmoothQuant factors s of a layer that is a
// make_linear_input_scaled float layer (empty: none); such a layer is quantized from its inner W'
// on the input it sees (x / s: H' = D H D, D = diag(1 / s)) and keeps s as its input scales
// (times AWQ's own). Errors as quantize_calibrated.
Status quantize_weights_calibrated(CausalLM* model, const ModelQuantOptions& options,
                                   const CalibrationOptions& calib,
                                   std::vector<LayerQuantReport>* report,
                                   const CalibrationProgress& progress,
                                   const std::vector<std::vector<float>>* input_scales);

}  // namespace webquant::calib_detail
