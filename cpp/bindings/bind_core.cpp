// Embind bindings of the quantization core (dtype, convert, quant, pack, error metrics, kernel
// table). The TypeScript mirror of everything bound here is web/src/runtime/module.ts.
//
// Boundary conventions:
//  - Nothing throws. Every fallible call returns a plain object {code, message, ...}: code is a
//    webquant::StatusCode (0 = ok) and TypeScript turns a non-zero code into a WebQuantError.
//  - Pointers are byte offsets into the wasm heap, passed as integers (uintptr_t). Inputs are
//    malloc'ed by the caller and filled with one HEAPU8.set; the caller frees them.
//  - A returned buffer {ptr, byteLength} was malloc'ed here; the caller copies it out and frees
//    it with _free.
#include <emscripten/bind.h>
#include <emscripten/val.h>
#include <malloc.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "js_status.h"
#include "kernels/simd.h"
#include "webquant/convert.h"
#include "webquant/dtype.h"
#include "webquant/pack.h"
#include "webquant/qat.h"
#include "webquant/quant.h"
#include "webquant/quant_params.h"
#include "webquant/status.h"
#include "webquant/module.h"
#include "webquant/threads.h"

namespace webquant {
namespace {

using emscripten::val;

using bindings::bad;
using bindings::error_as;
using bindings::JsBuffer;
using bindings::JsStatus;
using bindings::to_js;

struct JsScaleZeroPoint {
  int code = 0;
  std::string message;
  float scale = 0;
  int32_t zeroPoint = 0;
};

struct JsErrorMetrics {
  int code = 0;
  std::string message;
  double mse = 0;
  double maxAbs = 0;
  double sqnrDb = 0;
};

struct JsDTypeInfo {
  int code = 0;
  std::string message;
  std::string name;
  bool isFloat = false;
  bool isSigned = false;
  int bits = 0;
  double min = 0;
  double max = 0;
  double eps = 0;
  double smallestNormal = 0;
  double tiny = 0;
  double resolution = 0;
  double smallestSubnormal = 0;
};

std::string num(double d) {
  if (d == std::floor(d) && std::fabs(d) < 1e15) return std::to_string(static_cast<long long>(d));
  return std::to_string(d);
}

// A JS array of non-negative integers -> shape.
Status shape_from_js(const val& js, std::vector<int64_t>* shape) {
  if (!js.isArray()) return bad(StatusCode::kInvalidArgument, "shape must be an array of integers");
  const unsigned rank = js["length"].as<unsigned>();
  shape->clear();
  for (unsigned i = 0; i < rank; ++i) {
    val v = js[i];
    const double d = v.isNumber() ? v.as<double>() : -1;
    if (!(d >= 0 && d == std::floor(d) && d <= 9007199254740991.0))
      return bad(StatusCode::kInvalidArgument,
                 "shape[" + std::to_string(i) + "] must be a non-negative integer");
    shape->push_back(static_cast<int64_t>(d));
  }
  return Status::Ok();
}

// Product of the dims, or an error if it does not equal the number of elements given.
Status check_numel(const std::vector<int64_t>& shape, size_t numel) {
  double product = 1;
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i) {
    product *= static_cast<double>(shape[i]);
    dims += (i ? ", " : "") + std::to_string(shape[i]);
  }
  if (product != static_cast<double>(numel))
    return bad(StatusCode::kShapeMismatch, "data has " + std::to_string(numel) +
                                               " elements but shape [" + dims + "] needs " +
                                               num(product));
  return Status::Ok();
}

Status check_bits(int bits) {
  if (bits == 2 || bits == 3 || bits == 4 || bits == 8) return Status::Ok();
  return bad(StatusCode::kInvalidArgument,
             "bits must be 2, 3, 4 or 8 (got " + std::to_string(bits) + ")");
}

Status check_mode(int mode) {
  if (mode == 0 || mode == 1) return Status::Ok();
  return bad(StatusCode::kInvalidArgument, "mode must be 0 (symmetric) or 1 (asymmetric)");
}

val int64s_to_js(const std::vector<int64_t>& v) {
  val out = val::array();
  for (size_t i = 0; i < v.size(); ++i) out.set(i, static_cast<double>(v[i]));
  return out;
}

// malloc that never returns null for n == 0, so ptr != 0 always means success.
uint8_t* alloc_bytes(size_t n) { return static_cast<uint8_t*>(std::malloc(n ? n : 1)); }

JsBuffer buffer_or_oom(uint8_t* p, size_t bytes, const char* what) {
  JsBuffer b;
  if (!p) {
    b.code = static_cast<int>(StatusCode::kOutOfMemory);
    b.message = std::string("out of wasm memory allocating ") + std::to_string(bytes) +
                " bytes for " + what;
    return b;
  }
  b.ptr = reinterpret_cast<uintptr_t>(p);
  b.byteLength = bytes;
  return b;
}

// Owns one webquant::QuantizedTensor for its TypeScript wrapper (web/src/core/quantize.ts).
// Pointers returned by the *Ptr methods stay valid until the handle is deleted.
class QuantizedTensorHandle {
 public:
  // mode: 0 symmetric, 1 asymmetric; granularity: 0 per-tensor, 1 per-channel, 2 per-group.
  JsStatus quantize(uintptr_t data, size_t numel, val shape, int bits, bool is_signed, int mode,
                    int granularity, int axis, int group_size, bool pad) {
    std::vector<int64_t> dims;
    Status s = shape_from_js(shape, &dims);
    if (s.ok()) s = check_numel(dims, numel);
    if (s.ok()) s = check_bits(bits);
    if (s.ok()) s = check_mode(mode);
    if (s.ok() && (granularity < 0 || granularity > 2))
      s = bad(StatusCode::kInvalidArgument,
              "granularity must be 0 (per-tensor), 1 (per-channel) or 2 (per-group)");
    if (!s.ok()) return to_js(s);
    QuantScheme scheme;
    scheme.bits = bits;
    scheme.is_signed = is_signed;
    scheme.mode = static_cast<QuantMode>(mode);
    scheme.granularity = static_cast<Granularity>(granularity);
    scheme.axis = axis;
    scheme.group_size = group_size;
    scheme.pad = pad;
    QuantizedTensor q;
    s = webquant::quantize(reinterpret_cast<const float*>(data), dims, scheme, &q);
    if (s.ok()) q_ = std::move(q);
    return to_js(s);
  }

