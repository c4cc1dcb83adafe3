// WASM SIMD128 GEMM kernels over fp16 / bf16 weights (gemm.h). The weights are widened to float32
// in registers: 8 halves per load, spread to the high 16 bits of 32-bit lanes (bf16: that is the
// float), fp16 then through the bit-op conversion of half_simd.h. Decode (m < 3) widens inside the
// dot product; prefill (m >= 3) widens each 4-row panel once into the workspace and runs the same
// float32 dot product over it for every activation row.
#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include "kernels/convert/half_simd.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/gemm_simd_util.h"
#include "kernels/kernels.h"
#include "webquant/convert.h"

namespace webquant::kernels {
namespace {

using namespace simd_gemm;
using namespace half_simd;

// Weight loaders: 8 consecutive weights as two f32x4, and one weight as a float.
struct LoadF32 {
  using T = float;
  static void load8(const float* p, v128_t* lo, v128_t* hi) {
    *lo = wasm_v128_load(p);
    *hi = wasm_v128_load(p + 4);
  }
  static float one(float v) { return v; }
};
template <bool kBf16>
struct LoadHalf {
  using T = uint16_t;
  static void load8(const uint16_t* p, v128_t* lo, v128_t* hi) {
    const v128_t h = wasm_v128_load(p), zero = wasm_i32x4_splat(0);
    *lo = spread_low(zero, h);
    *hi = spread_high(zero, h);
    if (!kBf16) {
      *lo = f16_hi_to_f32(*lo);
      *hi = f16_hi_to_f32(*hi);
    }
  }
  static float one(uint16_t v) { return kBf16 ? bf16_to_fp32(v) : fp16_to_fp32(v); }
};

// [x.w0 x.w1 x.w2 x.w3] for four weight rows of k elements.
template <class L>
v128_t dot4(const typename L::T* w0, const typename L::T* w1, const typename L::T* w2,
            const typename L::T* w3, const float* x, size_t k) {
  v128_t a0 = wasm_f32x4_splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
  v128_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
  const size_t k8 = k & ~size_t(7);
  size_t c = 0;
  for (; c < k8; c += 8) {
    const v128_t xa = wasm_v128_load(x + c), xb = wasm_v128_load(x + c + 4);
    v128_t lo, hi;
    L::load8(w0 + c, &lo, &hi);
    a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(xa, lo));
    b0 = wasm_f32x4_add(b0, wasm_f32x4_mul(xb, hi));
    L::load8(w1 + c, &lo, &hi);
    a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(xa, lo));
    b1 = wasm_f32x4_add(b1, wasm_f32x4_mul(xb, hi));
    L::load8(w2 + c, &lo, &hi);
    a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(xa, lo));
    b2 = wasm_f32x4_add(b2, wasm_f32x4_mul(xb, hi));
    L::load8(w3 + c, &lo, &hi);
    a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(xa, lo));
    b3 = wasm_f32x4_add(b3, wasm_f32x4_mul(xb, hi));
  }
  v128_t s = hsum4_f32(wasm_f32x4_add(a0, b0), wasm_f32x4_add(a1, b1), wasm_f32x4_add(a2, b2),
                       wasm_f32x4_add(a3, b3));
  if (c < k) {  // scalar tail, k % 8 elements
    float t[4] = {0, 0, 0, 0};
    for (; c < k; ++c) {
      t[0] += x[c] * L::one(w0[c]);
      t[1] += x[c] * L::one(w1[c]);
      t[2] += x[c] * L::one(w2[c]);
      t[3] += x[c] * L::one(w3[c]);
    }
    s = wasm_f32x4_add(s, wasm_v128_load(t));
  }
  return s;
}

template <class L>
float dot1(const typename L::T* w, const float* x, size_t k) {
  v128_t a = wasm_f32x4_splat(0.0f), b = a;
  const size_t k8 = k & ~size_t(7);
  size_t c = 0;
  for (; c < k8; c += 8) {
    v128_t lo, hi;
    L::load8(w + c, &lo, &hi);
    a = wasm_f32x4_add(a, wasm_f32x4_mul(wasm_v128_load(x + c), lo));
    b = wasm_f32x4_add(b, wasm_f32x4_mul(wasm_v128_load(x + c + 4), hi));
  }
  float s = sum_f32(wasm_f32x4_add(a, b));
  for (; c < k; ++c) s += x[c] * L::one(w[c]);
  return s;
}

template <bool kBf16>
void gemm_half(size_t m, size_t n, size_t k, const float* x, const uint16_t* w, const float* bias,
               float* y, float* work) {
  using H = LoadHalf<kBf16>;
  const bool prefill = m >= 3;
  auto widen = [&](const uint16_t* src, size_t rows) {  // rows x k into work
    for (size_t r = 0; r < rows; ++r) {
      if (kBf16) {
        convert_bf16_f32__wasmsimd(src + r * k, k, work + r * k);
      } else {
        convert_f16_f32__wasmsimd(src + r * k, k, work + r * k);
      }
    }
  };
  size_t j = 0;
  for (; j + kGemmNr <= n; j += kGemmNr) {
    const uint16_t* w0 = w + j * k;
    const v128_t vb = bias ? wasm_v128_load(bias + j) : wasm_f32x4_splat(0.0f);
    if (prefill) widen(w0, kGemmNr);
    for (size_t i = 0; i < m; ++i) {
      const float* xr = x + i * k;
      const v128_t s = prefill ? dot4<LoadF32>(work, work + k, work + 2 * k, work + 3 * k, xr, k)
                               : dot4<H>(w0, w0 + k, w0 + 2 * k, w0 + 3 * k, xr, k);
      wasm_v128_store(y + i * n + j, wasm_f32x4_add(s, vb));
    }
  }
  for (; j < n; ++j) {  // the last n % 4 rows, one at a time
    const uint16_t* wr = w + j * k;
    if (prefill) widen(wr, 1);
    for (size_t i = 0; i < m; ++i) {
      const float s = prefill ? dot1<LoadF32>(work, x + i * k, k) : dot1<H>(wr, x + i * k, k);
      y[i * n + j] = bias ? s + bias[j] : s;
    }
  }
}

}  // namespace

void gemm_f16_f32__wasmsimd(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                            const float* bias, float* y, float* work) {
  gemm_half<false>(m, n, k, x, w, bias, y, work);
}

void gemm_bf16_f32__wasmsimd(size_t m, size_t n, size_t k, const float* x, const uint16_t* w,
                             const float* bias, float* y, float* work) {
  gemm_half<true>(m, n, k, x, w, bias, y, work);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
