// GPTQ's linear algebra (calibration_internal.h): the Gram matrix X^T X of calibration inputs and
// the upper Cholesky factor of the inverse of the dampened Hessian. Each fast routine has its plain
// scalar reference beside it (`__ref`); test_gptq.cpp compares them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_parallel.h"
#include "kernels/simd.h"
#include "quant/calibration_internal.h"

namespace webquant::calib_detail {

// ---- Gram matrix --------------------------------------------------------------------------------

void accumulate_gram__ref(const float* x, size_t m, size_t c, double* h) {
  for (size_t t = 0; t < m; ++t) {
    const float* xt = x + t * c;
    for (size_t i = 0; i < c; ++i) {
      const double xi = xt[i];
      double* row = h + i * c;
      for (size_t j = i; j < c; ++j) row[j] += xi * static_cast<double>(xt[j]);
    }
  }
}

void accumulate_gram(const float* x, size_t m, size_t c, double* h, std::vector<float>* work) {
  // Tiles of kTokens tokens, transposed to [c, tokens] so that X^T X is the GEMM y = a b^T of the
  // linear layers with a = b = X^T; rows in slabs of kRows, only the columns at or right of the
  // slab's diagonal (the upper triangle and the slab's own square).
  constexpr size_t kTokens = 128, kRows = 64;
  for (size_t t0 = 0; t0 < m; t0 += kTokens) {
    const size_t mt = std::min(kTokens, m - t0);
    work->resize(c * mt + kRows * c);
    float* xt = work->data();
    float* y = xt + c * mt;
    for (size_t t = 0; t < mt; ++t) {
      const float* row = x + (t0 + t) * c;
      for (size_t i = 0; i < c; ++i) xt[i * mt + t] = row[i];
    }
    for (size_t r0 = 0; r0 < c; r0 += kRows) {
      const size_t nr = std::min(kRows, c - r0), nc = c - r0;
      const float* a = xt + r0 * mt;
      kernels::parallel_gemm_f32_f32(kernels::gemm_f32_f32__wasmsimd, nr, nc, mt, a, a, nullptr, y);
      for (size_t i = 0; i < nr; ++i) {
        double* hr = h + (r0 + i) * c + r0;
        const float* yr = y + i * nc;
        for (size_t j = i; j < nc; ++j) hr[j] += static_cast<double>(yr[j]);
      }
    }
  }
}

// ---- Cholesky -----------------------------------------------------------------------------------

bool cholesky_lower(std::vector<double>* a, int n) {
  double* A = a->data();
  for (int j = 0; j < n; ++j) {
    double d = A[static_cast<size_t>(j) * n + j];
    for (int k = 0; k < j; ++k) d -= A[static_cast<size_t>(j) * n + k] * A[static_cast<size_t>(j) * n + k];
    if (!(d > 0.0) || !std::isfinite(d)) return false;
    const double ljj = std::sqrt(d);
    A[static_cast<size_t>(j) * n + j] = ljj;
    for (int i = j + 1; i < n; ++i) {
      double v = A[static_cast<size_t>(i) * n + j];
      const double* ri = A + static_cast<size_t>(i) * n;
      const double* rj = A + static_cast<size_t>(j) * n;
      for (int k = 0; k < j; ++k) v -= ri[k] * rj[k];
      A[static_cast<size_t>(i) * n + j] = v / ljj;
    }
  }
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) A[static_cast<size_t>(i) * n + j] = 0.0;
  return true;
}

