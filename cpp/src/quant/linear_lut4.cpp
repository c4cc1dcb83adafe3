// 4-bit codebook linear layers (lut4a16: nf4, log4, kmeans4; webquant/codebook.h) on the
// lookup-table kernels of kernels/gemm/gemm_lut4g.h.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm/gemm_lut4g.h"
#include "quant/linear_internal.h"
#include "webquant/codebook.h"

namespace webquant::linear_detail {
namespace {

thread_local std::vector<float> g_work;

class LinearLut4 final : public LinearLayer {
 public:
  // idx: [out, in] table indices; scales: [out, ceil(in / group)]; table: 16 floats.
  LinearLut4(Codebook codebook, const float* table, int out, int in, int group,
             const uint8_t* idx, const float* scales, std::vector<float> bias,
             std::string fallback)
      : codebook_(codebook), table_(table, table + 16),
        geo_(kernels::make_lut4g_geometry(out, in, group)),
        scales_(scales, scales + size_t(out) * ((in + group - 1) / group)), bias_(std::move(bias)),
        fallback_(std::move(fallback)) {
    out_features = out;
    in_features = in;
    packed_.resize(kernels::packed_lut4g_bytes(geo_));
    kernels::pack_lut4g(geo_, idx, packed_.data());
  }
  void forward(const float* x, size_t m, float* y) const override {
    if (m == 0) return;
    const size_t need = kernels::gemm_lut4g_workspace(geo_);
    if (g_work.size() < need) g_work.resize(need);
    kernels::gemm_lut4g_f32__wasmsimd(m, geo_, x, packed_.data(), table_.data(), scales_.data(),
                                      bias_.empty() ? nullptr : bias_.data(), y, g_work.data());
  }
  LinearScheme scheme() const override { return LinearScheme::kLut4A16; }
  size_t weight_bytes() const override {
    return packed_.size() + (table_.size() + scales_.size() + bias_.size()) * sizeof(float);
  }
  std::string describe() const override {
    std::string s = codebook_name(codebook_);
    if (!fallback_.empty()) return s + " per-channel (" + fallback_ + ")";
    if (int(geo_.group) == in_features) return s + " per-channel";
    if (geo_.k % geo_.group != 0)  // ragged, as describe_quantized says it
      return s + " g" + std::to_string(geo_.group) + " ragged (" + std::to_string(geo_.k) + " = " +
             std::to_string(geo_.k / geo_.group) + " x " + std::to_string(geo_.group) + " + " +
             std::to_string(geo_.k % geo_.group) + ")";
    return s + " g" + std::to_string(geo_.group);
  }
  void dequantize_weight(float* out) const override { dequantize_rows(0, geo_.n, out); }
  void dequantize_rows(size_t first, size_t n, float* out) const override {
    for (size_t j = first; j < first + n; ++j)
      for (size_t c = 0; c < geo_.k; ++c)
        out[(j - first) * geo_.k + c] = scales_[j * geo_.groups + c / geo_.group] *
                                        table_[kernels::packed_lut4g_get(geo_, packed_.data(), j, c)];
  }
  std::vector<float> bias() const override { return bias_; }
  Status export_quantized(LinearQuantizedData* d) const override {
    *d = LinearQuantizedData();
    d->scheme = LinearScheme::kLut4A16;
    d->bits = 4;
    d->group_size = static_cast<int>(geo_.group);
    d->out_features = out_features;
    d->in_features = in_features;
    d->codebook = codebook_;
    d->table = table_;
    d->q.resize(geo_.n * geo_.k);
    for (size_t j = 0; j < geo_.n; ++j)
      for (size_t c = 0; c < geo_.k; ++c)
        d->q[j * geo_.k + c] =
            static_cast<int8_t>(int(kernels::packed_lut4g_get(geo_, packed_.data(), j, c)) - 8);
    d->scales = scales_;
    d->zero_points.assign(scales_.size(), 0);
    d->bias = bias_;
    d->fallback = fallback_;
    return Status::Ok();
  }

 private:
  Codebook codebook_;
  std::vector<float> table_;
  kernels::Lut4gGeometry geo_;
  std::vector<uint8_t> packed_;
  std::vector<float> scales_;  // [n, ng]
  std::vector<float> bias_;
  std::string fallback_;
};

}  // namespace

Status make_linear_lut4(const float* w, int out, int in, int group, Codebook codebook,
                        std::vector<float> bias, std::string fallback,
                        std::unique_ptr<LinearLayer>* layer) {
  float table[16];
  if (codebook == Codebook::kKmeans4) {
    WQ_RETURN_IF_ERROR(kmeans_codebook(w, size_t(out), size_t(in), size_t(group), 20, table));
  } else {
    WQ_RETURN_IF_ERROR(fixed_codebook(codebook, table));
  }
  std::vector<uint8_t> idx(size_t(out) * in);
  std::vector<float> scales(size_t(out) * ((in + group - 1) / group));
  WQ_RETURN_IF_ERROR(
      codebook_quantize(w, size_t(out), size_t(in), size_t(group), table, idx.data(), scales.data()));
  *layer = std::make_unique<LinearLut4>(codebook, table, out, in, group, idx.data(), scales.data(),
                                        std::move(bias), std::move(fallback));
  return Status::Ok();
}

Status make_linear_lut4_from_data(const LinearQuantizedData& d, std::vector<float> bias,
                                  std::string fallback, std::unique_ptr<LinearLayer>* layer) {
  if (d.codebook == Codebook::kNone || static_cast<int>(d.codebook) > 3)
    return Status::Error(StatusCode::kInvalidArgument, "lut4a16 needs a codebook (nf4, log4, kmeans4)");
  if (d.table.size() != 16)
    return Status::Error(StatusCode::kShapeMismatch, "lut4a16 needs a table of 16 floats, got " +
                                                         std::to_string(d.table.size()));
  for (size_t e = 0; e < 16; ++e)
    if (!std::isfinite(d.table[e]) || (e > 0 && d.table[e] < d.table[e - 1]))
      return Status::Error(StatusCode::kInvalidArgument,
                           "lut4a16 table entry " + std::to_string(e) +
                               " is not finite or not in ascending order");
  if (d.asymmetric)
    return Status::Error(StatusCode::kInvalidArgument, "lut4a16 layers have no zero points");
  std::vector<uint8_t> idx(d.q.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<uint8_t>(d.q[i] + 8);
  *layer = std::make_unique<LinearLut4>(d.codebook, d.table.data(), d.out_features, d.in_features,
                                        d.group_size, idx.data(), d.scales.data(), std::move(bias),
                                        std::move(fallback));
  return Status::Ok();
}

}  // namespace webquant::linear_detail
