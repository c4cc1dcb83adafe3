// HQQ: half-quadratic quantization (Badri & Shaji, 2023; reference code mobiusml/hqq,
// optimize_weights_proximal_legacy). Calibration-free: per group of G consecutive weights it keeps
// RTN's asymmetric scale and moves the zero point, as a float, to minimise the l_p norm (p < 1) of
// the reconstruction error with a half-quadratic proximal solver:
//
//   inv = qmax / (max - min),  z = -min * inv                     (start: RTN with a float zero)
//   repeat `iters` times:
//     q   = clamp(round_half_even(w * inv + z), 0, qmax)
//     wr  = (q - z) / inv
//     e   = shrink_p(w - wr, beta)                                 (generalised soft threshold)
//     z   = mean(q - (w - e) * inv)
//     beta *= kappa
//   shrink_p(x, beta) = sign(x) * max(|x| - |x|^(p - 1) / beta, 0)
// With HqqParams::clip_steps > 0 the loop also runs from shrunken ranges (a grid search of the
// clipping ratio, as GPTQ's MSE quantizer does), keeping the start with the lowest squared error.
//
// Codes are unsigned, u in [0, qmax = 2^bits - 1], and the dequantized weight is
// w' = s * (u - z) with s = 1 / inv (float) and z a float zero point (not an integer code).
//
// Differences from the reference, each documented where it is implemented:
//  * The reference stops the whole tensor when its mean |w - wr| stops improving and returns the
//    zero of the step after the best one; here every group stops on its own and keeps the zero of
//    its best step (lowest mean |w - wr|), which can only lower the error.
//  * A group keeps HQQ's parameters only when their squared error is no larger than that of RTN
//    (the course's asymmetric scale and integer zero point); otherwise it keeps RTN's, so HQQ is
//    never worse than RTN per group in squared error. The number of such groups is reported.
//  * A constant group (max == min) uses RTN's parameters (the course's safe scale).
#pragma once

#include <cstddef>
#include <cstdint>

#include "webquant/status.h"

namespace webquant {

// The reference's defaults (opt_params of optimize_weights_proximal_legacy), and webquant's range
// search (off by default).
struct HqqParams {
  float lp_norm = 0.7f;
  float beta = 10.0f;
  float kappa = 1.01f;
  int iters = 20;
  // Range search: besides the group's own range [min, max], the solver also starts from the
  // shrunken ranges [r min, r max], r = 1 - (1 - clip_min) k / clip_steps for k = 1..clip_steps
  // (scale (max - min) r / qmax, zero -r min / scale, then the zero iterations), and the start
  // whose result has the lowest squared error wins (a shrunken start must beat the others
  // strictly; the RTN comparison below still applies). 0 = off (HQQ as published). Costs
  // clip_steps + 1 solver runs per group. clip_steps in [0, 100], clip_min in (0, 1].
  int clip_steps = 0;
  float clip_min = 0.7f;
};

struct HqqStats {
  size_t groups = 0;
  size_t rtn_kept = 0;  // groups where RTN's parameters had the lower squared error
};

// Quantizes w [rows, cols] row-major in groups of `group` consecutive elements along cols
// (group == cols is per channel) to `bits` in {2, 3, 4, 8}. ng = ceil(cols / group) groups per
// row: when group does not divide cols the last group of each row is ragged (cols - (ng-1) group
// elements) and is solved on its own elements only.
// codes: rows * cols bytes, unsigned codes in [0, 2^bits - 1].
// scales, zeros: rows * ng floats each; w'[r, c] = scales[k] * (codes - zeros[k]),
// k = r * ng + c / group. Scales are finite and > 0; zeros are finite.
// Errors: kInvalidArgument (bits, sizes, group, null pointers, params), kNonFinite (NaN/Inf in w).
// stats may be nullptr.
Status hqq_quantize(const float* w, size_t rows, size_t cols, size_t group, int bits,
                    const HqqParams& params, uint8_t* codes, float* scales, float* zeros,
                    HqqStats* stats);

// The plain scalar reference of one group (n values), written for clarity: the loop above, then
// the RTN comparison. Returns true when HQQ's parameters were kept (false: RTN's).
bool hqq_quantize_group__ref(const float* w, size_t n, int bits, const HqqParams& params,
                             uint8_t* codes, float* scale, float* zero);
// The same solver as the reference, tuned: |x|^(p-1) through a polynomial exp2/log2 (within
// 0.3 % for p = 0.7) instead of std::pow, and sums kept in float (hqq_quantize runs its SIMD
// twin below); it may pick a slightly different zero than the reference, never a worse one than
// RTN's.
bool hqq_quantize_group(const float* w, size_t n, int bits, const HqqParams& params,
                        uint8_t* codes, float* scale, float* zero);
// hqq_quantize_group with its per-element work in WASM SIMD128 lanes (per-lane sums added once per
// step, so the zero can differ from the scalar twin's in the last bits); what hqq_quantize runs in
// SIMD builds. In a build without SIMD it is the scalar twin.
bool hqq_quantize_group__wasmsimd(const float* w, size_t n, int bits, const HqqParams& params,
                                  uint8_t* codes, float* scale, float* zero);

}  // namespace webquant