  // Given parameters (the course's linear_q_with_scale_and_zero_point): scales / zero_points are
  // n_params float32 / int32 values laid out as the scheme's param shape.
  JsStatus quantizeWithParams(uintptr_t data, size_t numel, val shape, int bits, bool is_signed,
                              int mode, int granularity, int axis, int group_size, bool pad,
                              uintptr_t scales, uintptr_t zero_points, size_t n_params) {
    return with_given_params(numel, shape, bits, is_signed, mode, granularity, axis, group_size, pad,
                             scales, zero_points, n_params,
                             [&](const std::vector<int64_t>& dims, const QuantScheme& scheme,
                                 std::vector<float> sc, std::vector<int32_t> zp, QuantizedTensor* q) {
                               return quantize_with_params(reinterpret_cast<const float*>(data), dims,
                                                           scheme, std::move(sc), std::move(zp), q);
                             });
  }

  // Adopts numel int32 codes with given parameters (the course's linear_dequantization input).
  JsStatus fromCodes(uintptr_t codes, size_t numel, val shape, int bits, bool is_signed, int mode,
                     int granularity, int axis, int group_size, bool pad, uintptr_t scales,
                     uintptr_t zero_points, size_t n_params) {
    return with_given_params(numel, shape, bits, is_signed, mode, granularity, axis, group_size, pad,
                             scales, zero_points, n_params,
                             [&](const std::vector<int64_t>& dims, const QuantScheme& scheme,
                                 std::vector<float> sc, std::vector<int32_t> zp, QuantizedTensor* q) {
                               return quantized_from_codes(reinterpret_cast<const int32_t*>(codes), dims,
                                                           scheme, std::move(sc), std::move(zp), q);
                             });
  }

