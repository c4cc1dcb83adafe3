#include "nn/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/kernels.h"
#include "nn/attend_row.h"
#include "webquant/threads.h"

namespace webquant::nn {

void Embedding::declare(VarBuilder vb, std::string_view name, int rows, int d) {
  dim = d;
  table = vb.param(std::string(name) + ".weight", {rows, d}, ParamKind::kEmbedding);
}

void Embedding::lookup(const Weights& w, const int32_t* ids, size_t n, bool accumulate,
                       float* x) const {
  w.gather_rows(static_cast<size_t>(table), ids, n, accumulate, x);
}

void Embedding::rows(const Weights& w, int first, size_t n, bool accumulate, float* x) const {
  const size_t d = static_cast<size_t>(dim);
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = first + static_cast<int32_t>(i);
    w.gather_rows(static_cast<size_t>(table), &id, 1, accumulate, x + i * d);
  }
}

void Norm::declare(VarBuilder vb, std::string_view name, NormType t, int d, float epsilon, bool bias) {
  type = t;
  dim = d;
  eps = epsilon;
  VarBuilder s = vb.pp(name);
  weight = s.param("weight", {d}, ParamKind::kNorm);
  if (bias && t == NormType::kLayerNorm) this->bias = s.param("bias", {d}, ParamKind::kNorm);
}

void Norm::forward(const Weights& w, const float* x, size_t rows, float* y) const {
  thread_local std::vector<float> gs, bs;  // half models: the norm's parameters widened
  const float* g = w.param_f32(static_cast<size_t>(weight), &gs);
  const float* b = bias >= 0 ? w.param_f32(static_cast<size_t>(bias), &bs) : nullptr;
  const size_t d = static_cast<size_t>(dim);
  for (size_t r = 0; r < rows; ++r) {
    if (type == NormType::kRmsNorm) {
      rms_norm(x + r * d, g, dim, eps, y + r * d);
    } else {
      layer_norm(x + r * d, g, b, dim, eps, y + r * d);
    }
  }
}

void Mlp::forward(const Weights& w, const float* x, size_t n, float* out, std::vector<float>* h,
                  std::vector<float>* g) const {
  const size_t H = n * static_cast<size_t>(hidden);
  h->resize(H);
  if (gate.index >= 0) {
    g->resize(H);
    // gate and up read the same input: one pool hand-off for both in decode.
    const size_t idx[2] = {static_cast<size_t>(gate.index), static_cast<size_t>(up.index)};
    float* const ys[2] = {g->data(), h->data()};
    // g = act(gate(x)) * up(x), applied by forward_linears to the columns each part computed
    // (decode: inside the hand-off of gate/up); columns [j0, j1) of the n rows.
    struct Gated {
      Activation act;
      float* g;
      const float* u;
      size_t rows, width;
    } ctx{act, g->data(), h->data(), n, static_cast<size_t>(hidden)};
    auto epilogue = [](void* p, size_t j0, size_t j1) {
      const Gated& c = *static_cast<const Gated*>(p);
      if (j0 == 0 && j1 == c.width) return activate_mul(c.act, c.g, c.u, c.rows * c.width);
      for (size_t r = 0; r < c.rows; ++r)
        activate_mul(c.act, c.g + r * c.width + j0, c.u + r * c.width + j0, j1 - j0);
    };
    w.forward_linears(idx, 2, x, n, ys, epilogue, &ctx);
    down.forward(w, g->data(), n, out);
  } else {
    up.forward(w, x, n, h->data());
    activate(act, h->data(), H);
    down.forward(w, h->data(), n, out);
  }
}

void Rotary::init(int rotary_dims, float theta) {
  dims = rotary_dims;
  inv_freq.resize(static_cast<size_t>(dims / 2));
  for (int i = 0; i < dims / 2; ++i) {
    // torch: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32.
    const float expo = static_cast<float>(2 * i) / static_cast<float>(dims);
    inv_freq[static_cast<size_t>(i)] = 1.0f / std::pow(theta, expo);
  }
}

void Rotary::cos_sin(int pos, float* cs) const {
  const int half = dims / 2;
  for (int i = 0; i < half; ++i) {
    const float a = static_cast<float>(pos) * inv_freq[static_cast<size_t>(i)];
    cs[i] = std::cos(a);
    cs[half + i] = std::sin(a);
  }
}

void Rotary::apply(float* v, int n_heads, int head_dim, const float* cs) const {
  const int half = dims / 2;
  const float* c = cs;
  const float* s = cs + half;
  for (int h = 0; h < n_heads; ++h) {
    float* x = v + static_cast<size_t>(h) * static_cast<size_t>(head_dim);
    for (int i = 0; i < half; ++i) {
      const float x1 = x[i];
      const float x2 = x[i + half];
      x[i] = x1 * c[i] - x2 * s[i];
      x[i + half] = x2 * c[i] + x1 * s[i];
    }
  }
}

void CachedAttention::reserve(int positions) {
  if (positions <= capacity_) return;
  const size_t kv = static_cast<size_t>(n_kv_heads) * static_cast<size_t>(head_dim);
  k_cache_.resize(static_cast<size_t>(positions) * kv);
  v_cache_.resize(static_cast<size_t>(positions) * kv);
  capacity_ = positions;
}

