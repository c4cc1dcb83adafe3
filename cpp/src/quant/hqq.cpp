// HQQ (webquant/hqq.h): the proximal zero-point solver of mobiusml/hqq, one group at a time.
#include "webquant/hqq.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/simd.h"
#include "webquant/quant.h"

namespace webquant {
namespace {

Status invalid(std::string msg) {
  return Status::Error(StatusCode::kInvalidArgument, "hqq: " + std::move(msg));
}

float clampf(float v, float lo, float hi) { return std::min(std::max(v, lo), hi); }

// Squared error of s * (u - z) against w.
double squared_error(const float* w, const uint8_t* u, size_t n, float s, float z) {
  double e = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = double(w[i]) - double(s * (float(u[i]) - z));
    e += d * d;
  }
  return e;
}

// a^e for a > 0 through exp2(e * log2(a)) with cubic polynomials (log2 within 0.01, so for
// e = -0.3 a relative error below 0.3 %): the
// shrink threshold |x|^(p-1) / beta only steers the solver, and std::pow dominated its time.
inline float fast_pow(float a, float e) {
  uint32_t bits;
  std::memcpy(&bits, &a, 4);
  const float k = float(int32_t(bits >> 23) - 127);
  bits = (bits & 0x007FFFFFu) | 0x3F800000u;  // mantissa m in [1, 2)
  float m;
  std::memcpy(&m, &bits, 4);
  const float t = m - 1.0f;  // log2(m) on [0, 1): minimax-style cubic
  const float lg = k + t * (1.4425449f + t * (-0.7181452f + t * 0.2759276f));
  float y = e * lg;
  y = std::fmax(y, -126.0f);
  const float fl = std::floor(y), f = y - fl;  // 2^f on [0, 1)
  const float p2 = 1.0f + f * (0.6958733f + f * (0.2251779f + f * 0.0789439f));
  uint32_t ex = uint32_t(int32_t(fl) + 127) << 23;
  float scale;
  std::memcpy(&scale, &ex, 4);
  return p2 * scale;
}

// One element of the fast solver's iteration (the scalar twin's loop, the SIMD twin's tail): its
// code at zero point z, the shrunk residual, and their contributions to the L1 error and the next z.
inline void hqq_element(float w, float inv, float rinv, float z, float qmax, float pm1, float ib,
                        float* l1, float* zsum) {
  const float q = clampf(std::nearbyint(w * inv + z), 0, qmax);
  const float d = w - (q - z) * rinv;
  const float a = std::fabs(d);
  *l1 += a;
  const float t = a > 0 ? std::fmax(a - fast_pow(a, pm1) * ib, 0.0f) : 0.0f;
  *zsum += q - (w - std::copysign(t, d)) * inv;
}

// A group's range and its RTN parameters, codes and squared error: what HQQ falls back to.
struct RtnGroup {
  float lo, hi, s = 1, z = 0;
  double err = 0;
  uint8_t small[256];
  std::vector<uint8_t> big;
  uint8_t* u = small;
  RtnGroup(const float* w, size_t n, int bits, float qmax) : lo(w[0]), hi(w[0]) {
    for (size_t i = 1; i < n; ++i) {
      lo = std::min(lo, w[i]);
      hi = std::max(hi, w[i]);
    }
    int32_t zi = 0;
    compute_scale_zero_point(w, n, bits, /*is_signed=*/false, QuantMode::kAsymmetric, &s, &zi);
    z = float(zi);
    if (n > 256) {
      big.resize(n);
      u = big.data();
    }
    for (size_t i = 0; i < n; ++i) u[i] = uint8_t(clampf(std::nearbyint(w[i] / s + z), 0, qmax));
    err = squared_error(w, u, n, s, z);
  }
  RtnGroup(const RtnGroup&) = delete;
  RtnGroup& operator=(const RtnGroup&) = delete;
  // Writes RTN's result; returns false (RTN kept).
  bool keep(size_t n, uint8_t* codes, float* scale, float* zero) const {
    std::copy(u, u + n, codes);
    *scale = s;
    *zero = z;
    return false;
  }
};

// HQQ's starts: the range [lo, hi] (k = 0) and, with clip_steps, the shrunken ranges; solve(r, &s, &z)
// returns 1 / s. The lowest squared error wins: a tie with RTN (rtn_err) goes to the unclipped start,
// a clipped start must do strictly better. False: no start beat RTN (codes untouched).
template <typename Solve>
bool best_of_starts(const float* w, size_t n, float qmax, const HqqParams& params, double rtn_err,
                    Solve&& solve, uint8_t* codes, float* scale, float* zero) {
  uint8_t cand_small[256];
  std::vector<uint8_t> cand_big;
  uint8_t* cand = cand_small;
  if (n > 256) {
    cand_big.resize(n);
    cand = cand_big.data();
  }
  bool kept = false;
  double best_err = rtn_err;
  for (int k = 0; k <= params.clip_steps; ++k) {
    const float r = k == 0 ? 1.0f : 1.0f - (1.0f - params.clip_min) * float(k) / float(params.clip_steps);
    float s = 0, z = 0;
    const float inv = solve(r, &s, &z);
    for (size_t i = 0; i < n; ++i) cand[i] = uint8_t(clampf(std::nearbyint(w[i] * inv + z), 0, qmax));
    if (!std::isfinite(s) || !(s > 0) || !std::isfinite(z)) continue;
    const double e = squared_error(w, cand, n, s, z);
    if (k == 0 ? e <= best_err : e < best_err) {
      best_err = e;
      std::copy(cand, cand + n, codes);
      *scale = s;
      *zero = z;
      kept = true;
    }
  }
  return kept;
}

}  // namespace

