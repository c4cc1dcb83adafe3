// Magnitude pruning of a linear weight W [rows, cols] before quantization (in place):
//  * unstructured, sparsity p in [0, 1): the round(p * rows * cols) weights of smallest |w| in
//    the whole layer become 0 (ties: the lower flat index first);
//  * 2:4 (semi-structured, as NVIDIA's sparse tensor cores use): in every run of 4 consecutive
//    weights along a row, the 2 of smallest |w| become 0 (ties: the lower index first); cols must
//    be a multiple of 4.
// The zeros are exact in the float weights; the quantized layer keeps them as exact zeros where
// its code has an exact 0 (symmetric RTN, asymmetric RTN whose zero point is an integer code,
// the nf4 / log4 tables), and as the nearest code otherwise (HQQ's float zero point).
#pragma once

#include <cstddef>

#include "webquant/status.h"

namespace webquant {

struct PruneSpec {
  enum class Kind : int { kNone = 0, kUnstructured = 1, k2of4 = 2 };
  Kind kind = Kind::kNone;
  float sparsity = 0;  // kUnstructured: the fraction of weights set to 0, in [0, 1)
};

// Errors: kInvalidArgument (sparsity out of range, 2:4 with cols % 4 != 0, null w),
// kNonFinite (NaN / Inf in w; w is left unchanged). *zeroed (may be null): weights set to 0 by
// this call that were not 0 already.
Status prune_magnitude(float* w, size_t rows, size_t cols, const PruneSpec& spec, size_t* zeroed);

}  // namespace webquant
