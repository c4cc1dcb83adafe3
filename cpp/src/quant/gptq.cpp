// GPTQ for one linear layer (calibration.h), after IST-DASLab/gptq `GPTQ.fasterquant`:
//   dead columns (H[i,i] == 0) are zeroed; optional act-order permutation; H += damp * mean(diag)
//   * I; Hinv = the upper Cholesky factor U of H^-1 (H^-1 = U^T U); then column by column
//   q_i = Q(w_i), e = (w_i - q_i) / U[i,i], w_j -= e * U[i,j] for the later columns of the lazy
//   batch (row by row), and the batch's errors are applied to the columns after it at the end of
//   the batch as one float32 GEMM (the reference implementation's Err1.matmul(Hinv1[i1:i2, i2:])).
// Scales are webquant's RTN parameters (compute_scale_zero_point) of each group of the
// error-updated weights at the moment the group starts (per channel and act-order: of the
// original weights), so the codes land on an ordinary per-group layer.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "quant/calibration_internal.h"
#include "webquant/calibration.h"
#include "webquant/quant.h"

namespace webquant {
namespace calib_detail {

Status invalid(std::string m) { return Status::Error(StatusCode::kInvalidArgument, std::move(m)); }

int spec_bits(LinearScheme s) {
  switch (s) {
    case LinearScheme::kW8A16:
    case LinearScheme::kW8A8: return 8;
    case LinearScheme::kW4A16:
    case LinearScheme::kW4A8: return 4;
    case LinearScheme::kW3A16: return 3;
    case LinearScheme::kW2A16: return 2;
    default: return 0;
  }
}

Status check_layer_args(const float* w, int out_features, int in_features, const double* h,
                        const LinearQuantSpec& spec, int* bits, int* group, std::string* fallback,
                        std::string* note, bool check_h) {
  if (note) note->clear();
  fallback->clear();
  if (w == nullptr || (check_h && h == nullptr)) return invalid("weight and Hessian must not be null");
  if (out_features < 1 || in_features < 1) return invalid("out_features and in_features must be >= 1");
  *bits = spec_bits(spec.scheme);
  if (*bits == 0) return invalid("a calibrated method needs a quantized scheme (w8a16, w4a16, w3a16, w2a16, w8a8 or w4a8)");
  if (spec.group_size < 0) return invalid("group_size must be >= 1, or 0 for per channel");
  *group = spec.group_size == 0 ? in_features : spec.group_size;
  if (spec.ragged && *group > in_features) *group = in_features;  // as make_linear_quantized
  if (in_features % *group != 0 && !spec.ragged) {
    *fallback = std::to_string(in_features) + " % " + std::to_string(*group) + " != 0";
    if (note)
      *note = "in_features " + std::to_string(in_features) + " is not a multiple of group_size " +
              std::to_string(*group) + ": using per-channel scales (one group of " +
              std::to_string(in_features) + " per output row)";
    *group = in_features;
  }
  const size_t n = static_cast<size_t>(out_features) * in_features;
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(w[i])) return Status::Error(StatusCode::kNonFinite, "weight has a non-finite value at index " + std::to_string(i));
  if (!check_h) return Status::Ok();
  const size_t nh = static_cast<size_t>(in_features) * in_features;
  for (size_t i = 0; i < nh; ++i)
    if (!std::isfinite(h[i])) return Status::Error(StatusCode::kNonFinite, "Hessian has a non-finite value at index " + std::to_string(i));
  return Status::Ok();
}

int32_t round_code(float w, float s, int32_t z, int bits) {
  const int32_t qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
  const float q = std::nearbyint(w / s + static_cast<float>(z));
  return static_cast<int32_t>(std::min(std::max(q, static_cast<float>(qmin)), static_cast<float>(qmax)));
}

Status build_layer(LinearQuantizedData d, const float* bias, std::unique_ptr<LinearLayer>* out) {
  if (bias) d.bias.assign(bias, bias + d.out_features);
  return make_linear_from_quantized(d, out);
}

}  // namespace calib_detail

using namespace calib_detail;