  // The scheme of given parameters, the parameters copied out of the heap, and `build` run with
  // them; the handle keeps the result on success.
  template <typename Build>
  JsStatus with_given_params(size_t numel, val shape, int bits, bool is_signed, int mode,
                             int granularity, int axis, int group_size, bool pad, uintptr_t scales,
                             uintptr_t zero_points, size_t n_params, Build build) {
    std::vector<int64_t> dims;
    QuantScheme scheme;
    Status s = given_params_scheme(numel, shape, bits, is_signed, mode, granularity, axis,
                                   group_size, pad, &dims, &scheme);
    if (!s.ok()) return to_js(s);
    const float* sp = reinterpret_cast<const float*>(scales);
    const int32_t* zp = reinterpret_cast<const int32_t*>(zero_points);
    QuantizedTensor q;
    s = build(dims, scheme, std::vector<float>(sp, sp + n_params),
              std::vector<int32_t>(zp, zp + n_params), &q);
    if (s.ok()) q_ = std::move(q);
    return to_js(s);
  }

  size_t numel() const { return q_.codes.size(); }
  uintptr_t codesPtr() const { return reinterpret_cast<uintptr_t>(q_.codes.data()); }
  size_t scalesLength() const { return q_.scales.size(); }
  uintptr_t scalesPtr() const { return reinterpret_cast<uintptr_t>(q_.scales.data()); }
  size_t zeroPointsLength() const { return q_.zero_points.size(); }
  uintptr_t zeroPointsPtr() const { return reinterpret_cast<uintptr_t>(q_.zero_points.data()); }
  val shape() const { return int64s_to_js(q_.shape); }
  val paramShape() const { return int64s_to_js(q_.param_shape); }

  // out: numel() floats.
  void dequantizeInto(uintptr_t out) const { dequantize(q_, reinterpret_cast<float*>(out)); }

  // The straight-through estimator's mask (webquant/qat.h): x = the numel() floats this tensor was
  // quantized from, pass = numel() bytes.
  JsStatus passMaskInto(uintptr_t x, uintptr_t pass) const {
    return to_js(straight_through_mask(q_, reinterpret_cast<const float*>(x),
                                       reinterpret_cast<uint8_t*>(pass)));
  }

  // The unsigned codes q - qmin packed in the course convention for the scheme's bits.
  JsBuffer pack() const {
    const int bits = q_.scheme.bits;
    const int32_t qmin = qmin_of(bits, q_.scheme.is_signed);
    const size_t n = q_.codes.size();
    std::vector<uint8_t> unsigned_codes(n);
    for (size_t i = 0; i < n; ++i) unsigned_codes[i] = static_cast<uint8_t>(q_.code(i) - qmin);
    const size_t bytes = packed_size(n, bits);
    JsBuffer b = buffer_or_oom(alloc_bytes(bytes), bytes, "packed codes");
    if (b.code) return b;
    Status s = pack_codes(unsigned_codes.data(), n, bits, reinterpret_cast<uint8_t*>(b.ptr));
    if (!s.ok()) {
      std::free(reinterpret_cast<void*>(b.ptr));
      return error_as<JsBuffer>(s);
    }
    return b;
  }

  // Round-trip error against the float tensor this was quantized from (numel() floats).
  JsErrorMetrics errorAgainst(uintptr_t reference) const {
    std::vector<float> approx(q_.codes.size());
    dequantize(q_, approx.data());
    ErrorMetrics m = error_metrics(reinterpret_cast<const float*>(reference), approx.data(),
                                   approx.size());
    JsErrorMetrics r;
    r.mse = m.mse;
    r.maxAbs = m.max_abs;
    r.sqnrDb = m.sqnr_db;
    return r;
  }

 private:
  static Status given_params_scheme(size_t numel, const val& shape, int bits, bool is_signed,
                                    int mode, int granularity, int axis, int group_size, bool pad,
                                    std::vector<int64_t>* dims, QuantScheme* scheme) {
    Status s = shape_from_js(shape, dims);
    if (s.ok()) s = check_numel(*dims, numel);
    if (s.ok()) s = check_bits(bits);
    if (s.ok()) s = check_mode(mode);
    if (s.ok() && (granularity < 0 || granularity > 2))
      s = bad(StatusCode::kInvalidArgument,
              "granularity must be 0 (per-tensor), 1 (per-channel) or 2 (per-group)");
    scheme->bits = bits;
    scheme->is_signed = is_signed;
    scheme->mode = static_cast<QuantMode>(mode);
    scheme->granularity = static_cast<Granularity>(granularity);
    scheme->axis = axis;
    scheme->group_size = group_size;
    scheme->pad = pad;
    return s;
  }

