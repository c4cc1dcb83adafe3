#include "nn/conv2d.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace webquant::nn {

using kernels::ConvGeometry;

namespace {
constexpr size_t kMaxStaticA8K = 131072;  // int8 x int8 (or int4) sums stay exact in int32
}  // namespace

const char* conv_scheme_name(ConvScheme s) {
  switch (s) {
    case ConvScheme::kF32: return "f32";
    case ConvScheme::kW8: return "w8a16";
    case ConvScheme::kW8A8: return "w8a8";
    case ConvScheme::kW4: return "w4a16";
    case ConvScheme::kW4A8: return "w4a8";
  }
  return "?";
}

Status fold_batchnorm(int out, size_t per_out, float* weight, std::vector<float>* bias,
                      const float* gamma, const float* beta, const float* mean, const float* var,
                      float eps) {
  if (bias->empty()) bias->assign(static_cast<size_t>(out), 0.0f);
  if (bias->size() != static_cast<size_t>(out)) {
    return Status::Error(StatusCode::kShapeMismatch, "fold_batchnorm: bias has " +
                                                         std::to_string(bias->size()) +
                                                         " values for " + std::to_string(out) +
                                                         " channels");
  }
  for (int o = 0; o < out; ++o) {
    const double d = double(var[o]) + double(eps);
    if (!(d > 0) || !std::isfinite(d) || !std::isfinite(gamma[o]) || !std::isfinite(beta[o]) ||
        !std::isfinite(mean[o])) {
      return Status::Error(StatusCode::kInvalidArgument,
                           "fold_batchnorm: channel " + std::to_string(o) +
                               " has non-finite parameters or running_var + eps <= 0");
    }
    const double f = double(gamma[o]) / std::sqrt(d);
    for (size_t i = 0; i < per_out; ++i) weight[o * per_out + i] = float(weight[o * per_out + i] * f);
    (*bias)[o] = float((double((*bias)[o]) - mean[o]) * f + beta[o]);
  }
  return Status::Ok();
}

Status Conv2d::create(const Conv2dSpec& s, const float* weight, const float* bias,
                      ConvScheme scheme, Conv2d* out, int group_size) {
  if (int(scheme) < 0 || int(scheme) > int(ConvScheme::kW4A8)) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "Conv2d: unknown scheme " + std::to_string(int(scheme)) +
                             " (expected f32, w8a16, w8a8, w4a16 or w4a8)");
  }
  if (group_size < 0) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "Conv2d: group_size must be >= 1, or 0 for per-channel scales (got " +
                             std::to_string(group_size) + ")");
  }
  if (s.in_channels <= 0 || s.out_channels <= 0 || s.kernel_h <= 0 || s.kernel_w <= 0 ||
      s.stride_h <= 0 || s.stride_w <= 0 || s.pad_h < 0 || s.pad_w < 0 || s.dil_h <= 0 ||
      s.dil_w <= 0 || s.groups <= 0 || s.in_channels % s.groups || s.out_channels % s.groups) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "Conv2d: sizes must be positive (padding >= 0) and in/out channels "
                         "divisible by groups");
  }
  Conv2d c;
  c.spec_ = s;
  c.scheme_ = scheme;
  c.cin_g_ = size_t(s.in_channels / s.groups);
  c.cout_g_ = size_t(s.out_channels / s.groups);
  const size_t kk = size_t(s.kernel_h) * size_t(s.kernel_w);
  c.k_ = kk * c.cin_g_;
  if (conv_scheme_static_a8(scheme) && c.k_ > kMaxStaticA8K) {
    return Status::Error(StatusCode::kInvalidArgument,
                         std::string("Conv2d: ") + conv_scheme_name(scheme) + " accumulates K = " +
                             std::to_string(c.k_) + " int8 products in int32; at most " +
                             std::to_string(kMaxStaticA8K) + " are exact");
  }
  const size_t total = size_t(s.out_channels) * c.k_;
  for (size_t i = 0; i < total; ++i) {
    if (!std::isfinite(weight[i])) {
      return Status::Error(StatusCode::kNonFinite, "Conv2d: weight " + std::to_string(i) + " is not finite");
    }
  }
  c.bias_.assign(size_t(s.out_channels), 0.0f);
  if (bias) std::copy(bias, bias + s.out_channels, c.bias_.begin());
  // OIHW -> per output channel [kh, kw, cin_g] (the im2col column order).
  std::vector<float> w(total);
  for (size_t o = 0; o < size_t(s.out_channels); ++o)
    for (size_t ci = 0; ci < c.cin_g_; ++ci)
      for (size_t t = 0; t < kk; ++t) w[o * c.k_ + t * c.cin_g_ + ci] = weight[(o * c.cin_g_ + ci) * kk + t];
  if (scheme == ConvScheme::kF32) {
    c.w_ = std::move(w);
  } else if (c.is_q4()) {
    WQ_RETURN_IF_ERROR(c.make_q4(w, group_size));
  } else {
    c.geo_ = kernels::make_q8c_geometry(c.cout_g_, c.k_);
    std::vector<int8_t> q(c.cout_g_ * c.k_);
    for (int g = 0; g < s.groups; ++g) {
      std::vector<float> sc(c.geo_.np, 0.0f);
      for (size_t o = 0; o < c.cout_g_; ++o) {
        const float* row = w.data() + (g * c.cout_g_ + o) * c.k_;
        float mx = 0.0f;
        for (size_t i = 0; i < c.k_; ++i) mx = std::max(mx, std::fabs(row[i]));
        const float scale = mx / 127.0f;
        sc[o] = scale;
        for (size_t i = 0; i < c.k_; ++i) {
          const float v = scale > 0 ? std::nearbyint(row[i] / scale) : 0.0f;
          q[o * c.k_ + i] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
        }
      }
      std::vector<uint8_t> packed(kernels::packed_q8c_bytes(c.cout_g_, c.k_));
      kernels::pack_q8c(q.data(), c.cout_g_, c.k_, packed.data());
      c.packed_.push_back(std::move(packed));
      c.scales_.push_back(std::move(sc));
    }
  }
  *out = std::move(c);
  return Status::Ok();
}