Status calib_detail::gptq_factor(const double* h, int n, const GptqOptions& opt, GptqFactor* out) {
  if (h == nullptr || out == nullptr) return invalid("Hessian and factor must not be null");
  if (n < 1) return invalid("in_features must be >= 1");
  if (!(opt.dampening >= 0.0) || !std::isfinite(opt.dampening))
    return invalid("GPTQ dampening must be finite and >= 0 (got " + std::to_string(opt.dampening) + ")");
  const size_t C = static_cast<size_t>(n);
  for (size_t i = 0; i < C * C; ++i)
    if (!std::isfinite(h[i])) return Status::Error(StatusCode::kNonFinite, "Hessian has a non-finite value at index " + std::to_string(i));
  GptqFactor f;
  f.n = n;
  f.dead.assign(C, 0);
  std::vector<double> H(h, h + C * C);
  for (size_t i = 0; i < C; ++i) {
    if (H[i * C + i] == 0.0) {  // a dead input: never active, its weights do not matter
      H[i * C + i] = 1.0;
      f.dead[i] = 1;
    }
  }
  f.perm.resize(C);
  std::iota(f.perm.begin(), f.perm.end(), size_t{0});
  if (opt.act_order) {
    std::stable_sort(f.perm.begin(), f.perm.end(), [&](size_t a, size_t b) { return H[a * C + a] > H[b * C + b]; });
    std::vector<double> Hp(C * C);
    for (size_t i = 0; i < C; ++i)
      for (size_t j = 0; j < C; ++j) Hp[i * C + j] = H[f.perm[i] * C + f.perm[j]];
    H.swap(Hp);
  }
  double mean_diag = 0.0;
  for (size_t i = 0; i < C; ++i) mean_diag += H[i * C + i];
  mean_diag /= static_cast<double>(C);
  for (size_t i = 0; i < C; ++i) H[i * C + i] += opt.dampening * mean_diag;
  if (!upper_cholesky_of_inverse(H, n, &f.u))
    return invalid("GPTQ: the dampened Hessian is not positive definite (raise dampening, now " +
                   std::to_string(opt.dampening) + ")");
  *out = std::move(f);
  return Status::Ok();
}

// gptq_grid.cpp: GptqGrid::kHqq.
Status gptq_quantize_linear_hqq_grid(const float* w, int out_features, int in_features,
                                     const float* bias, const double* h,
                                     const LinearQuantSpec& spec, const GptqOptions& opt,
                                     std::unique_ptr<LinearLayer>* out, std::string* note);

Status gptq_quantize_linear(const float* w, int out_features, int in_features, const float* bias,
                            const double* h, const LinearQuantSpec& spec, const GptqOptions& opt,
                            std::unique_ptr<LinearLayer>* out, std::string* note) {
  if (opt.grid == GptqGrid::kHqq)
    return gptq_quantize_linear_hqq_grid(w, out_features, in_features, bias, h, spec, opt, out, note);
  if (opt.grid != GptqGrid::kRtn) return invalid("GPTQ grid must be rtn or hqq");
  if (out == nullptr) return invalid("out must not be null");
  int bits = 0, G = 0;
  std::string fallback;
  WQ_RETURN_IF_ERROR(check_layer_args(w, out_features, in_features, h, spec, &bits, &G, &fallback, note));
  if (opt.block_size < 1) return invalid("GPTQ blockSize must be >= 1 (got " + std::to_string(opt.block_size) + ")");
  GptqFactor f;
  WQ_RETURN_IF_ERROR(gptq_factor(h, in_features, opt, &f));
  return gptq_quantize_factored(w, out_features, in_features, bias, f, spec, opt, out, note);
}

