// Kernel-table entries of the convolution kernels (kernels/conv/conv.h), appended to
// kernel_table() by table.cpp. `n` is the channel count of one group (cg); the seed picks the
// geometry (kernel 1/3/7, stride 1/2, padding, dilation, a group offset c0 inside a wider input,
// a padded row stride). Data movement and the quantizer must match the reference exactly.
#include <algorithm>
#include <cmath>

#include "kernels/conv/conv.h"
#include "kernel_table/table.h"
#include "kernel_table/table_util.h"

namespace webquant::kernels {
namespace {

using namespace table_util;

struct ConvCase {
  ConvGeometry g;
  size_t c0 = 0, cg = 0, ld = 0;
};
ConvCase conv_case(size_t cg, uint64_t seed) {
  ConvCase c;
  const size_t ks[] = {1, 3, 7};
  c.g.kh = ks[seed % 3];
  c.g.kw = ks[(seed / 3) % 3];
  c.g.stride_h = 1 + seed % 2;
  c.g.stride_w = 1 + (seed / 2) % 2;
  c.g.pad_h = c.g.kh / 2;
  c.g.pad_w = (seed % 5 == 0) ? 0 : c.g.kw / 2;
  c.g.dil_h = 1 + (seed % 7 == 3);
  c.g.dil_w = 1;
  const size_t side = cg > 512 ? 4 : 9;
  c.g.h = side + c.g.dil_h * (c.g.kh - 1);
  c.g.w = side + 2 + (c.g.kw - 1);
  c.c0 = seed % 4 == 1 ? cg : 0;  // second group of two
  c.g.c = c.c0 == 0 && seed % 3 != 2 ? cg : 2 * cg;
  c.cg = cg;
  const size_t k = c.g.kh * c.g.kw * cg;
  c.ld = seed & 1 ? (k + 15) / 16 * 16 : k;
  return c;
}

template <typename T>
std::string check_im2col(const char* name, size_t cg, uint64_t seed,
                         void (*ref)(const ConvGeometry&, size_t, size_t, size_t, const T*, T*),
                         void (*simd)(const ConvGeometry&, size_t, size_t, size_t, const T*, T*)) {
  ConvCase c = conv_case(cg, seed);
  const size_t in = c.g.h * c.g.w * c.g.c, out = c.g.oh() * c.g.ow() * c.ld;
  std::vector<T> x(in);
  auto raw = random_floats(in, seed, 50.0f);
  for (size_t i = 0; i < in; ++i) x[i] = static_cast<T>(static_cast<int>(raw[i]) % 120);
  std::vector<T> a(out, T(7)), b(out, T(9));  // different garbage: padding must be written
  ref(c.g, c.c0, c.cg, c.ld, x.data(), a.data());
  simd(c.g, c.c0, c.cg, c.ld, x.data(), b.data());
  return compare_exact(name, cg, a, b);
}
std::string check_im2col_f32(size_t n, uint64_t seed) {
  return check_im2col<float>("im2col_hwc_f32", n, seed, im2col_hwc_f32__ref,
                             im2col_hwc_f32__wasmsimd);
}
std::string check_im2col_s8(size_t n, uint64_t seed) {
  return check_im2col<int8_t>("im2col_hwc_s8", n, seed, im2col_hwc_s8__ref,
                              im2col_hwc_s8__wasmsimd);
}
template <typename T>
double bench_im2col(Variant v, size_t n, int iters,
                    void (*ref)(const ConvGeometry&, size_t, size_t, size_t, const T*, T*),
                    void (*simd)(const ConvGeometry&, size_t, size_t, size_t, const T*, T*)) {
  // n elements of input as a 3x3 stride-1 padded convolution over 64 channels.
  ConvGeometry g;
  g.c = 64;
  g.h = g.w = std::max<size_t>(1, static_cast<size_t>(std::sqrt(double(n) / 64)));
  g.kh = g.kw = 3;
  g.pad_h = g.pad_w = 1;
  std::vector<T> x(g.h * g.w * g.c, T(1)), cols(g.oh() * g.ow() * 9 * g.c);
  auto f = v == Variant::kSimd ? simd : ref;
  return time_per_call(iters, [&] { f(g, 0, g.c, 9 * g.c, x.data(), cols.data()); });
}
double bench_im2col_f32(Variant v, size_t n, int iters) {
  return bench_im2col<float>(v, n, iters, im2col_hwc_f32__ref, im2col_hwc_f32__wasmsimd);
}
double bench_im2col_s8(Variant v, size_t n, int iters) {
  return bench_im2col<int8_t>(v, n, iters, im2col_hwc_s8__ref, im2col_hwc_s8__wasmsimd);
}

std::string check_quantize_static(size_t n, uint64_t seed) {
  auto x = random_floats(n, seed, 40.0f);
  // Ties (k + 0.5) * scale, out-of-range values, NaN and infinities.
  const float scale = 0.25f;
  for (size_t i = 0; i < n; i += 5) x[i] = (float(int(i % 9)) - 4.0f + 0.5f) * scale;
  if (n > 3) { x[1] = NAN; x[2] = INFINITY; x[3] = -INFINITY; }
  std::vector<int8_t> a(n), b(n);
  quantize_static_f32_s8__ref(n, x.data(), scale, a.data());
  quantize_static_f32_s8__wasmsimd(n, x.data(), scale, b.data());
  return compare_exact("quantize_static_f32_s8", n, a, b);
}
double bench_quantize_static(Variant v, size_t n, int iters) {
  auto x = random_floats(n, 1);
  std::vector<int8_t> q(n);
  auto f = v == Variant::kSimd ? quantize_static_f32_s8__wasmsimd : quantize_static_f32_s8__ref;
  return time_per_call(iters, [&] { f(n, x.data(), 0.05f, q.data()); });
}

}  // namespace

std::vector<KernelCase> conv_cases() {
  return {
      {"im2col_hwc_f32", "conv", check_im2col_f32, bench_im2col_f32, 4},
      {"im2col_hwc_s8", "conv", check_im2col_s8, bench_im2col_s8, 1},
      {"quantize_static_f32_s8", "quantize", check_quantize_static, bench_quantize_static, 4},
  };
}

}  // namespace webquant::kernels