Status Conv2d::set_activation_scale(float scale) {
  if (!(scale > 0) || !std::isfinite(scale)) {
    return Status::Error(StatusCode::kInvalidArgument, "Conv2d: activation scale must be finite and > 0");
  }
  act_scale_ = scale;
  return Status::Ok();
}

size_t Conv2d::weight_bytes() const {
  size_t b = bias_.size() * 4;
  if (scheme_ == ConvScheme::kF32) return b + w_.size() * 4;
  if (is_q4()) {
    // Packed codes (4 bits each, padded to whole blocks) + one float scale per group, per conv group.
    for (size_t g = 0; g < packed_.size(); ++g) b += packed_[g].size() + scales_[g].size() * 4;
    return b;
  }
  return b + size_t(spec_.out_channels) * (k_ + 4);
}

std::string Conv2d::describe() const {
  std::string s = conv_scheme_name(scheme_);
  if (scheme_ == ConvScheme::kF32) return s;
  if (!fallback_.empty()) {
    s += " per-channel (" + fallback_ + ")";
  } else if (!is_q4() || geo_.group == k_) {
    s += " per-channel";
  } else {
    s += " g" + std::to_string(geo_.group);
  }
  s += " sym";
  if (conv_scheme_static_a8(scheme_)) s += ", activations int8 static per layer";
  return s;
}

void Conv2d::dequantize_weight(float* weight) const {
  const size_t kk = size_t(spec_.kernel_h) * size_t(spec_.kernel_w);
  for (size_t o = 0; o < size_t(spec_.out_channels); ++o) {
    const size_t grp = o / cout_g_, r = o % cout_g_;
    for (size_t t = 0; t < kk; ++t) {
      for (size_t ci = 0; ci < cin_g_; ++ci) {
        const size_t col = t * cin_g_ + ci;  // im2col order [kh, kw, cin_g]
        float v;
        if (scheme_ == ConvScheme::kF32) {
          v = w_[o * k_ + col];
        } else if (is_q4()) {
          const size_t idx = kernels::qg_param_index(geo_, r, col / geo_.group);
          const int u = kernels::packed_qg_get(geo_, 4, packed_[grp].data(), r, col);
          v = scales_[grp][idx] * float(u - 8);
        } else {
          v = scales_[grp][r] * float(kernels::packed_q8c_get(packed_[grp].data(), k_, r, col));
        }
        weight[(o * cin_g_ + ci) * kk + t] = v;
      }
    }
  }
}