  QuantizedTensor q_;
};

JsScaleZeroPoint compute_scale_zero_point_js(uintptr_t data, size_t n, int bits, bool is_signed,
                                             int mode) {
  Status s = check_bits(bits);
  if (s.ok()) s = check_mode(mode);
  if (s.ok() && n == 0)
    s = bad(StatusCode::kInvalidArgument, "cannot compute a scale for an empty tensor");
  if (!s.ok()) return error_as<JsScaleZeroPoint>(s);
  JsScaleZeroPoint r;
  s = compute_scale_zero_point(reinterpret_cast<const float*>(data), n, bits, is_signed,
                               static_cast<QuantMode>(mode), &r.scale, &r.zeroPoint);
  if (!s.ok()) return error_as<JsScaleZeroPoint>(s);
  return r;
}

// codes: n unsigned codes -> packed_size(n, bits) bytes.
JsBuffer pack_codes_js(uintptr_t codes, size_t n, int bits) {
  Status s = check_bits(bits);
  if (!s.ok()) return error_as<JsBuffer>(s);
  const size_t bytes = packed_size(n, bits);
  JsBuffer b = buffer_or_oom(alloc_bytes(bytes), bytes, "packed codes");
  if (b.code) return b;
  s = pack_codes(reinterpret_cast<const uint8_t*>(codes), n, bits,
                 reinterpret_cast<uint8_t*>(b.ptr));
  if (!s.ok()) {
    std::free(reinterpret_cast<void*>(b.ptr));
    return error_as<JsBuffer>(s);
  }
  return b;
}

// packed: packed_len bytes -> n unsigned codes.
JsBuffer unpack_codes_js(uintptr_t packed, size_t packed_len, size_t n, int bits) {
  Status s = check_bits(bits);
  if (!s.ok()) return error_as<JsBuffer>(s);
  JsBuffer b = buffer_or_oom(alloc_bytes(n), n, "unpacked codes");
  if (b.code) return b;
  s = unpack_codes(reinterpret_cast<const uint8_t*>(packed), packed_len, n, bits,
                   reinterpret_cast<uint8_t*>(b.ptr));
  if (!s.ok()) {
    std::free(reinterpret_cast<void*>(b.ptr));
    return error_as<JsBuffer>(s);
  }
  return b;
}

// n elements of dtype `from` at src -> n elements of dtype `to` (float32 <-> float16/bfloat16).
JsBuffer convert_float_js(uintptr_t src, size_t n, std::string from, std::string to) {
  DType a, b;
  Status s = parse_dtype(from, &a);
  if (s.ok()) s = parse_dtype(to, &b);
  if (!s.ok()) return error_as<JsBuffer>(s);
  const bool a_half = a == DType::kFloat16 || a == DType::kBFloat16;
  const bool b_half = b == DType::kFloat16 || b == DType::kBFloat16;
  const bool supported = (a == DType::kFloat32 && b_half) || (a_half && b == DType::kFloat32);
  if (!supported)
    return error_as<JsBuffer>(bad(StatusCode::kUnsupported,
                                  "conversion from " + std::string(dtype_info(a).name) + " to " +
                                      dtype_info(b).name +
                                      " is not supported (float32 <-> float16 / bfloat16 only)"));
  const size_t bytes = n * (b == DType::kFloat32 ? 4 : 2);
  JsBuffer out = buffer_or_oom(alloc_bytes(bytes), bytes, "converted values");
  if (out.code) return out;
  if (a == DType::kFloat32 && b == DType::kFloat16)
    convert_f32_to_f16(reinterpret_cast<const float*>(src), reinterpret_cast<uint16_t*>(out.ptr), n);
  else if (a == DType::kFloat32)
    convert_f32_to_bf16(reinterpret_cast<const float*>(src), reinterpret_cast<uint16_t*>(out.ptr),
                        n);
  else if (a == DType::kFloat16)
    convert_f16_to_f32(reinterpret_cast<const uint16_t*>(src), reinterpret_cast<float*>(out.ptr), n);
  else
    convert_bf16_to_f32(reinterpret_cast<const uint16_t*>(src), reinterpret_cast<float*>(out.ptr),
                        n);
  return out;
}

JsDTypeInfo dtype_info_js(std::string name) {
  DType d;
  Status s = parse_dtype(name, &d);
  if (!s.ok()) return error_as<JsDTypeInfo>(s);
  const DTypeInfo i = dtype_info(d);
  JsDTypeInfo r;
  r.name = i.name;
  r.isFloat = i.is_float;
  r.isSigned = i.is_signed;
  r.bits = i.bits;
  r.min = i.min;
  r.max = i.max;
  r.eps = i.eps;
  r.smallestNormal = i.smallest_normal;
  r.tiny = i.tiny;
  r.resolution = i.resolution;
  r.smallestSubnormal = i.smallest_subnormal;
  return r;
}

JsErrorMetrics error_metrics_js(uintptr_t a, size_t a_len, uintptr_t b, size_t b_len) {
  if (a_len != b_len)
    return error_as<JsErrorMetrics>(bad(StatusCode::kShapeMismatch,
                                        "error metrics need equal lengths (got " +
                                            std::to_string(a_len) + " and " +
                                            std::to_string(b_len) + ")"));
  if (a_len == 0)
    return error_as<JsErrorMetrics>(
        bad(StatusCode::kInvalidArgument, "error metrics of an empty tensor are undefined"));
  const float* x = reinterpret_cast<const float*>(a);
  const float* y = reinterpret_cast<const float*>(b);
  for (size_t i = 0; i < a_len; ++i)
    if (!std::isfinite(x[i]) || !std::isfinite(y[i]))
      return error_as<JsErrorMetrics>(bad(StatusCode::kNonFinite,
                                          "error metrics input has a NaN or Inf at index " +
                                              std::to_string(i)));
  ErrorMetrics m = error_metrics(x, y, a_len);
  JsErrorMetrics r;
  r.mse = m.mse;
  r.maxAbs = m.max_abs;
  r.sqnrDb = m.sqnr_db;
  return r;
}

// Bytes currently malloc'ed (dlmalloc's uordblks): the leak check of the TypeScript tests.
double heap_used_bytes() { return static_cast<double>(mallinfo().uordblks); }

// Size of the wasm linear memory in bytes (grows, never shrinks).
double memory_bytes() { return static_cast<double>(__builtin_wasm_memory_size(0)) * 65536.0; }

bool has_simd() { return WEBQUANT_SIMD != 0; }

// The thread pool (webquant/threads.h): the count in effect after the request.
int set_num_threads_js(int n) { return set_num_threads(n); }
int num_threads_js() { return num_threads(); }
bool has_threads() { return threads_supported(); }

// Profiling of parallel regions (webquant/threads.h), for scripts/profile-decode.mjs.
void set_thread_profiling_js(bool on) { set_thread_profiling(on); }
// Memory-read bandwidth with the current thread count (webquant/threads.h), for the benchmarks'
// roofline; bytes as a double (Embind has no size_t).
double read_bandwidth_js(double bytes, int repeats) {
  if (!(bytes >= 64 && bytes <= 1024.0 * 1024 * 1024)) return 0;
  return measure_read_bandwidth(static_cast<size_t>(bytes), repeats);
}
// Fusion of linear layers sharing an input in decode (Weights::set_fuse_linears), default on.
void set_fuse_linears_js(bool on) { Weights::set_fuse_linears(on); }
// Runs of chunks per claim in the pool's dynamic splits (set_claim_runs), default on.
void set_claim_runs_js(bool on) { set_claim_runs(on); }
emscripten::val thread_profile_js() {
  const ThreadProfile p = thread_profile();
  static const char* const kKinds[] = {"gemm", "attention", "fusedLinear", "head", "elementwise"};
  static_assert(sizeof(kKinds) / sizeof(kKinds[0]) == static_cast<size_t>(RegionKind::kCount));
  emscripten::val regions = emscripten::val::object();
  for (int k = 0; k < static_cast<int>(RegionKind::kCount); ++k) {
    emscripten::val r = emscripten::val::object();
    r.set("count", static_cast<double>(p.regions[k]));
    r.set("ms", p.region_ms[k]);
    regions.set(kKinds[k], r);
  }
  emscripten::val o = emscripten::val::object();
  o.set("enabled", p.enabled);
  o.set("regions", regions);
  o.set("forks", static_cast<double>(p.forks));
  o.set("forkMs", p.fork_ms);
  o.set("partMs", p.part_ms);
  o.set("imbalanceMs", p.imbalance_ms);
  return o;
}

}  // namespace
}  // namespace webquant

