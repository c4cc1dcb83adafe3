// GPTQ onto a grid fixed up front (calibration.h: gptq_round_on_grid, GptqGrid::kHqq).
//
// The grid (a scale and a float zero point per group) is chosen before any rounding, e.g. by HQQ
// on the original weights; GPTQ then walks the columns (in act-order when asked), rounds each onto
// its group's grid and spreads the rounding error over the columns not yet rounded through the
// upper Cholesky factor U of the inverse Hessian (H^-1 = U^T U):
//   u   = clamp(round_half_even(w_i / s + z), 0, qmax)
//   e   = (w_i - s * (u - z)) / U[i, i]
//   w_j -= e * U[i, j]        for the later columns j
// This is IST-DASLab's fasterquant with static groups, without lazy batches (the update is the
// same; batching only reorders the arithmetic).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "quant/calibration_internal.h"
#include "quant/linear_internal.h"
#include "webquant/calibration.h"
#include "webquant/hqq.h"

namespace webquant {
namespace {

using calib_detail::invalid;

// U upper with H^-1 = U^T U for the symmetric positive definite H (n x n, row-major): L L^T = H,
// H^-1 = L^-T L^-1, then U^T = the lower Cholesky factor of H^-1. False when H is not positive
// definite.
bool inverse_upper_cholesky(std::vector<double> h, size_t n, std::vector<double>* u) {
  if (!calib_detail::cholesky_lower(&h, static_cast<int>(n))) return false;
  // Li = L^-1 (lower), row by row.
  std::vector<double> li(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j <= i; ++j) {
      double v = i == j ? 1.0 : 0.0;
      for (size_t k = j; k < i; ++k) v -= h[i * n + k] * li[k * n + j];
      li[i * n + j] = v / h[i * n + i];
    }
  }
  // H^-1 = Li^T Li.
  std::vector<double> inv(n * n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j <= i; ++j) {
      double v = 0.0;
      for (size_t k = i; k < n; ++k) v += li[k * n + i] * li[k * n + j];
      inv[i * n + j] = inv[j * n + i] = v;
    }
  if (!calib_detail::cholesky_lower(&inv, static_cast<int>(n))) return false;
  u->assign(n * n, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j <= i; ++j) (*u)[j * n + i] = inv[i * n + j];
  return true;
}

}  // namespace

namespace {

// The shared body: validates, prepares H, and rounds row by row onto scales / zeros. With `refit`
// (no act-order), each group's grid is first re-solved by HQQ on the row's error-updated values
// when the walk reaches it (written to scales / zeros).
Status round_on_grid(const float* w, int out_features, int in_features, const double* h, int bits,
                     int group, float* scales, float* zeros, const GptqOptions& opt,
                     const HqqParams* refit, uint8_t* codes) {
  if (!w || !h || !scales || !zeros || !codes) return invalid("gptq grid: null pointer");
  if (out_features < 1 || in_features < 1) return invalid("gptq grid: out_features and in_features must be >= 1");
  if (bits < 2 || bits > 8) return invalid("gptq grid: bits must be in [2, 8] (got " + std::to_string(bits) + ")");
  if (group < 1 || group > in_features)
    return invalid("gptq grid: group " + std::to_string(group) + " must be in [1, " + std::to_string(in_features) + "]");
  if (!(opt.dampening >= 0.0) || !std::isfinite(opt.dampening))
    return invalid("GPTQ dampening must be finite and >= 0 (got " + std::to_string(opt.dampening) + ")");
  const size_t R = static_cast<size_t>(out_features), C = static_cast<size_t>(in_features);
  const size_t G = static_cast<size_t>(group), ng = (C + G - 1) / G;  // a ragged last group when G does not divide C
  if (!refit)
    for (size_t i = 0; i < R * ng; ++i)
      if (!std::isfinite(scales[i]) || !(scales[i] > 0.0f) || !std::isfinite(zeros[i]))
        return invalid("gptq grid: scale " + std::to_string(scales[i]) + " / zero " + std::to_string(zeros[i]) +
                       " at group " + std::to_string(i) + " must be finite (scale > 0)");
  for (size_t i = 0; i < R * C; ++i)
    if (!std::isfinite(w[i])) return Status::Error(StatusCode::kNonFinite, "weight has a non-finite value at index " + std::to_string(i));
  for (size_t i = 0; i < C * C; ++i)
    if (!std::isfinite(h[i])) return Status::Error(StatusCode::kNonFinite, "Hessian has a non-finite value at index " + std::to_string(i));

  std::vector<float> W(w, w + R * C);
  std::vector<double> H(h, h + C * C);
  for (size_t i = 0; i < C; ++i) {
    if (H[i * C + i] == 0.0) {  // a dead input: never active, its weights do not matter
      H[i * C + i] = 1.0;
      for (size_t r = 0; r < R; ++r) W[r * C + i] = 0.0f;
    }
  }
  std::vector<size_t> perm(C);
  std::iota(perm.begin(), perm.end(), size_t{0});
  if (opt.act_order)
    std::stable_sort(perm.begin(), perm.end(), [&](size_t a, size_t b) { return H[a * C + a] > H[b * C + b]; });
  std::vector<double> Hp(C * C);
  double mean_diag = 0.0;
  for (size_t i = 0; i < C; ++i) mean_diag += H[i * C + i];
  mean_diag /= static_cast<double>(C);
  for (size_t i = 0; i < C; ++i)
    for (size_t j = 0; j < C; ++j) Hp[i * C + j] = H[perm[i] * C + perm[j]] + (i == j ? opt.dampening * mean_diag : 0.0);
  std::vector<double> U;
  if (!inverse_upper_cholesky(std::move(Hp), C, &U))
    return invalid("GPTQ: the dampened Hessian is not positive definite (raise dampening, now " +
                   std::to_string(opt.dampening) + ")");

  const float qmax = static_cast<float>((1 << bits) - 1);
  std::vector<float> row(C);
  std::vector<uint8_t> scratch(G);
  for (size_t r = 0; r < R; ++r) {
    for (size_t i = 0; i < C; ++i) row[i] = W[r * C + perm[i]];  // permuted order
    for (size_t i = 0; i < C; ++i) {
      const size_t col = perm[i], p = r * ng + col / G;
      if (refit && i % G == 0)
        hqq_quantize_group__wasmsimd(&row[i], std::min(G, C - i), bits, *refit, scratch.data(), &scales[p], &zeros[p]);
      const float s = scales[p], z = zeros[p];
      const float u = std::min(std::max(std::nearbyint(row[i] / s + z), 0.0f), qmax);
      codes[r * C + col] = static_cast<uint8_t>(u);
      const double e = (static_cast<double>(row[i]) - static_cast<double>(s * (u - z))) / U[i * C + i];
      const double* ur = &U[i * C];
      for (size_t j = i + 1; j < C; ++j) row[j] = static_cast<float>(row[j] - e * ur[j]);
    }
    for (float v : row)
      if (!std::isfinite(v)) return Status::Error(StatusCode::kNonFinite, "GPTQ: the error feedback diverged (raise dampening)");
  }
  return Status::Ok();
}

}  // namespace