Status Conv2d::run(const float* x, size_t h, size_t w, std::vector<float>* y, size_t* oh,
                   size_t* ow, bool int8_activations) const {
  ConvGeometry g;
  g.h = h;
  g.w = w;
  g.c = size_t(spec_.in_channels);
  g.kh = size_t(spec_.kernel_h);
  g.kw = size_t(spec_.kernel_w);
  g.stride_h = size_t(spec_.stride_h);
  g.stride_w = size_t(spec_.stride_w);
  g.pad_h = size_t(spec_.pad_h);
  g.pad_w = size_t(spec_.pad_w);
  g.dil_h = size_t(spec_.dil_h);
  g.dil_w = size_t(spec_.dil_w);
  if (h == 0 || w == 0 || h + 2 * g.pad_h < g.dil_h * (g.kh - 1) + 1 ||
      w + 2 * g.pad_w < g.dil_w * (g.kw - 1) + 1) {
    return Status::Error(StatusCode::kShapeMismatch,
                         "Conv2d: input " + std::to_string(h) + "x" + std::to_string(w) +
                             " is smaller than the kernel window");
  }
  if (int8_activations && act_scale_ <= 0) {
    return Status::Error(StatusCode::kInvalidArgument, std::string("Conv2d: ") + conv_scheme_name(scheme_) + " needs a calibrated activation scale");
  }
  if (int8_activations) {
    const size_t n = h * w * g.c;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) return Status::Error(StatusCode::kNonFinite, "Conv2d: input holds NaN or Inf");
    }
  }
  const size_t m = g.oh() * g.ow(), cout = size_t(spec_.out_channels), groups = size_t(spec_.groups);
  *oh = g.oh();
  *ow = g.ow();
  y->assign(m * cout, 0.0f);
  if (is_q4()) {
    run_q4(g, x, int8_activations, y);
    return Status::Ok();
  }
  std::vector<float> tmp(groups > 1 ? m * cout_g_ : 0);
  auto scatter = [&](size_t grp) {
    if (groups == 1) return;
    for (size_t p = 0; p < m; ++p)
      std::copy(tmp.begin() + p * cout_g_, tmp.begin() + (p + 1) * cout_g_, y->begin() + p * cout + grp * cout_g_);
  };
  if (int8_activations) {
    const size_t n = h * w * g.c;
    std::vector<int8_t> xq(n), cols(m * geo_.kpad());
    kernels::quantize_static_f32_s8__wasmsimd(n, x, act_scale_, xq.data());
    std::vector<float> xscale(m, act_scale_);
    std::vector<int32_t> xsum(m);
    for (size_t grp = 0; grp < groups; ++grp) {
      kernels::im2col_hwc_s8__wasmsimd(g, grp * cin_g_, cin_g_, geo_.kpad(), xq.data(), cols.data());
      for (size_t p = 0; p < m; ++p) {
        int32_t s = 0;
        for (size_t i = 0; i < k_; ++i) s += cols[p * geo_.kpad() + i];
        xsum[p] = s;
      }
      float* dst = groups == 1 ? y->data() : tmp.data();
      kernels::gemm_q8c_s8__wasmsimd(m, geo_, cols.data(), xscale.data(), xsum.data(),
                                     packed_[grp].data(), scales_[grp].data(),
                                     bias_.data() + grp * cout_g_, dst);
      scatter(grp);
    }
    return Status::Ok();
  }
  std::vector<float> cols(m * k_);
  std::vector<float> work(scheme_ != ConvScheme::kF32 ? kernels::gemm_f32_workspace(m, geo_) : 0);
  for (size_t grp = 0; grp < groups; ++grp) {
    kernels::im2col_hwc_f32__wasmsimd(g, grp * cin_g_, cin_g_, k_, x, cols.data());
    float* dst = groups == 1 ? y->data() : tmp.data();
    if (scheme_ == ConvScheme::kF32) {
      kernels::gemm_f32_f32__wasmsimd(m, cout_g_, k_, cols.data(), w_.data() + grp * cout_g_ * k_,
                                      bias_.data() + grp * cout_g_, dst);
    } else {
      kernels::gemm_q8c_f32__wasmsimd(m, geo_, cols.data(), packed_[grp].data(), scales_[grp].data(),
                                      bias_.data() + grp * cout_g_, dst, work.data());
    }
    scatter(grp);
  }
  return Status::Ok();
}

}  // namespace webquant::nn