Status calib_detail::gptq_quantize_factored(const float* w, int out_features, int in_features, const float* bias,
                              const GptqFactor& f, const LinearQuantSpec& spec,
                              const GptqOptions& opt, std::unique_ptr<LinearLayer>* out,
                              std::string* note) {
  if (out == nullptr) return invalid("out must not be null");
  int bits = 0, G = 0;
  std::string fallback;
  WQ_RETURN_IF_ERROR(check_layer_args(w, out_features, in_features, nullptr, spec, &bits, &G, &fallback, note, false));
  if (opt.block_size < 1) return invalid("GPTQ blockSize must be >= 1 (got " + std::to_string(opt.block_size) + ")");
  if (f.n != in_features || f.u.size() != static_cast<size_t>(in_features) * in_features)
    return invalid("GPTQ: the Hessian factor is for " + std::to_string(f.n) + " inputs, the layer has " + std::to_string(in_features));
  const size_t R = static_cast<size_t>(out_features), C = static_cast<size_t>(in_features);
  const size_t ng = (C + G - 1) / static_cast<size_t>(G);  // the last group ragged when G does not divide C
  const QuantMode mode = spec.asymmetric ? QuantMode::kAsymmetric : QuantMode::kSymmetric;
  const std::vector<size_t>& perm = f.perm;
  const float* U = f.u.data();

  std::vector<float> W(w, w + R * C);
  for (size_t i = 0; i < C; ++i)
    if (f.dead[i])
      for (size_t r = 0; r < R; ++r) W[r * C + i] = 0.0f;
  LinearQuantizedData d;
  d.scheme = spec.scheme;
  d.asymmetric = spec.asymmetric;
  d.bits = bits;
  d.group_size = G;
  d.out_features = out_features;
  d.in_features = in_features;
  d.fallback = fallback;
  d.q.assign(R * C, 0);
  d.scales.assign(R * ng, 1.0f);
  d.zero_points.assign(R * ng, 0);

  // Parameters fixed up front: per channel (one group) and act-order (static groups).
  const bool static_params = G == in_features || opt.act_order;
  if (static_params) {
    for (size_t r = 0; r < R; ++r)
      for (size_t g = 0; g < ng; ++g)
        WQ_RETURN_IF_ERROR(compute_scale_zero_point(&W[r * C + g * G], std::min<size_t>(G, C - g * G), bits, true, mode,
                                                    &d.scales[r * ng + g], &d.zero_points[r * ng + g]));
  }
  if (opt.act_order) {
    std::vector<float> Wp(R * C);
    for (size_t r = 0; r < R; ++r)
      for (size_t j = 0; j < C; ++j) Wp[r * C + j] = W[r * C + perm[j]];
    W.swap(Wp);
  }

  // Groups computed on the fly must lie inside one batch: round the batch up to whole groups.
  size_t B = static_cast<size_t>(opt.block_size);
  if (!static_params) B = (B + G - 1) / G * G;
  std::vector<float> err(R * B), ut, y;
  for (size_t i1 = 0; i1 < C; i1 += B) {
    const size_t i2 = std::min(i1 + B, C), nb = i2 - i1;
    // Inside the batch, row by row (rows are independent: they share only U): the row's batch
    // columns stay in L1 while each column's error is spread over the later ones.
    for (size_t r = 0; r < R; ++r) {
      float* wr = &W[r * C];
      float* er = &err[r * B];
      for (size_t i = i1; i < i2; ++i) {
        const size_t col = perm[i];
        if (!static_params && i % G == 0)
          WQ_RETURN_IF_ERROR(compute_scale_zero_point(&wr[i], std::min<size_t>(G, C - i), bits, true, mode,
                                                      &d.scales[r * ng + i / G], &d.zero_points[r * ng + i / G]));
        const size_t p = r * ng + col / G;
        const float s = d.scales[p];
        const int32_t z = d.zero_points[p];
        const int32_t q = round_code(wr[i], s, z, bits);
        d.q[r * C + col] = static_cast<int8_t>(q);
        const float e = (wr[i] - s * static_cast<float>(q - z)) / U[i * C + i];
        er[i - i1] = e;
        const float* urow = U + i * C;
        for (size_t j = i + 1; j < i2; ++j) wr[j] -= e * urow[j];
      }
    }
    if (i2 == C) break;
    // The lazy update W[:, i2:] -= Err[:, batch] U[batch, i2:] as the linear layers' float32 GEMM
    // (y = x w^T with x = Err [R, B] and w = U[batch, i2:]^T [C - i2, B]).
    const size_t rest = C - i2;
    ut.resize(rest * B);
    for (size_t k = 0; k < nb; ++k) {
      const float* urow = U + (i1 + k) * C + i2;
      for (size_t j = 0; j < rest; ++j) ut[j * B + k] = urow[j];
    }
    y.resize(R * rest);
    kernels::parallel_gemm_f32_f32(kernels::gemm_f32_f32__wasmsimd, R, rest, B, err.data(), ut.data(), nullptr, y.data());
    for (size_t r = 0; r < R; ++r) {
      float* wr = &W[r * C + i2];
      const float* yr = &y[r * rest];
      for (size_t j = 0; j < rest; ++j) wr[j] -= yr[j];
    }
  }
  for (float v : W)
    if (!std::isfinite(v)) return Status::Error(StatusCode::kNonFinite, "GPTQ: the error feedback diverged (raise dampening)");
  return build_layer(std::move(d), bias, out);
}

double layer_output_error(const float* a, const float* b, int out_features, int in_features,
                          const double* h) {
  const size_t C = static_cast<size_t>(in_features);
  std::vector<double> dlt(C), hd(C);
  double total = 0.0;
  for (size_t r = 0; r < static_cast<size_t>(out_features); ++r) {
    for (size_t c = 0; c < C; ++c) dlt[c] = static_cast<double>(a[r * C + c]) - b[r * C + c];
    for (size_t i = 0; i < C; ++i) {
      if (dlt[i] == 0.0) continue;
      const double* hi = h + i * C;
      double acc = 0.0;
      for (size_t j = 0; j < C; ++j) acc += hi[j] * dlt[j];
      total += dlt[i] * acc;
    }
  }
  return total;
}

}  // namespace webquant