// The same solver as the reference with fast_pow and the per-element work in flat loops (a tested
// twin of the reference, see test_hqq.cpp; hqq_quantize runs its SIMD version below).
bool hqq_quantize_group(const float* w, size_t n, int bits, const HqqParams& params,
                        uint8_t* codes, float* scale, float* zero) {
  const float qmax = float((1 << bits) - 1);
  const RtnGroup rtn(w, n, bits, qmax);
  const float lo = rtn.lo, hi = rtn.hi;
  const double rtn_err = rtn.err;
  const auto keep_rtn = [&] { return rtn.keep(n, codes, scale, zero); };
  if (!(hi > lo)) return keep_rtn();
  // The zero solver started from the range [r lo, r hi]: its scale and best zero.
  const float pm1 = params.lp_norm - 1.0f;
  const auto solve = [&](float r, float* s_out, float* z_out) {
    const float inv = qmax / ((hi - lo) * r), rinv = 1.0f / inv;
    float z = -lo * r * inv, beta = params.beta, best_z = z;
    double best_l1 = INFINITY;
    for (int it = 0; it < params.iters; ++it) {
      float l1 = 0, zsum = 0;
      const float ib = 1.0f / beta;
      for (size_t i = 0; i < n; ++i) hqq_element(w[i], inv, rinv, z, qmax, pm1, ib, &l1, &zsum);
      const double l1m = double(l1) / double(n);
      if (l1m < best_l1) {
        best_l1 = l1m;
        best_z = z;
      } else {
        break;
      }
      z = zsum / float(n);
      beta *= params.kappa;
    }
    *s_out = rinv;
    *z_out = best_z;
    return inv;
  };
  return best_of_starts(w, n, qmax, params, rtn_err, solve, codes, scale, zero) ? true : keep_rtn();
}