Status gptq_round_on_grid(const float* w, int out_features, int in_features, const double* h,
                          int bits, int group, const float* scales, const float* zeros,
                          const GptqOptions& opt, uint8_t* codes) {
  return round_on_grid(w, out_features, in_features, h, bits, group, const_cast<float*>(scales),
                       const_cast<float*>(zeros), opt, nullptr, codes);
}

// GptqGrid::kHqq: HQQ's grid of the original weights, GPTQ's rounding onto it.
Status gptq_quantize_linear_hqq_grid(const float* w, int out_features, int in_features,
                                     const float* bias, const double* h,
                                     const LinearQuantSpec& spec, const GptqOptions& opt,
                                     std::unique_ptr<LinearLayer>* out, std::string* note) {
  if (out == nullptr) return invalid("out must not be null");
  int bits = 0, G = 0;
  std::string fallback;
  WQ_RETURN_IF_ERROR(calib_detail::check_layer_args(w, out_features, in_features, h, spec, &bits, &G, &fallback, note));
  Status s = linear_detail::check_hqq_spec(spec.scheme, spec.asymmetric);
  if (!s.ok()) return invalid("GPTQ grid 'hqq': " + s.message);
  const size_t R = static_cast<size_t>(out_features), C = static_cast<size_t>(in_features);
  const size_t ng = (C + G - 1) / static_cast<size_t>(G);
  std::vector<uint8_t> u(R * C);
  std::vector<float> scales(R * ng), zeros(R * ng);
  WQ_RETURN_IF_ERROR(hqq_quantize(w, R, C, static_cast<size_t>(G), bits, opt.hqq, u.data(), scales.data(), zeros.data(), nullptr));
  const bool refit = opt.grid_from_updated && !opt.act_order;
  WQ_RETURN_IF_ERROR(round_on_grid(w, out_features, in_features, h, bits, G, scales.data(), zeros.data(), opt,
                                   refit ? &opt.hqq : nullptr, u.data()));
  // The signed code domain of LinearQuantizedData: q = u - 2^(bits-1), z likewise.
  const int half = 1 << (bits - 1);
  LinearQuantizedData d;
  d.scheme = spec.scheme;
  d.asymmetric = true;
  d.bits = bits;
  d.group_size = G;
  d.out_features = out_features;
  d.in_features = in_features;
  d.fallback = fallback;
  d.method = QuantMethod::kHqq;  // the storage form: float zero points
  d.range_search = opt.hqq.clip_steps;  // the record of how the grid was found
  d.q.resize(R * C);
  for (size_t i = 0; i < d.q.size(); ++i) d.q[i] = static_cast<int8_t>(int(u[i]) - half);
  d.scales = std::move(scales);
  d.zero_points.assign(R * ng, 0);
  d.zero_points_f = std::move(zeros);
  for (float& z : d.zero_points_f) z -= static_cast<float>(half);
  return calib_detail::build_layer(std::move(d), bias, out);
}

}  // namespace webquant
