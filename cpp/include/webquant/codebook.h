// Non-uniform 4-bit codes: a 16-entry float table per layer and one absmax scale per group,
//   W[j, c] = scale[j, g] * table[idx[j, c]],   scale = max |W| over the group (g = c / G),
// idx the table entry nearest to W / scale (ties to the lower index). Tables (ascending):
//  * nf4:     QLoRA's NormalFloat4 (Dettmers et al. 2023; bitsandbytes' values, exactly): the
//             quantiles of N(0, 1) scaled to [-1, 1], with an exact 0.
//  * log4:    power-of-two (logarithmic) code: 0 and +-2^-e for e = 0..6, plus -0 (sign and a
//             3-bit exponent; every weight is scale times a power of two).
//  * kmeans4: learned per tensor: 16 centroids of the normalised values W / scale of every group
//             (Lloyd's algorithm, started at the nf4 table, `iters` rounds; an empty cluster
//             keeps its centroid).
// A group of zeros gets scale 1 (and index of 0.0 where the table has it).
#pragma once

#include <cstddef>
#include <cstdint>

#include "webquant/status.h"

namespace webquant {

enum class Codebook : int { kNone = 0, kNf4 = 1, kLog4 = 2, kKmeans4 = 3 };
const char* codebook_name(Codebook c);  // "none", "nf4", "log4", "kmeans4"

// The published NF4 table (bitsandbytes' NF4 code), ascending.
extern const float kNf4Table[16];

// The table of a fixed code (kNf4, kLog4) in out[16]. kInvalidArgument for kNone / kKmeans4.
Status fixed_codebook(Codebook c, float out[16]);

// k-means table of w [rows, cols] in groups of `group` along cols, iters >= 0. When group does not
// divide cols the last group of each row is ragged (cols - (ng - 1) group elements, ng =
// ceil(cols / group)) and scaled by its own absmax.
Status kmeans_codebook(const float* w, size_t rows, size_t cols, size_t group, int iters,
                       float out[16]);

// Indices (rows * cols bytes, < 16) and absmax scales (rows * ng floats, > 0) of w
// against `table` (16 finite floats, ascending). kNonFinite for NaN / Inf in w.
Status codebook_quantize(const float* w, size_t rows, size_t cols, size_t group,
                         const float table[16], uint8_t* idx, float* scales);

}  // namespace webquant
