// GGUF float-minimum block types on webquant's kernels (see linear_gguf_affine.h).
#include "quant/linear_gguf_affine.h"

#include <cmath>
#include <cstring>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "kernels/gemm/gemm_q8g.h"
#include "quant/linear_internal.h"

namespace webquant::linear_detail {
namespace {

constexpr int kGroup = 32;

thread_local std::vector<float> g_sums;
thread_local std::vector<float> g_extra;

class LinearGgufAffine final : public LinearLayer {
 public:
  LinearGgufAffine(std::unique_ptr<LinearLayer> inner, int bits, std::vector<float> offsets,
                   std::vector<float> mins, std::vector<int8_t> sign, std::string type_name)
      : inner_(std::move(inner)), bits_(bits), offsets_(std::move(offsets)),
        mins_(std::move(mins)), sign_(std::move(sign)), type_name_(std::move(type_name)) {
    out_features = inner_->out_features;
    in_features = inner_->in_features;
    if (const auto* gp = dynamic_cast<const GroupPackedLayer*>(inner_.get()))
      packed_ = gp->group_packed();
  }

  void forward(const float* x, size_t m, float* y) const override {
    if (m == 0) return;
    inner_->forward(x, m, y);
    const size_t n = out_features, k = in_features, ng = k / kGroup;
    if (g_sums.size() < m * ng) g_sums.resize(m * ng);
    if (g_extra.size() < m * n) g_extra.resize(m * n);
    float* sums = g_sums.data();
    for (size_t i = 0; i < m; ++i)
      for (size_t g = 0; g < ng; ++g) {
        float s = 0.0f;
        for (int e = 0; e < kGroup; ++e) s += x[i * k + g * kGroup + e];
        sums[i * ng + g] = s;
      }
    float* extra = g_extra.data();
    kernels::parallel_gemm_f32_f32(kernels::gemm_f32_f32__wasmsimd, m, n, ng, sums,
                                   offsets_.data(), nullptr, extra);
    for (size_t i = 0; i < m * n; ++i) y[i] += extra[i];
  }
  // Decode (m < kPrefillRows) in SIMD builds: the inner layer's x16 kernel with the offsets
  // added per group inside it, one pool hand-off and fusable with q/k/v or gate/up
  // (forward_rows); forward (and prefill) keeps float32 activations and the separate offset product.
  void forward_model(const float* x, size_t m, float* y) const override {
#if WEBQUANT_SIMD
    if (packed_.bits && m > 0 && m < kernels::kPrefillRows) {
      thread_local LinearRowsInput in;
      for (size_t i = 0; i < m; ++i) {
        prepare_rows(x + i * in_features, &in);
        kernels::parallel_gemm_x16_offset(kernel(), packed_.bits, packed_.geo, in.x16.data(),
                                          packed_.packed, packed_.scales, offsets_.data(), nullptr,
                                          y + i * out_features);
      }
      return;
    }
#endif
    forward(x, m, y);
  }
  bool has_forward_rows() const override { return packed_.bits != 0; }
  void prepare_rows(const float* x, LinearRowsInput* in) const override {
    inner_->prepare_rows(x, in);  // the same prepared row as the inner layer's
  }
  uint64_t rows_input_key() const override { return inner_->rows_input_key(); }
  void forward_rows(const LinearRowsInput& in, size_t j0, size_t j1, float* y,
                    float*) const override {
#if WEBQUANT_SIMD
    const size_t k = in_features, ng = packed_.geo.groups;
    const bool q4 = packed_.bits == 4;
    const kernels::GroupGeometry g = q4 ? kernels::make_group_geometry(j1 - j0, k, packed_.geo.group)
                                        : kernels::make_q8g_geometry(j1 - j0, k, packed_.geo.group);
    const size_t row_bytes = q4 ? packed_.geo.kpad() / 2 : packed_.geo.kpad();
    kernel()(g, in.x16.data(), packed_.packed + j0 * row_bytes, packed_.scales + j0 * ng,
             offsets_.data() + j0 * ng, nullptr, y);
#else
    (void)in, (void)j0, (void)j1, (void)y;
#endif
  }
  LinearScheme scheme() const override { return inner_->scheme(); }
  size_t weight_bytes() const override {
    return inner_->weight_bytes() + (offsets_.size() + mins_.size()) * sizeof(float) + sign_.size();
  }
  std::string describe() const override {
    return inner_->describe() + " + float group offsets (GGUF " + type_name_ + ")";
  }
  void dequantize_weight(float* out) const override {
    LinearQuantizedData d;
    if (!inner_->export_quantized(&d).ok()) return;
    const size_t k = in_features, ng = k / kGroup;
    const int mid = 1 << (bits_ - 1);
    for (size_t j = 0; j < size_t(out_features); ++j)
      for (size_t c = 0; c < k; ++c) {
        const size_t g = j * ng + c / kGroup;
        const int code = d.q[j * k + c];
        const float s = sign_[g] * d.scales[g];  // the block's s, exactly
        const int u = sign_[g] > 0 ? code + mid : sign_[g] < 0 ? mid - 1 - code : 0;
        out[j * k + c] = s * static_cast<float>(u) - mins_[g];
      }
  }
  Status export_quantized(LinearQuantizedData*) const override {
    return Status::Error(StatusCode::kUnsupported,
                         "a GGUF " + type_name_ +
                             " layer has float minimums, which webquant's integer format cannot hold; "
                             "dequantize the model or quantize it again");
  }