#if WEBQUANT_SIMD
// hqq_quantize_group with the solver's per-element work in f32x4 lanes (fast_pow included) and a
// scalar tail; the per-lane sums of l1 and z are added at the end of each step, so the zero may
// differ from the scalar twin's in the last bits.
bool hqq_quantize_group__wasmsimd(const float* w, size_t n, int bits, const HqqParams& params,
                                  uint8_t* codes, float* scale, float* zero) {
  const float qmax = float((1 << bits) - 1);
  const RtnGroup rtn(w, n, bits, qmax);
  const float lo = rtn.lo, hi = rtn.hi;
  const double rtn_err = rtn.err;
  const auto keep_rtn = [&] { return rtn.keep(n, codes, scale, zero); };
  if (!(hi > lo)) return keep_rtn();
  const float pm1 = params.lp_norm - 1.0f;
  const size_t n4 = n & ~size_t(3);
  const v128_t vzero = wasm_f32x4_splat(0.0f), vqmax = wasm_f32x4_splat(qmax);
  const v128_t vpm1 = wasm_f32x4_splat(pm1), vlo = wasm_f32x4_splat(-126.0f);
  const v128_t one = wasm_f32x4_splat(1.0f);
  const v128_t mant = wasm_i32x4_splat(0x007FFFFF), expo1 = wasm_i32x4_splat(0x3F800000);
  const v128_t sign = wasm_i32x4_splat(int32_t(0x80000000u)), bias = wasm_i32x4_splat(127);
  // The zero solver started from the range [r lo, r hi]: its scale and best zero (as the scalar twin).
  const auto solve = [&](float r, float* s_out, float* z_out) {
    const float inv = qmax / ((hi - lo) * r), rinv = 1.0f / inv;
    float z = -lo * r * inv, beta = params.beta, best_z = z;
    double best_l1 = INFINITY;
    const v128_t vinv = wasm_f32x4_splat(inv), vrinv = wasm_f32x4_splat(rinv);
    for (int it = 0; it < params.iters; ++it) {
      const float ib = 1.0f / beta;
      const v128_t vz = wasm_f32x4_splat(z), vib = wasm_f32x4_splat(ib);
      v128_t l1v = vzero, zsv = vzero;
      for (size_t i = 0; i < n4; i += 4) {
        const v128_t wv = wasm_v128_load(w + i);
        const v128_t q = wasm_f32x4_min(wasm_f32x4_max(wasm_f32x4_nearest(wasm_f32x4_add(wasm_f32x4_mul(wv, vinv), vz)), vzero), vqmax);
        const v128_t d = wasm_f32x4_sub(wv, wasm_f32x4_mul(wasm_f32x4_sub(q, vz), vrinv));
        const v128_t a = wasm_f32x4_abs(d);
        l1v = wasm_f32x4_add(l1v, a);
        // fast_pow(a, pm1): 2^(pm1 * log2 a) with the same cubic polynomials.
        const v128_t k = wasm_f32x4_convert_i32x4(wasm_i32x4_sub(wasm_u32x4_shr(a, 23), bias));
        const v128_t t0 = wasm_f32x4_sub(wasm_v128_or(wasm_v128_and(a, mant), expo1), one);
        const v128_t lg = wasm_f32x4_add(k, wasm_f32x4_mul(t0, wasm_f32x4_add(wasm_f32x4_splat(1.4425449f), wasm_f32x4_mul(t0, wasm_f32x4_add(wasm_f32x4_splat(-0.7181452f), wasm_f32x4_mul(t0, wasm_f32x4_splat(0.2759276f)))))));
        const v128_t y = wasm_f32x4_max(wasm_f32x4_mul(vpm1, lg), vlo);
        const v128_t fl = wasm_f32x4_floor(y), f = wasm_f32x4_sub(y, fl);
        const v128_t p2 = wasm_f32x4_add(one, wasm_f32x4_mul(f, wasm_f32x4_add(wasm_f32x4_splat(0.6958733f), wasm_f32x4_mul(f, wasm_f32x4_add(wasm_f32x4_splat(0.2251779f), wasm_f32x4_mul(f, wasm_f32x4_splat(0.0789439f)))))));
        const v128_t pw = wasm_f32x4_mul(p2, wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(fl), bias), 23));
        const v128_t th = wasm_f32x4_max(wasm_f32x4_sub(a, wasm_f32x4_mul(pw, vib)), vzero);
        const v128_t t = wasm_v128_and(th, wasm_f32x4_gt(a, vzero));  // 0 where a == 0
        const v128_t e = wasm_v128_or(t, wasm_v128_and(d, sign));     // copysign(t, d), t >= 0
        zsv = wasm_f32x4_add(zsv, wasm_f32x4_sub(q, wasm_f32x4_mul(wasm_f32x4_sub(wv, e), vinv)));
      }
      float l1 = (wasm_f32x4_extract_lane(l1v, 0) + wasm_f32x4_extract_lane(l1v, 1)) +
                 (wasm_f32x4_extract_lane(l1v, 2) + wasm_f32x4_extract_lane(l1v, 3));
      float zsum = (wasm_f32x4_extract_lane(zsv, 0) + wasm_f32x4_extract_lane(zsv, 1)) +
                   (wasm_f32x4_extract_lane(zsv, 2) + wasm_f32x4_extract_lane(zsv, 3));
      for (size_t i = n4; i < n; ++i) hqq_element(w[i], inv, rinv, z, qmax, pm1, ib, &l1, &zsum);
      const double l1m = double(l1) / double(n);
      if (l1m < best_l1) {
        best_l1 = l1m;
        best_z = z;
      } else {
        break;
      }
      z = zsum / float(n);
      beta *= params.kappa;
    }
    *s_out = rinv;
    *z_out = best_z;
    return inv;
  };
  return best_of_starts(w, n, qmax, params, rtn_err, solve, codes, scale, zero) ? true : keep_rtn();
}
#else
bool hqq_quantize_group__wasmsimd(const float* w, size_t n, int bits, const HqqParams& params,
                                  uint8_t* codes, float* scale, float* zero) {
  return hqq_quantize_group(w, n, bits, params, codes, scale, zero);
}
#endif