namespace {

// Attention below this many multiply-adds runs inline (a pool hand-off costs more).
constexpr size_t kParallelAttentionMacs = 32768;

// Calls item(index, scores) for every index in [0, items), (token, head) pairs, split over the pool
// of webquant/threads.h in contiguous runs of chunks. Each run gets its own slot of
// `stride` floats of *scratch as score buffer; *scratch is sized here, on the calling thread (wasm
// workers must not grow the heap). Every item is computed the same way whichever part runs it, so
// the outputs are bit-identical for every thread count.
template <typename Item>
void for_each_head(size_t items, size_t stride, size_t macs, std::vector<float>* scratch,
                   const Item& item) {
  ProfileRegion region(RegionKind::kAttention);
  const size_t threads = std::min<size_t>(static_cast<size_t>(num_threads()), items);
  // Chunks of items, claimed as threads.h's parallel_for_chunks says.
  size_t chunks = std::min({items, kMaxChunks, threads * kChunksPerThread});
  if (threads < 2 || macs < kParallelAttentionMacs) chunks = 1;
  if (scratch->size() < chunks * stride) scratch->resize(chunks * stride);
  float* base = scratch->data();
  if (chunks == 1) {
    for (size_t it = 0; it < items; ++it) item(it, base);
    return;
  }
  parallel_for_chunks(chunks, chunks, [&](size_t begin, size_t end) {
    // A claimed run of chunks uses its first chunk's slot (no other call has that chunk).
    const size_t i1 = split_point(items, end, chunks);
    float* slot = base + begin * stride;
    for (size_t it = split_point(items, begin, chunks); it < i1; ++it) item(it, slot);
  });
}

}  // namespace

void CachedAttention::forward(const float* q, const float* k, const float* v, size_t n, int pos,
                              float* out) {
  const size_t hd = static_cast<size_t>(head_dim);
  const size_t KV = static_cast<size_t>(n_kv_heads) * hd, Q = static_cast<size_t>(n_heads) * hd;
  const int group = n_heads / n_kv_heads;
  std::memcpy(k_cache_.data() + static_cast<size_t>(pos) * KV, k, n * KV * sizeof(float));
  std::memcpy(v_cache_.data() + static_cast<size_t>(pos) * KV, v, n * KV * sizeof(float));
  const float* kc = k_cache_.data();
  const float* vc = v_cache_.data();
  const size_t H = static_cast<size_t>(n_heads);
  const size_t macs = 2 * n * H * hd * (static_cast<size_t>(pos) + n);
  // Item it = (token i, head h): token i (position pos+i) sees cache rows [start, pos+i].
  for_each_head(n * H, static_cast<size_t>(pos) + n, macs, &scores_, [&](size_t it, float* sc) {
    const size_t i = it / H;
    const int h = static_cast<int>(it % H);
    const int p = pos + static_cast<int>(i);
    const int start = sliding_window > 0 ? std::max(0, p - sliding_window + 1) : 0;
    const float* qh = q + i * Q + static_cast<size_t>(h) * hd;
    const size_t koff = static_cast<size_t>(h / group) * hd;
    const size_t first = static_cast<size_t>(start), nk = static_cast<size_t>(p - start + 1);
    attend_keys(qh, kc + first * KV + koff, vc + first * KV + koff, nk, KV, hd, scale, nullptr,
                sc + first, out + i * Q + static_cast<size_t>(h) * hd);
  });
}

void self_attention(const float* q, const float* k, const float* v, size_t n, int n_heads,
                    int n_kv_heads, int head_dim, float scale, bool causal, const uint8_t* key_mask,
                    std::vector<float>* scores, float* out) {
  const size_t hd = static_cast<size_t>(head_dim);
  const size_t KV = static_cast<size_t>(n_kv_heads) * hd, Q = static_cast<size_t>(n_heads) * hd;
  const int group = n_heads / n_kv_heads;
  const size_t H = static_cast<size_t>(n_heads);
  const size_t macs = 2 * n * H * hd * n;
  for_each_head(n * H, n, macs, scores, [&](size_t it, float* sc) {
    const size_t i = it / H;
    const int h = static_cast<int>(it % H);
    const size_t last = causal ? i + 1 : n;
    const float* qh = q + i * Q + static_cast<size_t>(h) * hd;
    const size_t koff = static_cast<size_t>(h / group) * hd;
    float* o = out + i * Q + static_cast<size_t>(h) * hd;
    std::fill(o, o + hd, 0.0f);
    float mx = -INFINITY;
    for (size_t j = 0; j < last; ++j) {
      if (key_mask != nullptr && key_mask[j] == 0) continue;
      sc[j] = dot_f32(qh, k + j * KV + koff, hd) * scale;
      mx = std::max(mx, sc[j]);
    }
    if (mx == -INFINITY) return;  // nothing to attend to
    for (size_t j = 0; j < last; ++j)  // a masked key gets e^-inf = 0
      sc[j] = key_mask != nullptr && key_mask[j] == 0 ? -INFINITY : sc[j] - mx;
    kernels::exp_f32__wasmsimd(sc, sc, last);  // std::exp's bits (kernels.h)
    double sum = 0.0;
    for (size_t j = 0; j < last; ++j) sum += sc[j];
    const float inv = static_cast<float>(1.0 / sum);
    for (size_t j = 0; j < last; ++j) {
      if (key_mask != nullptr && key_mask[j] == 0) continue;
      axpy_f32(sc[j] * inv, v + j * KV + koff, o, hd);
    }
  });
}

void add_inplace(float* y, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

void add_bias(float* y, const float* bias, size_t rows, size_t d) {
  for (size_t r = 0; r < rows; ++r) add_inplace(y + r * d, bias, d);
}

}  // namespace webquant::nn
