// Quantized tensors from codes and given parameters (quant_params.h).
#include "webquant/quant_params.h"

#include <cmath>
#include <string>
#include <utility>

#include "webquant/dtype.h"

namespace webquant {
namespace {

Status invalid(std::string msg) { return Status::Error(StatusCode::kInvalidArgument, std::move(msg)); }

std::string dims(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

Status param_shape_of(const QuantScheme& scheme, const std::vector<int64_t>& shape,
                      std::vector<int64_t>* param_shape, size_t* num_params) {
  WQ_RETURN_IF_ERROR(validate_scheme(scheme, shape));
  size_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<size_t>(d);
  const int rank = static_cast<int>(shape.size());
  switch (scheme.granularity) {
    case Granularity::kPerTensor: *param_shape = {1}; break;
    case Granularity::kPerChannel:
      *param_shape = {shape[scheme.axis < 0 ? scheme.axis + rank : scheme.axis]};
      break;
    case Granularity::kPerGroup: {
      const int64_t last = shape.back();
      const int64_t rows = last == 0 ? 0 : static_cast<int64_t>(numel) / last;
      const int64_t groups = last / scheme.group_size + (last % scheme.group_size != 0);
      *param_shape = {rows, groups};
      break;
    }
  }
  size_t n = 1;
  for (int64_t d : *param_shape) n *= static_cast<size_t>(d);
  *num_params = n;
  return Status::Ok();
}

Status quantized_from_codes(const int32_t* codes, const std::vector<int64_t>& shape,
                            const QuantScheme& scheme, const std::vector<float>& scales,
                            const std::vector<int32_t>& zero_points, QuantizedTensor* out) {
  if (!out) return invalid("quantized_from_codes: null output");
  std::vector<int64_t> param_shape;
  size_t num_params = 0;
  WQ_RETURN_IF_ERROR(param_shape_of(scheme, shape, &param_shape, &num_params));
  size_t numel = 1;
  for (int64_t d : shape) numel *= static_cast<size_t>(d);
  if (numel == 0) return invalid("cannot dequantize an empty tensor (shape " + dims(shape) + ")");
  if (!codes) return invalid("quantized_from_codes: null codes");
  if (scales.size() != num_params || zero_points.size() != num_params)
    return Status::Error(StatusCode::kShapeMismatch,
                         "shape " + dims(shape) + " with this scheme needs " +
                             std::to_string(num_params) + " scales and zero points (param shape " +
                             dims(param_shape) + "), got " + std::to_string(scales.size()) +
                             " scales and " + std::to_string(zero_points.size()) + " zero points");
  const int32_t qmin = qmin_of(scheme.bits, scheme.is_signed);
  const int32_t qmax = qmax_of(scheme.bits, scheme.is_signed);
  const std::string range = "[" + std::to_string(qmin) + ", " + std::to_string(qmax) + "]";
  const std::string type = std::string(scheme.is_signed ? "int" : "uint") + std::to_string(scheme.bits);
  const int32_t sym_z = scheme.is_signed ? 0 : (1 << (scheme.bits - 1));
  for (size_t k = 0; k < num_params; ++k) {
    if (!std::isfinite(scales[k]) || !(scales[k] > 0))
      return invalid("scale " + std::to_string(k) + " is " + std::to_string(scales[k]) +
                     "; scales must be finite and > 0");
    if (zero_points[k] < qmin || zero_points[k] > qmax)
      return invalid("zero point " + std::to_string(k) + " is " + std::to_string(zero_points[k]) +
                     ", outside the " + type + " range " + range);
    if (scheme.mode == QuantMode::kSymmetric && zero_points[k] != sym_z)
      return invalid("zero point " + std::to_string(k) + " is " + std::to_string(zero_points[k]) +
                     " but a symmetric scheme fixes it at " + std::to_string(sym_z));
  }
  for (size_t i = 0; i < numel; ++i)
    if (codes[i] < qmin || codes[i] > qmax)
      return invalid("code " + std::to_string(i) + " is " + std::to_string(codes[i]) +
                     ", outside the " + type + " range " + range);

  QuantizedTensor q;
  q.shape = shape;
  q.scheme = scheme;
  q.codes.resize(numel);
  // int8 codes are stored as their two's-complement byte (QuantizedTensor's convention).
  for (size_t i = 0; i < numel; ++i) q.codes[i] = static_cast<uint8_t>(codes[i] & 0xff);
  q.scales = scales;
  q.zero_points = zero_points;
  q.param_shape = std::move(param_shape);
  *out = std::move(q);
  return Status::Ok();
}

Status dequantize_with_params(const int32_t* codes, const std::vector<int64_t>& shape,
                              const QuantScheme& scheme, const std::vector<float>& scales,
                              const std::vector<int32_t>& zero_points, float* out) {
  if (!out) return invalid("dequantize_with_params: null output");
  QuantizedTensor q;
  WQ_RETURN_IF_ERROR(quantized_from_codes(codes, shape, scheme, scales, zero_points, &q));
  dequantize(q, out);
  return Status::Ok();
}

}  // namespace webquant