bool hqq_quantize_group__ref(const float* w, size_t n, int bits, const HqqParams& params,
                             uint8_t* codes, float* scale, float* zero) {
  const float qmax = float((1 << bits) - 1);
  float lo = w[0], hi = w[0];
  for (size_t i = 1; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }

  // RTN: the course's asymmetric parameters (integer zero code), codes round(w / s + z).
  float rtn_s = 1;
  int32_t rtn_zi = 0;
  compute_scale_zero_point(w, n, bits, /*is_signed=*/false, QuantMode::kAsymmetric, &rtn_s,
                           &rtn_zi);
  const float rtn_z = float(rtn_zi);
  std::vector<uint8_t> rtn_u(n);
  for (size_t i = 0; i < n; ++i)
    rtn_u[i] = uint8_t(clampf(std::nearbyint(w[i] / rtn_s + rtn_z), 0, qmax));
  const double rtn_err = squared_error(w, rtn_u.data(), n, rtn_s, rtn_z);
  const auto keep_rtn = [&] {
    std::copy(rtn_u.begin(), rtn_u.end(), codes);
    *scale = rtn_s;
    *zero = rtn_z;
    return false;
  };
  if (!(hi > lo)) return keep_rtn();  // constant group: the course's safe scale

  // One start: the range [r lo, r hi] (r = 1: the group's own range). Returns inv = 1 / scale
  // and the zero of the best step.
  const float p = params.lp_norm;
  std::vector<float> q(n);
  const auto solve = [&](float r, float* best_z_out) {
    // The reference clamps inv at 2e4 for float16 arithmetic; float32 needs no clamp.
    const float inv = qmax / ((hi - lo) * r);
    float z = -(lo * r) * inv;
    float beta = params.beta;
    float best_z = z;
    double best_l1 = INFINITY;
    for (int it = 0; it < params.iters; ++it) {
      double l1 = 0, zsum = 0;
      for (size_t i = 0; i < n; ++i) q[i] = clampf(std::nearbyint(w[i] * inv + z), 0, qmax);
      for (size_t i = 0; i < n; ++i) {
        const float wr = (q[i] - z) / inv;
        const float d = w[i] - wr;
        l1 += std::fabs(d);
        const float a = std::fabs(d);
        // shrink_p; |x|^(p-1) is +inf at x = 0, where the threshold gives 0 as well.
        const float t = a > 0 ? std::max(a - std::pow(a, p - 1) / beta, 0.0f) : 0.0f;
        const float e = std::copysign(t, d);
        zsum += double(q[i] - (w[i] - e) * inv);
      }
      l1 /= double(n);
      // The reference stops the tensor when its error stops improving; each group does here, and
      // keeps the zero of its best step.
      if (l1 < best_l1) {
        best_l1 = l1;
        best_z = z;
      } else {
        break;
      }
      z = float(zsum / double(n));
      beta *= params.kappa;
    }
    *best_z_out = best_z;
    return inv;
  };

  // Starts r = 1 and, with clip_steps, the shrunken ranges; the lowest squared error wins (a tie
  // with RTN goes to the unclipped HQQ start, a clipped start must do strictly better).
  bool kept = false;
  double best_err = rtn_err;
  std::vector<uint8_t> cand(n);
  for (int k = 0; k <= params.clip_steps; ++k) {
    const float r = k == 0 ? 1.0f : 1.0f - (1.0f - params.clip_min) * float(k) / float(params.clip_steps);
    float z = 0;
    const float inv = solve(r, &z);
    const float s = 1.0f / inv;
    for (size_t i = 0; i < n; ++i) cand[i] = uint8_t(clampf(std::nearbyint(w[i] * inv + z), 0, qmax));
    if (!std::isfinite(s) || !(s > 0) || !std::isfinite(z)) continue;
    const double e = squared_error(w, cand.data(), n, s, z);
    if (k == 0 ? e <= best_err : e < best_err) {
      best_err = e;
      std::copy(cand.begin(), cand.end(), codes);
      *scale = s;
      *zero = z;
      kept = true;
    }
  }
  return kept ? true : keep_rtn();
}