 private:
#if WEBQUANT_SIMD
  kernels::GemmX16OffsetFn kernel() const {
    return packed_.bits == 4 ? kernels::gemm_q4g_x16_offset__wasmsimd
                             : kernels::gemm_q8g_x16_offset__wasmsimd;
  }
#endif

  std::unique_ptr<LinearLayer> inner_;
  GroupPacked packed_;          // the inner layer's x16 form (bits 0: none)
  int bits_;
  std::vector<float> offsets_;  // [out, ng]: x = |s| c + offset
  std::vector<float> mins_;     // [out, ng]: mn
  std::vector<int8_t> sign_;    // [out, ng]: sign of s (-1, 0, 1)
  std::string type_name_;
};

}  // namespace

Status make_linear_gguf_affine(const GgufAffineWeight& w, std::unique_ptr<LinearLayer>* out) {
  if ((w.bits != 4 && w.bits != 5) || w.out_features < 1 || w.in_features < 1 ||
      w.in_features % kGroup != 0)
    return Status::Error(StatusCode::kInvalidArgument,
                         "GGUF affine layer: bits 4 or 5 and in_features a multiple of 32 are required");
  const size_t n = w.out_features, k = w.in_features, ng = k / kGroup;
  if (w.codes.size() != n * k || w.scales.size() != n * ng || w.mins.size() != n * ng)
    return Status::Error(StatusCode::kShapeMismatch, "GGUF affine layer: codes, scales and mins sizes differ");
  const int mid = 1 << (w.bits - 1);
  LinearQuantizedData d;
  d.scheme = w.bits == 4 ? LinearScheme::kW4A16 : LinearScheme::kW8A16;
  d.bits = w.bits == 4 ? 4 : 8;
  d.group_size = kGroup;
  d.out_features = w.out_features;
  d.in_features = w.in_features;
  d.q.resize(n * k);
  d.scales.resize(n * ng);
  d.zero_points.assign(n * ng, 0);
  std::vector<float> offsets(n * ng);
  std::vector<int8_t> sign(n * ng);
  for (size_t g = 0; g < n * ng; ++g) {
    const float s = w.scales[g], mn = w.mins[g];
    if (!std::isfinite(s) || !std::isfinite(mn))
      return Status::Error(StatusCode::kInvalidArgument, "GGUF affine layer: non-finite scale or min in group " + std::to_string(g));
    sign[g] = s > 0 ? 1 : s < 0 ? -1 : 0;
    d.scales[g] = sign[g] == 0 ? 1.0f : std::fabs(s);
    offsets[g] = sign[g] > 0 ? s * float(mid) - mn : sign[g] < 0 ? s * float(mid - 1) - mn : -mn;
    const size_t j = g / ng, c0 = (g % ng) * kGroup;
    for (int e = 0; e < kGroup; ++e) {
      const int u = w.codes[j * k + c0 + e];
      if (u >= 2 * mid)
        return Status::Error(StatusCode::kInvalidArgument, "GGUF affine layer: code out of range");
      d.q[j * k + c0 + e] = static_cast<int8_t>(sign[g] > 0 ? u - mid : sign[g] < 0 ? mid - 1 - u : 0);
    }
  }
  std::unique_ptr<LinearLayer> inner;
  WQ_RETURN_IF_ERROR(make_linear_from_quantized(d, &inner));
  *out = std::make_unique<LinearGgufAffine>(std::move(inner), w.bits, std::move(offsets),
                                            std::vector<float>(w.mins), std::move(sign), w.type_name);
  return Status::Ok();
}

}  // namespace webquant::linear_detail
