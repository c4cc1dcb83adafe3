// dtype names and torch.iinfo / torch.finfo facts. Float values are written as hex literals so
// they are exact (e.g. bfloat16 max = (2 - 2^-7) * 2^127 = 3.3895313892515355e38).
#include "webquant/dtype.h"

#include <string>

namespace webquant {
namespace {

struct NamedDType {
  const char* name;
  DType dtype;
};

// Canonical names first, then aliases (torch spells them the same way).
constexpr NamedDType kNames[] = {
    {"int8", DType::kInt8},    {"uint8", DType::kUInt8},       {"int4", DType::kInt4},
    {"uint4", DType::kUInt4},  {"int3", DType::kInt3},         {"uint3", DType::kUInt3},
    {"int2", DType::kInt2},    {"uint2", DType::kUInt2},       {"float32", DType::kFloat32},
    {"fp32", DType::kFloat32}, {"float16", DType::kFloat16},   {"fp16", DType::kFloat16},
    {"half", DType::kFloat16}, {"bfloat16", DType::kBFloat16}, {"bf16", DType::kBFloat16},
};

DTypeInfo int_info(const char* name, int bits, bool is_signed) {
  DTypeInfo i{};
  i.name = name;
  i.is_float = false;
  i.is_signed = is_signed;
  i.bits = bits;
  i.min = qmin_of(bits, is_signed);
  i.max = qmax_of(bits, is_signed);
  return i;
}

DTypeInfo float_info(const char* name, int bits, double max, double eps, double smallest_normal,
                     double resolution, double smallest_subnormal) {
  DTypeInfo i{};
  i.name = name;
  i.is_float = true;
  i.is_signed = true;
  i.bits = bits;
  i.min = -max;
  i.max = max;
  i.eps = eps;
  i.smallest_normal = smallest_normal;
  i.tiny = smallest_normal;
  i.resolution = resolution;
  i.smallest_subnormal = smallest_subnormal;
  return i;
}

}  // namespace

Status parse_dtype(const std::string& name, DType* out) {
  for (const NamedDType& n : kNames) {
    if (name == n.name) {
      *out = n.dtype;
      return Status::Ok();
    }
  }
  std::string known;
  for (const NamedDType& n : kNames) {
    if (!known.empty()) known += ", ";
    known += n.name;
  }
  return Status::Error(StatusCode::kInvalidArgument,
                       "unknown dtype \"" + name + "\" (known: " + known + ")");
}

DTypeInfo dtype_info(DType dtype) {
  switch (dtype) {
    case DType::kInt8: return int_info("int8", 8, true);
    case DType::kUInt8: return int_info("uint8", 8, false);
    case DType::kInt4: return int_info("int4", 4, true);
    case DType::kUInt4: return int_info("uint4", 4, false);
    case DType::kInt3: return int_info("int3", 3, true);
    case DType::kUInt3: return int_info("uint3", 3, false);
    case DType::kInt2: return int_info("int2", 2, true);
    case DType::kUInt2: return int_info("uint2", 2, false);
    // max = (2 - eps) * 2^emax; resolution = 10^-floor(digits10), as torch.finfo.
    case DType::kFloat32:
      return float_info("float32", 32, 0x1.fffffep+127, 0x1p-23, 0x1p-126, 1e-6, 0x1p-149);
    case DType::kFloat16:
      return float_info("float16", 16, 65504.0, 0x1p-10, 0x1p-14, 1e-3, 0x1p-24);
    case DType::kBFloat16:
      return float_info("bfloat16", 16, 0x1.fep+127, 0x1p-7, 0x1p-126, 1e-2, 0x1p-133);
  }
  // Only reachable through a DType cast from an out-of-range int.
  DTypeInfo unknown{};
  unknown.name = "unknown";
  return unknown;
}

}  // namespace webquant
