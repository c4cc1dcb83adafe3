// Data types and their ranges (the course's torch.iinfo / torch.finfo).
#pragma once

#include <cstdint>
#include <string>

#include "webquant/status.h"

namespace webquant {

enum class DType : int {
  kInt8, kUInt8, kInt4, kUInt4, kInt3, kUInt3, kInt2, kUInt2,
  kFloat32, kFloat16, kBFloat16,
};

// iinfo-style facts for integer types (is_float == false): bits, min, max.
// finfo-style facts for float types: also eps, smallest_normal (== tiny), resolution
// (10^-precision, as torch.finfo). Values are exact in double.
struct DTypeInfo {
  const char* name;  // "int8", "bfloat16", ...
  bool is_float;
  bool is_signed;
  int bits;
  double min;
  double max;
  double eps;              // float only; 0 for integers
  double smallest_normal;  // float only
  double tiny;             // float only; same as smallest_normal (torch.finfo.tiny)
  double resolution;       // float only
  double smallest_subnormal;  // float only
};

// Parses a dtype name ("int8", "uint4", "float16", "fp16", "bf16", ...). Unknown names give
// kInvalidArgument with the list of known names.
Status parse_dtype(const std::string& name, DType* out);
DTypeInfo dtype_info(DType dtype);

// Integer code range for a bit width: signed [-2^(b-1), 2^(b-1)-1], unsigned [0, 2^b-1].
inline int32_t qmin_of(int bits, bool is_signed) { return is_signed ? -(1 << (bits - 1)) : 0; }
inline int32_t qmax_of(int bits, bool is_signed) {
  return is_signed ? (1 << (bits - 1)) - 1 : (1 << bits) - 1;
}

}  // namespace webquant