EMSCRIPTEN_BINDINGS(webquant_core) {
  using namespace emscripten;
  using namespace webquant;

  // js_status.h's types, registered here once for every bindings file.
  value_object<JsStatus>("WqStatus")
      .field("code", &JsStatus::code)
      .field("message", &JsStatus::message);
  value_object<JsBuffer>("WqBuffer")
      .field("code", &JsBuffer::code)
      .field("message", &JsBuffer::message)
      .field("ptr", &JsBuffer::ptr)
      .field("byteLength", &JsBuffer::byteLength);
  value_object<JsScaleZeroPoint>("WqScaleZeroPoint")
      .field("code", &JsScaleZeroPoint::code)
      .field("message", &JsScaleZeroPoint::message)
      .field("scale", &JsScaleZeroPoint::scale)
      .field("zeroPoint", &JsScaleZeroPoint::zeroPoint);
  value_object<JsErrorMetrics>("WqErrorMetrics")
      .field("code", &JsErrorMetrics::code)
      .field("message", &JsErrorMetrics::message)
      .field("mse", &JsErrorMetrics::mse)
      .field("maxAbs", &JsErrorMetrics::maxAbs)
      .field("sqnrDb", &JsErrorMetrics::sqnrDb);
  value_object<JsDTypeInfo>("WqDTypeInfo")
      .field("code", &JsDTypeInfo::code)
      .field("message", &JsDTypeInfo::message)
      .field("name", &JsDTypeInfo::name)
      .field("isFloat", &JsDTypeInfo::isFloat)
      .field("isSigned", &JsDTypeInfo::isSigned)
      .field("bits", &JsDTypeInfo::bits)
      .field("min", &JsDTypeInfo::min)
      .field("max", &JsDTypeInfo::max)
      .field("eps", &JsDTypeInfo::eps)
      .field("smallestNormal", &JsDTypeInfo::smallestNormal)
      .field("tiny", &JsDTypeInfo::tiny)
      .field("resolution", &JsDTypeInfo::resolution)
      .field("smallestSubnormal", &JsDTypeInfo::smallestSubnormal);

  class_<QuantizedTensorHandle>("QuantizedTensorHandle")
      .constructor<>()
      .function("quantize", &QuantizedTensorHandle::quantize)
      .function("quantizeWithParams", &QuantizedTensorHandle::quantizeWithParams)
      .function("fromCodes", &QuantizedTensorHandle::fromCodes)
      .function("numel", &QuantizedTensorHandle::numel)
      .function("codesPtr", &QuantizedTensorHandle::codesPtr)
      .function("scalesLength", &QuantizedTensorHandle::scalesLength)
      .function("scalesPtr", &QuantizedTensorHandle::scalesPtr)
      .function("zeroPointsLength", &QuantizedTensorHandle::zeroPointsLength)
      .function("zeroPointsPtr", &QuantizedTensorHandle::zeroPointsPtr)
      .function("shape", &QuantizedTensorHandle::shape)
      .function("paramShape", &QuantizedTensorHandle::paramShape)
      .function("dequantizeInto", &QuantizedTensorHandle::dequantizeInto)
      .function("passMaskInto", &QuantizedTensorHandle::passMaskInto)
      .function("pack", &QuantizedTensorHandle::pack)
      .function("errorAgainst", &QuantizedTensorHandle::errorAgainst);

  function("computeScaleZeroPoint", &compute_scale_zero_point_js);
  function("packCodes", &pack_codes_js);
  function("unpackCodes", &unpack_codes_js);
  function("convertFloat", &convert_float_js);
  function("dtypeInfo", &dtype_info_js);
  function("errorMetrics", &error_metrics_js);
  function("heapUsedBytes", &heap_used_bytes);
  function("memoryBytes", &memory_bytes);
  function("hasSimd", &has_simd);
  function("hasThreads", &has_threads);
  function("setNumThreads", &set_num_threads_js);
  function("numThreads", &num_threads_js);
  function("setThreadProfiling", &set_thread_profiling_js);
  function("readBandwidth", &read_bandwidth_js);
  function("threadProfile", &thread_profile_js);
  function("setFuseLinears", &set_fuse_linears_js);
  function("setClaimRuns", &set_claim_runs_js);
}