Status hqq_quantize(const float* w, size_t rows, size_t cols, size_t group, int bits,
                    const HqqParams& params, uint8_t* codes, float* scales, float* zeros,
                    HqqStats* stats) {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return invalid("bits must be 2, 3, 4 or 8 (got " + std::to_string(bits) + ")");
  if (!w || !codes || !scales || !zeros) return invalid("null pointer");
  if (rows == 0 || cols == 0) return invalid("empty weight");
  if (group == 0) return invalid("group must be >= 1");
  if (!(params.lp_norm > 0 && params.lp_norm <= 1) || !(params.beta > 0) ||
      !(params.kappa >= 1) || params.iters < 0)
    return invalid("params need 0 < lp_norm <= 1, beta > 0, kappa >= 1 and iters >= 0");
  if (params.clip_steps < 0 || params.clip_steps > 100 || !(params.clip_min > 0 && params.clip_min <= 1))
    return invalid("params need clip_steps in [0, 100] and 0 < clip_min <= 1 (got " +
                   std::to_string(params.clip_steps) + ", " + std::to_string(params.clip_min) + ")");
  for (size_t i = 0; i < rows * cols; ++i)
    if (!std::isfinite(w[i]))
      return Status::Error(StatusCode::kNonFinite,
                           "hqq: weight [" + std::to_string(i / cols) + ", " +
                               std::to_string(i % cols) + "] is " +
                               (std::isnan(w[i]) ? "NaN" : "Inf") + "; it cannot be quantized");
  const size_t groups = (cols + group - 1) / group;  // the last one ragged when group does not divide
  HqqStats st;
  for (size_t r = 0; r < rows; ++r) {
    for (size_t g = 0; g < groups; ++g) {
      const size_t off = r * cols + g * group, k = r * groups + g;
      const size_t len = std::min(group, cols - g * group);
      if (!hqq_quantize_group__wasmsimd(w + off, len, bits, params, codes + off, &scales[k], &zeros[k]))
        ++st.rtn_kept;
      ++st.groups;
    }
  }
  if (stats) *stats = st;
  return Status::Ok();
}

}  // namespace webquant
