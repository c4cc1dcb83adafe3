// Half-precision linear layers (webquant/linear.h): fp16 / bf16 weights, float32 activations and
// accumulators, on the gemm_f16_f32 / gemm_bf16_f32 kernels through the threaded driver.
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "quant/linear_internal.h"
#include "webquant/convert.h"
#include "webquant/linear.h"

namespace webquant {

const char* float_type_name(FloatType t) {
  switch (t) {
    case FloatType::kF32: return "float32";
    case FloatType::kF16: return "float16";
    case FloatType::kBF16: return "bfloat16";
  }
  return "unknown";
}

bool parse_float_type(std::string_view name, FloatType* out) {
  if (name == "float32" || name == "fp32" || name == "f32") {
    *out = FloatType::kF32;
  } else if (name == "float16" || name == "fp16" || name == "f16" || name == "half") {
    *out = FloatType::kF16;
  } else if (name == "bfloat16" || name == "bf16") {
    *out = FloatType::kBF16;
  } else {
    return false;
  }
  return true;
}

LinearScheme float_type_scheme(FloatType t) {
  return t == FloatType::kF16    ? LinearScheme::kF16
         : t == FloatType::kBF16 ? LinearScheme::kBF16
                                 : LinearScheme::kF32;
}

float round_to_float_type(float x, FloatType t) {
  if (t == FloatType::kF16) return fp16_to_fp32(fp32_to_fp16(x));
  if (t == FloatType::kBF16) return bf16_to_fp32(fp32_to_bf16(x));
  return x;
}

namespace linear_detail {

void forward_half(FloatType type, const uint16_t* w, int out_features, int in_features,
                  const float* bias, const float* x, size_t m, float* y) {
  kernels::parallel_gemm_half_f32(
      type == FloatType::kBF16 ? kernels::gemm_bf16_f32__wasmsimd : kernels::gemm_f16_f32__wasmsimd,
      m, static_cast<size_t>(out_features), static_cast<size_t>(in_features), x, w, bias, y);
}

void widen_half(FloatType type, const uint16_t* h, size_t n, float* out) {
  if (type == FloatType::kBF16) {
    convert_bf16_to_f32(h, out, n);
  } else {
    convert_f16_to_f32(h, out, n);
  }
}

void narrow_half(FloatType type, const float* x, size_t n, uint16_t* out) {
  if (type == FloatType::kBF16) {
    convert_f32_to_bf16(x, out, n);
  } else {
    convert_f32_to_f16(x, out, n);
  }
}

}  // namespace linear_detail

namespace {

class LinearHalf final : public LinearLayer {
 public:
  LinearHalf(FloatType type, std::vector<uint16_t> w, int out, int in, const float* bias)
      : type_(type), w_(std::move(w)) {
    out_features = out;
    in_features = in;
    if (bias != nullptr) {
      bias_.resize(static_cast<size_t>(out));
      for (int j = 0; j < out; ++j) bias_[size_t(j)] = round_to_float_type(bias[j], type);
    }
  }
  void forward(const float* x, size_t m, float* y) const override {
    linear_detail::forward_half(type_, w_.data(), out_features, in_features,
                                bias_.empty() ? nullptr : bias_.data(), x, m, y);
  }
  LinearScheme scheme() const override { return float_type_scheme(type_); }
  size_t weight_bytes() const override {
    return w_.size() * sizeof(uint16_t) + bias_.size() * sizeof(float);
  }
  std::string describe() const override { return type_ == FloatType::kBF16 ? "bf16" : "f16"; }
  void dequantize_weight(float* out) const override {
    linear_detail::widen_half(type_, w_.data(), w_.size(), out);
  }
  std::vector<float> bias() const override { return bias_; }
  Status export_quantized(LinearQuantizedData*) const override {
    return Status::Error(StatusCode::kUnsupported,
                         std::string("a ") + float_type_name(type_) +
                             " linear layer has no quantized form");
  }

 private:
  FloatType type_;
  std::vector<uint16_t> w_;   // [out, in] bits of type_
  std::vector<float> bias_;   // values rounded to type_
};

}  // namespace

std::unique_ptr<LinearLayer> make_linear_half(FloatType type, std::vector<uint16_t> w,
                                              int out_features, int in_features,
                                              const float* bias) {
  if (type == FloatType::kF32 || out_features < 1 || in_features < 1 ||
      w.size() != size_t(out_features) * size_t(in_features))
    return nullptr;
  return std::make_unique<LinearHalf>(type, std::move(w), out_features, in_features, bias);
}

}  // namespace webquant
