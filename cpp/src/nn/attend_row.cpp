#include "nn/attend_row.h"

#include <algorithm>
#include <cmath>

#include "kernels/kernels.h"
#include "nn/ops.h"

namespace webquant::nn {

void attend_keys(const float* q, const float* k, const float* v, size_t nk, size_t stride, size_t hd,
                 float scale, const float* bias, float* sc, float* out) {
  dots_f32(q, k, stride, nk, hd, sc);
  float mx = -INFINITY;
  for (size_t j = 0; j < nk; ++j) {
    float s = sc[j] * scale;
    if (bias != nullptr) s += bias[j];
    sc[j] = s;
    mx = std::max(mx, s);
  }
  for (size_t j = 0; j < nk; ++j) sc[j] -= mx;
  kernels::exp_f32__wasmsimd(sc, sc, nk);  // std::exp's bits (kernels.h)
  double sum = 0.0;
  for (size_t j = 0; j < nk; ++j) sum += sc[j];
  const float inv = static_cast<float>(1.0 / sum);
  for (size_t j = 0; j < nk; ++j) sc[j] *= inv;
  std::fill(out, out + hd, 0.0f);
  axpys_f32(sc, v, stride, nk, out, hd);
}

void attend_row(const float* q, const float* k, const float* v, size_t nk, size_t stride, int heads,
                int head_dim, float scale, const float* bias, size_t bias_stride,
                std::vector<float>* scores, float* out) {
  const size_t hd = static_cast<size_t>(head_dim);
  scores->resize(nk);
  for (int h = 0; h < heads; ++h) {
    const size_t off = static_cast<size_t>(h) * hd;
    const float* b = bias != nullptr ? bias + static_cast<size_t>(h) * bias_stride : nullptr;
    attend_keys(q + off, k + off, v + off, nk, stride, hd, scale, b, scores->data(), out + off);
  }
}

void CrossKv::project(const Weights& w, const Linear& k_proj, const Linear& v_proj, const float* enc, size_t n,
                      size_t width) {
  k.resize(n * width);
  v.resize(n * width);
  k_proj.forward(w, enc, n, k.data());
  v_proj.forward(w, enc, n, v.data());
  len = n;
}

void CrossKv::attend(const float* q, size_t nq, int heads, int head_dim, float scale, std::vector<float>* scores,
                     float* out) const {
  const size_t width = static_cast<size_t>(heads) * static_cast<size_t>(head_dim);
  for (size_t i = 0; i < nq; ++i) {
    attend_row(q + i * width, k.data(), v.data(), len, width, heads, head_dim, scale, nullptr, 0, scores,
               out + i * width);
  }
}

}  // namespace webquant::nn