namespace {

// out[r] = sum_{k < len} a_r[k] * b[k] for four rows a_0..a_3 sharing one b (each b load serves
// four products; f64x2 lanes, then a scalar tail).
inline void dot4(const double* a0, const double* a1, const double* a2, const double* a3,
                 const double* b, size_t len, double out[4]) {
  size_t k = 0;
#if WEBQUANT_SIMD
  v128_t s0 = wasm_f64x2_splat(0.0), s1 = s0, s2 = s0, s3 = s0;
  for (; k + 2 <= len; k += 2) {
    const v128_t vb = wasm_v128_load(b + k);
    s0 = wasm_f64x2_add(s0, wasm_f64x2_mul(wasm_v128_load(a0 + k), vb));
    s1 = wasm_f64x2_add(s1, wasm_f64x2_mul(wasm_v128_load(a1 + k), vb));
    s2 = wasm_f64x2_add(s2, wasm_f64x2_mul(wasm_v128_load(a2 + k), vb));
    s3 = wasm_f64x2_add(s3, wasm_f64x2_mul(wasm_v128_load(a3 + k), vb));
  }
  out[0] = wasm_f64x2_extract_lane(s0, 0) + wasm_f64x2_extract_lane(s0, 1);
  out[1] = wasm_f64x2_extract_lane(s1, 0) + wasm_f64x2_extract_lane(s1, 1);
  out[2] = wasm_f64x2_extract_lane(s2, 0) + wasm_f64x2_extract_lane(s2, 1);
  out[3] = wasm_f64x2_extract_lane(s3, 0) + wasm_f64x2_extract_lane(s3, 1);
#else
  out[0] = out[1] = out[2] = out[3] = 0.0;
#endif
  for (; k < len; ++k) {
    out[0] += a0[k] * b[k];
    out[1] += a1[k] * b[k];
    out[2] += a2[k] * b[k];
    out[3] += a3[k] * b[k];
  }
}

inline double dot1(const double* a, const double* b, size_t len) {
  double o[4];
  dot4(a, a, a, a, b, len, o);
  return o[0];
}

// In-place lower Cholesky factor (upper triangle left as is), four rows at a time: every row j
// above the four is read once for all four dot products.
bool cholesky_lower_blocked(double* A, size_t n) {
  size_t i0 = 0;
  for (; i0 + 4 <= n; i0 += 4) {
    double* r[4] = {A + i0 * n, A + (i0 + 1) * n, A + (i0 + 2) * n, A + (i0 + 3) * n};
    for (size_t j = 0; j < i0; ++j) {
      const double* rj = A + j * n;
      double d[4];
      dot4(r[0], r[1], r[2], r[3], rj, j, d);
      const double ljj = rj[j];
      for (int a = 0; a < 4; ++a) r[a][j] = (r[a][j] - d[a]) / ljj;
    }
    for (size_t a = 0; a < 4; ++a) {  // the 4 x 4 diagonal block
      const size_t i = i0 + a;
      for (size_t j = i0; j < i; ++j) {
        const double* rj = A + j * n;
        r[a][j] = (r[a][j] - dot1(r[a], rj, j)) / rj[j];
      }
      const double d = r[a][i] - dot1(r[a], r[a], i);
      if (!(d > 0.0) || !std::isfinite(d)) return false;
      r[a][i] = std::sqrt(d);
    }
  }
  for (size_t i = i0; i < n; ++i) {  // the last n % 4 rows
    double* ri = A + i * n;
    for (size_t j = 0; j < i; ++j) {
      const double* rj = A + j * n;
      ri[j] = (ri[j] - dot1(ri, rj, j)) / rj[j];
    }
    const double d = ri[i] - dot1(ri, ri, i);
    if (!(d > 0.0) || !std::isfinite(d)) return false;
    ri[i] = std::sqrt(d);
  }
  return true;
}

// li = L^-1 (lower, row-major; entries above the diagonal are 0), four columns at a time: column j
// solves L x = e_j by forward substitution, and each row of L is read once for four columns.
void lower_inverse_blocked(const double* L, size_t n, double* li) {
  std::fill(li, li + n * n, 0.0);
  std::vector<double> x(4 * n);
  for (size_t j0 = 0; j0 < n; j0 += 4) {
    const size_t nc = std::min<size_t>(4, n - j0);
    std::fill(x.begin(), x.end(), 0.0);
    double* xc[4] = {&x[0], &x[n], &x[2 * n], &x[3 * n]};
    for (size_t i = j0; i < n; ++i) {
      const double* Li = L + i * n;
      double d[4];
      dot4(xc[0] + j0, xc[1] + j0, xc[2] + j0, xc[3] + j0, Li + j0, i - j0, d);
      for (size_t c = 0; c < nc; ++c) {
        const size_t j = j0 + c;
        if (i < j) continue;
        const double v = i == j ? 1.0 / Li[i] : -d[c] / Li[i];
        xc[c][i] = v;
        li[i * n + j] = v;
      }
    }
  }
}

}  // namespace

// With J the exchange matrix and J H J = L' L'^T, H^-1 = J L'^-T L'^-1 J = U^T U for the upper
// triangular U = J L'^-1 J (the Cholesky factor is unique): one Cholesky and one triangular
// inverse, instead of inverting H and factoring again.
bool upper_cholesky_of_inverse__ref(const std::vector<double>& h, int n, std::vector<float>* u) {
  const size_t N = static_cast<size_t>(n);
  std::vector<double> r(N * N);
  for (size_t i = 0; i < N; ++i)
    for (size_t j = 0; j < N; ++j) r[i * N + j] = h[(N - 1 - i) * N + (N - 1 - j)];
  if (!cholesky_lower(&r, n)) return false;  // r = L'
  // Linv = L'^-1, row by row: Linv[i, :] = (e_i - sum_{k<i} L'[i,k] Linv[k, :]) / L'[i,i].
  std::vector<double> li(N * N, 0.0);
  for (size_t i = 0; i < N; ++i) {
    double* row = li.data() + i * N;
    const double* l = r.data() + i * N;
    for (size_t k = 0; k < i; ++k) {
      const double a = l[k];
      if (a == 0.0) continue;
      const double* rk = li.data() + k * N;
      for (size_t j = 0; j <= k; ++j) row[j] -= a * rk[j];
    }
    row[i] = 1.0;
    const double inv = 1.0 / l[i];
    for (size_t j = 0; j <= i; ++j) row[j] *= inv;
  }
  u->assign(N * N, 0.0f);
  for (size_t i = 0; i < N; ++i)
    for (size_t j = i; j < N; ++j) (*u)[i * N + j] = static_cast<float>(li[(N - 1 - i) * N + (N - 1 - j)]);
  return true;
}

bool upper_cholesky_of_inverse(const std::vector<double>& h, int n, std::vector<float>* u) {
  const size_t N = static_cast<size_t>(n);
  std::vector<double> r(N * N);
  for (size_t i = 0; i < N; ++i)
    for (size_t j = 0; j < N; ++j) r[i * N + j] = h[(N - 1 - i) * N + (N - 1 - j)];
  if (!cholesky_lower_blocked(r.data(), N)) return false;
  std::vector<double> li(N * N);
  lower_inverse_blocked(r.data(), N, li.data());
  u->assign(N * N, 0.0f);
  for (size_t i = 0; i < N; ++i)
    for (size_t j = i; j < N; ++j) (*u)[i * N + j] = static_cast<float>(li[(N - 1 - i) * N + (N - 1 - j)]);
  return true;
}

}  // namespace webquant::calib_detail
