// The int4 schemes of Conv2d (kW4 "w4a16", kW4A8 "w4a8"): im2col feeds the grouped 4-bit GEMM
// kernels of the linear layers (gemm_q4g_f32 / gemm_q4g_s8, kernels/gemm/gemm.h) with one conv
// group's weight [cout_g, K] (K in im2col order [kh, kw, cin_g]) packed by pack_qg.
#include <algorithm>
#include <string>

#include "nn/conv2d.h"
#include "webquant/quant.h"

namespace webquant::nn {

Status Conv2d::make_q4(const std::vector<float>& w, int group_size) {
  size_t group = group_size == 0 ? k_ : size_t(group_size);
  if (k_ % group != 0) {
    // As the linear layers: a group size that does not divide K becomes one group per channel.
    fallback_ = std::to_string(k_) + " % " + std::to_string(group) + " != 0";
    group = k_;
  }
  geo_ = kernels::make_group_geometry(cout_g_, k_, group);
  QuantScheme qs;
  qs.bits = 4;
  qs.is_signed = true;
  qs.mode = QuantMode::kSymmetric;
  if (group == k_) {
    qs.granularity = Granularity::kPerChannel;
    qs.axis = 0;
  } else {
    qs.granularity = Granularity::kPerGroup;
    qs.group_size = int(group);
  }
  const size_t ng = geo_.groups;
  const std::vector<uint8_t> zero_codes(cout_g_ * ng, 8);  // symmetric: u = q + 8, zero code 8
  for (int grp = 0; grp < spec_.groups; ++grp) {
    QuantizedTensor qt;
    WQ_RETURN_IF_ERROR(quantize(w.data() + size_t(grp) * cout_g_ * k_,
                                {int64_t(cout_g_), int64_t(k_)}, qs, &qt));
    std::vector<uint8_t> codes(cout_g_ * k_);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = uint8_t(qt.code(i) + 8);
    std::vector<uint8_t> packed(kernels::packed_qg_bytes(geo_, 4));
    kernels::pack_qg(geo_, 4, codes.data(), zero_codes.data(), packed.data());
    std::vector<float> sc(geo_.params(), 0.0f);
    for (size_t j = 0; j < cout_g_; ++j)
      for (size_t g = 0; g < ng; ++g) sc[kernels::qg_param_index(geo_, j, g)] = qt.scales[j * ng + g];
    packed_.push_back(std::move(packed));
    scales_.push_back(std::move(sc));
  }
  return Status::Ok();
}

void Conv2d::run_q4(const kernels::ConvGeometry& g, const float* x, bool int8_activations,
                    std::vector<float>* y) const {
  const size_t m = g.oh() * g.ow(), cout = size_t(spec_.out_channels), groups = size_t(spec_.groups);
  std::vector<float> tmp(groups > 1 ? m * cout_g_ : 0);
  auto dst = [&]() { return groups == 1 ? y->data() : tmp.data(); };
  auto scatter = [&](size_t grp) {
    if (groups == 1) return;
    for (size_t p = 0; p < m; ++p)
      std::copy(tmp.begin() + p * cout_g_, tmp.begin() + (p + 1) * cout_g_, y->begin() + p * cout + grp * cout_g_);
  };
  if (!int8_activations) {
    std::vector<float> cols(m * k_), work(kernels::gemm_f32_workspace(m, geo_));
    for (size_t grp = 0; grp < groups; ++grp) {
      kernels::im2col_hwc_f32__wasmsimd(g, grp * cin_g_, cin_g_, k_, x, cols.data());
      kernels::gemm_q4g_f32__wasmsimd(m, geo_, cols.data(), packed_[grp].data(), scales_[grp].data(),
                                      nullptr, bias_.data() + grp * cout_g_, dst(), work.data());
      scatter(grp);
    }
    return;
  }
  // Static int8 activations in the padded geometry of gemm.h: row p holds group q at q * Gp, the
  // padding 0. With Gp == G (or one group) that is im2col with row stride kpad; otherwise im2col
  // writes plain rows first and each group is copied to its padded place.
  const size_t n = g.h * g.w * g.c, kpad = geo_.kpad(), ng = geo_.groups, G = geo_.group;
  const bool direct = ng == 1 || geo_.gp == G;
  std::vector<int8_t> xq(n), cols(m * kpad, 0), plain(direct ? 0 : m * k_);
  kernels::quantize_static_f32_s8__wasmsimd(n, x, act_scale_, xq.data());
  const std::vector<float> xscale(m, act_scale_);
  std::vector<int32_t> xsum(m * ng);
  for (size_t grp = 0; grp < groups; ++grp) {
    if (direct) {
      kernels::im2col_hwc_s8__wasmsimd(g, grp * cin_g_, cin_g_, kpad, xq.data(), cols.data());
    } else {
      kernels::im2col_hwc_s8__wasmsimd(g, grp * cin_g_, cin_g_, k_, xq.data(), plain.data());
      for (size_t p = 0; p < m; ++p)
        for (size_t q = 0; q < ng; ++q)
          std::copy_n(plain.begin() + p * k_ + q * G, G, cols.begin() + p * kpad + q * geo_.gp);
    }
    for (size_t p = 0; p < m; ++p) {
      for (size_t q = 0; q < ng; ++q) {
        int32_t s = 0;
        for (size_t i = 0; i < G; ++i) s += cols[p * kpad + q * geo_.gp + i];
        xsum[p * ng + q] = s;
      }
    }
    kernels::gemm_q4g_s8__wasmsimd(m, geo_, cols.data(), xscale.data(), xsum.data(),
                                   packed_[grp].data(), scales_[grp].data(), nullptr,
                                   bias_.data() + grp * cout_g_, dst());
    scatter(grp);
  }
}

}  // namespace webquant::nn
