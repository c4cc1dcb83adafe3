#include "kernels/simd.h"

#if WEBQUANT_SIMD
#include <cmath>

#include "kernels/kernels.h"

namespace webquant::kernels {
namespace {

// Rounding after the clamp gives the same integer as the reference's round-then-clamp, because
// qmin and qmax are integers and rounding is monotone. Once v is clamped (any range inside
// +-2^22; q8 needs [-128, 255]), adding 1.5 * 2^23 makes the fp32 ulp exactly 1, so the FPU rounds
// v half to even (as nearbyint / f32x4.nearest) and the low byte of the sum's bit pattern is the
// two's-complement low byte of round(v). This replaces nearest + trunc_sat + narrow.
constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23, bits 0x4B400000 (low byte 0)

inline v128_t round_clamp_bits(v128_t v, v128_t vmin, v128_t vmax, v128_t magic) {
  v = wasm_f32x4_pmax(vmin, v);  // qmin < v ? v : qmin  (NaN -> qmin, as fmax)
  v = wasm_f32x4_pmin(vmax, v);  // v < qmax ? v : qmax
  return wasm_f32x4_add(v, magic);
}

// Low byte of each 32-bit lane of a, b, c, d, in order.
inline v128_t low_bytes(v128_t a, v128_t b, v128_t c, v128_t d) {
  const v128_t ab = wasm_i8x16_shuffle(a, b, 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  const v128_t cd = wasm_i8x16_shuffle(c, d, 0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  return wasm_i64x2_shuffle(ab, cd, 0, 2);
}

inline uint8_t quantize_one(float x, float scale, float zero_point, float qmin, float qmax) {
  float v = std::nearbyint(x / scale + zero_point);
  v = std::fmin(std::fmax(v, qmin), qmax);
  return static_cast<uint8_t>(static_cast<int32_t>(v));
}

}  // namespace

void quantize_f32_q8__wasmsimd(const float* x, size_t n, float scale, float zero_point, float qmin,
                               float qmax, uint8_t* q) {
  const v128_t vs = wasm_f32x4_splat(scale);
  const v128_t vz = wasm_f32x4_splat(zero_point);
  const v128_t vmin = wasm_f32x4_splat(qmin);
  const v128_t vmax = wasm_f32x4_splat(qmax);
  const v128_t magic = wasm_f32x4_splat(kMagic);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // x / scale is a true division (not x * (1/scale)) to match the reference bit for bit.
    v128_t a = wasm_f32x4_add(wasm_f32x4_div(wasm_v128_load(x + i), vs), vz);
    v128_t b = wasm_f32x4_add(wasm_f32x4_div(wasm_v128_load(x + i + 4), vs), vz);
    v128_t c = wasm_f32x4_add(wasm_f32x4_div(wasm_v128_load(x + i + 8), vs), vz);
    v128_t d = wasm_f32x4_add(wasm_f32x4_div(wasm_v128_load(x + i + 12), vs), vz);
    a = round_clamp_bits(a, vmin, vmax, magic);
    b = round_clamp_bits(b, vmin, vmax, magic);
    c = round_clamp_bits(c, vmin, vmax, magic);
    d = round_clamp_bits(d, vmin, vmax, magic);
    wasm_v128_store(q + i, low_bytes(a, b, c, d));
  }
  for (; i < n; ++i) q[i] = quantize_one(x[i], scale, zero_point, qmin, qmax);
}

void quantize_f32_q8_vparams__wasmsimd(const float* x, size_t n, const float* scale,
                                       const float* zero_point, float qmin, float qmax,
                                       uint8_t* q) {
  const v128_t vmin = wasm_f32x4_splat(qmin);
  const v128_t vmax = wasm_f32x4_splat(qmax);
  const v128_t magic = wasm_f32x4_splat(kMagic);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    v128_t v[4];
    for (int k = 0; k < 4; ++k) {
      const v128_t s = wasm_v128_load(scale + i + 4 * k);
      const v128_t z = wasm_v128_load(zero_point + i + 4 * k);
      const v128_t t = wasm_f32x4_add(wasm_f32x4_div(wasm_v128_load(x + i + 4 * k), s), z);
      v[k] = round_clamp_bits(t, vmin, vmax, magic);
    }
    wasm_v128_store(q + i, low_bytes(v[0], v[1], v[2], v[3]));
  }
  for (; i < n; ++i) q[i] = quantize_one(x[i], scale[i], zero_point[i], qmin, qmax);
}

}  // namespace webquant::kernels

#endif  // WEBQUANT_SIMD
