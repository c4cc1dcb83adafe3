// Linear quantization (quant.h): scale and zero point as the course's get_q_scale_and_zero_point,
// codes through the quantize/dequantize kernels.
//
// Views used for the hot loops (every run below is contiguous and shares one (s, z)):
//   per-tensor   one run of numel elements.
//   per-channel  the tensor as [outer, C, inner] (outer = prod(shape[:a]), C = shape[a],
//                inner = prod(shape[a+1:])); channel c owns the runs x[(o*C + c)*inner, +inner).
//                When a is the last axis, inner == 1 and each row of C elements goes through the
//                vparams kernel, one (s, z) per element.
//   per-group    the tensor as [rows, last]; row r holds the groups x[r*last + g*G, +G), the last
//                one short (last % G elements) when the scheme allows padding.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <utility>

#include "kernels/kernels.h"
#include "webquant/dtype.h"
#include "webquant/quant.h"

namespace webquant {
namespace {

Status invalid(std::string msg) {
  return Status::Error(StatusCode::kInvalidArgument, std::move(msg));
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Shortest round-trip text of a float ("0.1", "3.5788234", "nan", "-inf").
std::string float_string(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  for (int prec = 6; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

Status check_bits(int bits) {
  if (bits == 2 || bits == 3 || bits == 4 || bits == 8) return Status::Ok();
  return invalid("bits must be 2, 3, 4 or 8 (got " + std::to_string(bits) + ")");
}

Status check_mode(QuantMode mode) {
  if (mode == QuantMode::kSymmetric || mode == QuantMode::kAsymmetric) return Status::Ok();
  return invalid("mode must be symmetric (0) or asymmetric (1) (got " +
                 std::to_string(static_cast<int>(mode)) + ")");
}

// numel of a shape; every dimension >= 1 and numel * sizeof(float) must fit in size_t.
Status shape_numel(const std::vector<int64_t>& shape, size_t* numel) {
  const size_t limit = std::numeric_limits<size_t>::max() / sizeof(float);
  size_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t d = shape[i];
    if (d < 0)
      return invalid("dimension " + std::to_string(i) + " of shape " + shape_string(shape) +
                     " is negative");
    if (d == 0)
      return invalid("cannot quantize an empty tensor: dimension " + std::to_string(i) +
                     " of shape " + shape_string(shape) + " is 0");
    if (static_cast<uint64_t>(d) > limit / n)
      return invalid("shape " + shape_string(shape) + " has more elements than fit in memory");
    n *= static_cast<size_t>(d);
  }
  *numel = n;
  return Status::Ok();
}

// "index 7 (element [2, 1] of shape [3, 3])": the flat row-major index and its coordinates.
std::string index_string(size_t flat, const std::vector<int64_t>& shape) {
  std::string s = "index " + std::to_string(flat);
  if (shape.size() < 2) return s;
  std::vector<int64_t> coord(shape.size());
  size_t rest = flat;
  for (size_t i = shape.size(); i-- > 0;) {
    coord[i] = static_cast<int64_t>(rest % static_cast<size_t>(shape[i]));
    rest /= static_cast<size_t>(shape[i]);
  }
  return s + " (element " + shape_string(coord) + " of shape " + shape_string(shape) + ")";
}

// Called once minmax_f32 has reported a non-finite value in x[0..n): names the first one.
// `base` is added to the reported index (the run's offset in the caller's indexing).
Status non_finite_error(const float* x, size_t n, size_t base, const std::vector<int64_t>* shape) {
  for (size_t i = 0; i < n; ++i) {
    if (std::isfinite(x[i])) continue;
    const char* what = std::isnan(x[i]) ? "NaN" : (x[i] > 0 ? "+Inf" : "-Inf");
    const std::string where =
        shape ? index_string(base + i, *shape) : "index " + std::to_string(base + i);
    return Status::Error(StatusCode::kNonFinite, std::string("input has ") + what + " at " + where +
                                                     "; NaN and Inf cannot be quantized");
  }
  return Status::Error(StatusCode::kNonFinite, "input has a NaN or Inf");  // not reached
}

// Allocates v[n]. With exceptions disabled (the wasm build) a failed vector allocation aborts, so
// probe with malloc first: a tensor too large for the heap becomes kOutOfMemory instead.
template <typename T>
Status alloc(std::vector<T>* v, size_t n, const char* what) {
  const size_t bytes = n * sizeof(T);  // n is bounded by shape_numel, no overflow
  Status oom =
      Status::Error(StatusCode::kOutOfMemory,
                    "out of memory allocating " + std::to_string(bytes) + " bytes for " + what);
  void* probe = std::malloc(bytes ? bytes : 1);
  if (!probe) return oom;
  std::free(probe);
#if defined(__cpp_exceptions)
  try {
    v->resize(n);
  } catch (const std::bad_alloc&) {
    return oom;
  }
#else
  v->resize(n);
#endif
  return Status::Ok();
}

int32_t pow2_floor(int32_t k) {
  int32_t m = 1;
  while (m * 2 <= k) m *= 2;
  return m;
}

// The course's get_q_scale_and_zero_point (and get_q_scale_symmetric) for a run with range
// [rmin, rmax], computed in double as the course does with Python floats; the scale is stored as
// float. Degenerate runs (the course would divide by zero or not reproduce the value):
//  - all zeros: s = 1, z = clamp(0) (asymmetric) or the mode's fixed z (symmetric);
//  - constant c != 0: the range is widened to include 0 (asymmetric) and c is given the largest
//    power-of-two code distance m from z (m <= qmax - qmin, or <= the symmetric positive range):
//    s = |c| / m, so that s * m == |c| exactly in float and c round-trips exactly.
// A scale below FLT_MIN is raised to FLT_MIN.
void params_from_range(double rmin, double rmax, int bits, bool is_signed, QuantMode mode,
                       float* scale, int32_t* zero_point) {
  const int32_t qmin = qmin_of(bits, is_signed), qmax = qmax_of(bits, is_signed);
  const bool constant = rmin == rmax;
  double s;
  if (mode == QuantMode::kSymmetric) {
    const int32_t z = is_signed ? 0 : (1 << (bits - 1));  // unsigned: the signed grid shifted
    const int32_t qpos = qmax - z;
    const double amax = std::fmax(std::fabs(rmin), std::fabs(rmax));
    if (amax == 0)
      s = 1;
    else
      s = constant ? amax / pow2_floor(qpos) : amax / qpos;
    *scale = static_cast<float>(std::fmax(s, FLT_MIN));
    *zero_point = z;
    return;
  }
  if (constant) {
    rmin = std::fmin(rmin, 0.0);
    rmax = std::fmax(rmax, 0.0);
  }
  if (rmax == rmin) {  // all zeros
    *scale = 1.0f;
    *zero_point = std::min(std::max(0, qmin), qmax);
    return;
  }
  s = (rmax - rmin) / (constant ? pow2_floor(qmax - qmin) : qmax - qmin);
  s = std::fmax(s, FLT_MIN);
  const double z = std::nearbyint(qmin - rmin / s);  // Python round(): half to even
  *scale = static_cast<float>(s);
  *zero_point = static_cast<int32_t>(std::fmin(std::fmax(z, double(qmin)), double(qmax)));
}

// Where the (s, z) of each element come from; built by make_plan from a validated scheme.
struct Plan {
  size_t numel = 0;
  size_t outer = 1, channels = 1, inner = 1;  // per-channel view [outer, C, inner]
  size_t rows = 1, last = 1, group = 1, groups_per_row = 1;  // per-group view [rows, last]
  std::vector<int64_t> param_shape;
  size_t num_params = 1;
};

Status make_plan(const QuantScheme& scheme, const std::vector<int64_t>& shape, Plan* plan) {
  WQ_RETURN_IF_ERROR(validate_scheme(scheme, shape));
  Plan p;
  WQ_RETURN_IF_ERROR(shape_numel(shape, &p.numel));
  const int rank = static_cast<int>(shape.size());
  switch (scheme.granularity) {
    case Granularity::kPerTensor: p.param_shape = {1}; break;
    case Granularity::kPerChannel: {
      const int axis = scheme.axis < 0 ? scheme.axis + rank : scheme.axis;
      for (int i = 0; i < axis; ++i) p.outer *= static_cast<size_t>(shape[i]);
      p.channels = static_cast<size_t>(shape[axis]);
      for (int i = axis + 1; i < rank; ++i) p.inner *= static_cast<size_t>(shape[i]);
      p.param_shape = {shape[axis]};
      p.num_params = p.channels;
      break;
    }
    case Granularity::kPerGroup:
      p.last = static_cast<size_t>(shape.back());
      p.rows = p.numel / p.last;
      p.group = static_cast<size_t>(scheme.group_size);
      p.groups_per_row = p.last / p.group + (p.last % p.group != 0);
      p.param_shape = {static_cast<int64_t>(p.rows), static_cast<int64_t>(p.groups_per_row)};
      p.num_params = p.rows * p.groups_per_row;
      break;
  }
  *plan = std::move(p);
  return Status::Ok();
}

// Scales and zero points of every channel / group of a finite tensor.
void compute_params(const float* x, const Plan& p, const QuantScheme& scheme, float* scales,
                    int32_t* zps) {
  const auto params = [&](double lo, double hi, size_t k) {
    params_from_range(lo, hi, scheme.bits, scheme.is_signed, scheme.mode, &scales[k], &zps[k]);
  };
  switch (scheme.granularity) {
    case Granularity::kPerTensor: {
      const kernels::MinMax m = kernels::WQ_BEST(minmax_f32)(x, p.numel);
      params(m.min, m.max, 0);
      break;
    }
    case Granularity::kPerChannel: {
      const size_t C = p.channels, inner = p.inner;
      std::vector<float> lo(x, x + C), hi(x, x + C);  // seeded with row 0: the C values at o=0
      if (inner == 1) {
        for (size_t o = 1; o < p.outer; ++o) {
          const float* row = x + o * C;
          for (size_t c = 0; c < C; ++c) {
            lo[c] = std::fmin(lo[c], row[c]);
            hi[c] = std::fmax(hi[c], row[c]);
          }
        }
      } else {
        for (size_t o = 0; o < p.outer; ++o) {
          for (size_t c = 0; c < C; ++c) {
            const kernels::MinMax m = kernels::WQ_BEST(minmax_f32)(x + (o * C + c) * inner, inner);
            lo[c] = o ? std::fmin(lo[c], m.min) : m.min;
            hi[c] = o ? std::fmax(hi[c], m.max) : m.max;
          }
        }
      }
      for (size_t c = 0; c < C; ++c) params(lo[c], hi[c], c);
      break;
    }
    case Granularity::kPerGroup:
      for (size_t r = 0; r < p.rows; ++r) {
        for (size_t g = 0; g < p.groups_per_row; ++g) {
          const size_t begin = g * p.group, len = std::min(p.group, p.last - begin);
          const kernels::MinMax m = kernels::WQ_BEST(minmax_f32)(x + r * p.last + begin, len);
          params(m.min, m.max, r * p.groups_per_row + g);
        }
      }
      break;
  }
}

// codes[i] = clamp(round(x[i] / s + z)) with each element's (s, z) from the plan.
Status quantize_codes(const float* x, const Plan& p, const QuantScheme& scheme, const float* scales,
                      const int32_t* zps, uint8_t* codes) {
  const float qmin = static_cast<float>(qmin_of(scheme.bits, scheme.is_signed));
  const float qmax = static_cast<float>(qmax_of(scheme.bits, scheme.is_signed));
  switch (scheme.granularity) {
    case Granularity::kPerTensor:
      kernels::WQ_BEST(quantize_f32_q8)(x, p.numel, scales[0], static_cast<float>(zps[0]), qmin,
                                        qmax, codes);
      break;
    case Granularity::kPerChannel: {
      const size_t C = p.channels, inner = p.inner;
      if (inner == 1) {
        std::vector<float> zf;
        WQ_RETURN_IF_ERROR(alloc(&zf, C, "zero points"));
        for (size_t c = 0; c < C; ++c) zf[c] = static_cast<float>(zps[c]);
        for (size_t o = 0; o < p.outer; ++o)
          kernels::WQ_BEST(quantize_f32_q8_vparams)(x + o * C, C, scales, zf.data(), qmin, qmax,
                                                    codes + o * C);
      } else {
        for (size_t o = 0; o < p.outer; ++o) {
          for (size_t c = 0; c < C; ++c) {
            const size_t off = (o * C + c) * inner;
            kernels::WQ_BEST(quantize_f32_q8)(x + off, inner, scales[c], static_cast<float>(zps[c]),
                                              qmin, qmax, codes + off);
          }
        }
      }
      break;
    }
    case Granularity::kPerGroup:
      for (size_t r = 0; r < p.rows; ++r) {
        for (size_t g = 0; g < p.groups_per_row; ++g) {
          const size_t begin = g * p.group, len = std::min(p.group, p.last - begin);
          const size_t k = r * p.groups_per_row + g, off = r * p.last + begin;
          kernels::WQ_BEST(quantize_f32_q8)(x + off, len, scales[k], static_cast<float>(zps[k]),
                                            qmin, qmax, codes + off);
        }
      }
      break;
  }
  return Status::Ok();
}

// y = (q - z) * s over one contiguous run of codes sharing (s, z).
void dequantize_run(const QuantizedTensor& q, size_t off, size_t n, float s, int32_t z, float* y) {
  if (q.scheme.is_signed)
    kernels::WQ_BEST(dequantize_s8_f32)(reinterpret_cast<const int8_t*>(q.codes.data()) + off, n, s,
                                        static_cast<float>(z), y + off);
  else
    kernels::WQ_BEST(dequantize_u8_f32)(q.codes.data() + off, n, s, static_cast<float>(z), y + off);
}

}  // namespace

Status validate_scheme(const QuantScheme& scheme, const std::vector<int64_t>& shape) {
  WQ_RETURN_IF_ERROR(check_bits(scheme.bits));
  WQ_RETURN_IF_ERROR(check_mode(scheme.mode));
  size_t numel = 0;
  WQ_RETURN_IF_ERROR(shape_numel(shape, &numel));
  const int rank = static_cast<int>(shape.size());
  switch (scheme.granularity) {
    case Granularity::kPerTensor: return Status::Ok();
    case Granularity::kPerChannel:
      if (rank == 0)
        return invalid("per-channel quantization needs a tensor of rank >= 1 (got a scalar)");
      if (scheme.axis < -rank || scheme.axis >= rank)
        return invalid("per-channel axis " + std::to_string(scheme.axis) +
                       " is out of range for shape " + shape_string(shape) + " (rank " +
                       std::to_string(rank) + ", valid axes " + std::to_string(-rank) + ".." +
                       std::to_string(rank - 1) + ")");
      return Status::Ok();
    case Granularity::kPerGroup: {
      if (rank == 0)
        return invalid("per-group quantization needs a tensor of rank >= 1 (got a scalar)");
      if (scheme.group_size <= 0)
        return invalid("group_size must be positive for per-group quantization (got " +
                       std::to_string(scheme.group_size) + ")");
      const int64_t last = shape.back();
      if (last % scheme.group_size != 0 && !scheme.pad)
        return invalid("last dimension " + std::to_string(last) + " of shape " +
                       shape_string(shape) + " is not a multiple of group_size " +
                       std::to_string(scheme.group_size) + " (" + std::to_string(last) + " % " +
                       std::to_string(scheme.group_size) + " = " +
                       std::to_string(last % scheme.group_size) +
                       "); pick a divisor or set pad to allow a short last group");
      return Status::Ok();
    }
  }
  return invalid("granularity must be per-tensor (0), per-channel (1) or per-group (2) (got " +
                 std::to_string(static_cast<int>(scheme.granularity)) + ")");
}

Status compute_scale_zero_point(const float* x, size_t n, int bits, bool is_signed, QuantMode mode,
                                float* scale, int32_t* zero_point) {
  return compute_scale_zero_point_strided(x, 1, n, n, bits, is_signed, mode, scale, zero_point);
}

// `count` runs of `run` contiguous values, run k starting at x[k * stride]; with run == 1 these
// are the values x[0], x[stride], x[2 * stride], ...
Status compute_scale_zero_point_strided(const float* x, size_t count, size_t run, size_t stride,
                                        int bits, bool is_signed, QuantMode mode, float* scale,
                                        int32_t* zero_point) {
  WQ_RETURN_IF_ERROR(check_bits(bits));
  WQ_RETURN_IF_ERROR(check_mode(mode));
  if (count == 0 || run == 0)
    return invalid("cannot compute a scale and zero point of no values (count " +
                   std::to_string(count) + ", run " + std::to_string(run) + ")");
  if (count > 1 && stride < run)
    return invalid("stride " + std::to_string(stride) + " is shorter than the run length " +
                   std::to_string(run) + " (runs would overlap)");
  if (!x || !scale || !zero_point) return invalid("compute_scale_zero_point: null pointer");
  double lo = 0, hi = 0;
  for (size_t k = 0; k < count; ++k) {
    const kernels::MinMax m = kernels::WQ_BEST(minmax_f32)(x + k * stride, run);
    if (!m.finite) return non_finite_error(x + k * stride, run, k * stride, nullptr);
    lo = k ? std::fmin(lo, double(m.min)) : m.min;
    hi = k ? std::fmax(hi, double(m.max)) : m.max;
  }
  params_from_range(lo, hi, bits, is_signed, mode, scale, zero_point);
  return Status::Ok();
}

Status quantize(const float* x, const std::vector<int64_t>& shape, const QuantScheme& scheme,
                QuantizedTensor* out) {
  if (!out) return invalid("quantize: null output");
  Plan p;
  WQ_RETURN_IF_ERROR(make_plan(scheme, shape, &p));
  if (!x) return invalid("quantize: null input data");
  const kernels::MinMax all = kernels::WQ_BEST(minmax_f32)(x, p.numel);
  if (!all.finite) return non_finite_error(x, p.numel, 0, &shape);

  QuantizedTensor q;
  WQ_RETURN_IF_ERROR(alloc(&q.scales, p.num_params, "scales"));
  WQ_RETURN_IF_ERROR(alloc(&q.zero_points, p.num_params, "zero points"));
  WQ_RETURN_IF_ERROR(alloc(&q.codes, p.numel, "codes"));
  compute_params(x, p, scheme, q.scales.data(), q.zero_points.data());
  WQ_RETURN_IF_ERROR(
      quantize_codes(x, p, scheme, q.scales.data(), q.zero_points.data(), q.codes.data()));
  q.shape = shape;
  q.scheme = scheme;
  q.param_shape = std::move(p.param_shape);
  *out = std::move(q);
  return Status::Ok();
}

Status quantize_with_params(const float* x, const std::vector<int64_t>& shape,
                            const QuantScheme& scheme, const std::vector<float>& scales,
                            const std::vector<int32_t>& zero_points, QuantizedTensor* out) {
  if (!out) return invalid("quantize_with_params: null output");
  Plan p;
  WQ_RETURN_IF_ERROR(make_plan(scheme, shape, &p));
  if (scales.size() != p.num_params || zero_points.size() != p.num_params)
    return Status::Error(StatusCode::kShapeMismatch,
                         "shape " + shape_string(shape) + " with this scheme needs " +
                             std::to_string(p.num_params) +
                             " scales and zero points (param shape " + shape_string(p.param_shape) +
                             "), got " + std::to_string(scales.size()) + " scales and " +
                             std::to_string(zero_points.size()) + " zero points");
  const int32_t qmin = qmin_of(scheme.bits, scheme.is_signed);
  const int32_t qmax = qmax_of(scheme.bits, scheme.is_signed);
  const int32_t sym_z = scheme.is_signed ? 0 : (1 << (scheme.bits - 1));
  for (size_t k = 0; k < p.num_params; ++k) {
    if (!std::isfinite(scales[k]) || !(scales[k] > 0))
      return invalid("scale " + std::to_string(k) + " is " + float_string(scales[k]) +
                     "; scales must be finite and > 0");
    if (zero_points[k] < qmin || zero_points[k] > qmax)
      return invalid("zero point " + std::to_string(k) + " is " + std::to_string(zero_points[k]) +
                     ", outside the code range [" + std::to_string(qmin) + ", " +
                     std::to_string(qmax) + "]");
    if (scheme.mode == QuantMode::kSymmetric && zero_points[k] != sym_z)
      return invalid("zero point " + std::to_string(k) + " is " + std::to_string(zero_points[k]) +
                     " but a symmetric scheme fixes it at " + std::to_string(sym_z));
  }
  if (!x) return invalid("quantize_with_params: null input data");
  const kernels::MinMax all = kernels::WQ_BEST(minmax_f32)(x, p.numel);
  if (!all.finite) return non_finite_error(x, p.numel, 0, &shape);

  QuantizedTensor q;
  WQ_RETURN_IF_ERROR(alloc(&q.codes, p.numel, "codes"));
  WQ_RETURN_IF_ERROR(alloc(&q.scales, p.num_params, "scales"));
  WQ_RETURN_IF_ERROR(alloc(&q.zero_points, p.num_params, "zero points"));
  std::copy(scales.begin(), scales.end(), q.scales.begin());
  std::copy(zero_points.begin(), zero_points.end(), q.zero_points.begin());
  WQ_RETURN_IF_ERROR(
      quantize_codes(x, p, scheme, scales.data(), zero_points.data(), q.codes.data()));
  q.shape = shape;
  q.scheme = scheme;
  q.param_shape = std::move(p.param_shape);
  *out = std::move(q);
  return Status::Ok();
}

// q must be as quantize / quantize_with_params leave it. A tensor whose codes or parameters do not
// match its shape and scheme (hand-built, or moved-from) cannot be trusted: out gets NaN instead.
void dequantize(const QuantizedTensor& q, float* out) {
  if (!out) return;
  Plan p;
  const bool consistent = make_plan(q.scheme, q.shape, &p).ok() && q.codes.size() == p.numel &&
                          q.scales.size() == p.num_params && q.zero_points.size() == p.num_params;
  if (!consistent) {
    for (size_t i = 0; i < q.codes.size(); ++i) out[i] = std::numeric_limits<float>::quiet_NaN();
    return;
  }
  const float* s = q.scales.data();
  const int32_t* z = q.zero_points.data();
  switch (q.scheme.granularity) {
    case Granularity::kPerTensor: dequantize_run(q, 0, p.numel, s[0], z[0], out); break;
    case Granularity::kPerChannel: {
      const size_t C = p.channels, inner = p.inner;
      if (inner == 1) {
        // Same arithmetic as the dequantize kernels, one (s, z) per column.
        for (size_t o = 0; o < p.outer; ++o)
          for (size_t c = 0; c < C; ++c)
            out[o * C + c] =
                (static_cast<float>(q.code(o * C + c)) - static_cast<float>(z[c])) * s[c];
      } else {
        for (size_t o = 0; o < p.outer; ++o)
          for (size_t c = 0; c < C; ++c)
            dequantize_run(q, (o * C + c) * inner, inner, s[c], z[c], out);
      }
      break;
    }
    case Granularity::kPerGroup:
      for (size_t r = 0; r < p.rows; ++r) {
        for (size_t g = 0; g < p.groups_per_row; ++g) {
          const size_t begin = g * p.group, len = std::min(p.group, p.last - begin);
          const size_t k = r * p.groups_per_row + g;
          dequantize_run(q, r * p.last + begin, len, s[k], z[k], out);
        }
      }
      break;
  }
}

}  // namespace webquant
