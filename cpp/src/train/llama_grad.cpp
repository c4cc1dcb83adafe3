// Forward pass with kept activations and backward pass of the Llama graph (llama_grad.h).
#include "train/llama_grad.h"

#include <algorithm>
#include <cmath>

#include "models/llama/llama_rope.h"
#include "nn/blocks.h"
#include "webquant/threads.h"

namespace webquant::train {
namespace {

// y[n, out] = x[n, in] W^T (+ b).
void matmul_nt(const float* x, const float* w, const float* b, size_t n, size_t in, size_t out,
               float* y) {
  parallel_for(n, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      const float* xr = x + r * in;
      for (size_t o = 0; o < out; ++o) {
        const float* wo = w + o * in;
        float s = 0.0f;
        for (size_t i = 0; i < in; ++i) s += xr[i] * wo[i];
        y[r * out + o] = s + (b ? b[o] : 0.0f);
      }
    }
  });
}

// dx[n, in] (+)= dy[n, out] W.
void matmul_nn(const float* dy, const float* w, size_t n, size_t in, size_t out, bool accumulate,
               float* dx) {
  parallel_for(n, [&](size_t r0, size_t r1) {
    for (size_t r = r0; r < r1; ++r) {
      float* d = dx + r * in;
      if (!accumulate) std::fill(d, d + in, 0.0f);
      for (size_t o = 0; o < out; ++o) {
        const float g = dy[r * out + o];
        const float* wo = w + o * in;
        for (size_t i = 0; i < in; ++i) d[i] += g * wo[i];
      }
    }
  });
}

// dW[out, in] += dy[n, out]^T x[n, in].
void matmul_tn(const float* dy, const float* x, size_t n, size_t in, size_t out, float* dw) {
  parallel_for(out, [&](size_t o0, size_t o1) {
    for (size_t o = o0; o < o1; ++o) {
      float* d = dw + o * in;
      for (size_t r = 0; r < n; ++r) {
        const float g = dy[r * out + o];
        const float* xr = x + r * in;
        for (size_t i = 0; i < in; ++i) d[i] += g * xr[i];
      }
    }
  });
}

// y = x r g per row, r = 1 / sqrt(mean(x^2) + eps) (kept in rr).
void rmsnorm(const float* x, const float* g, size_t n, size_t dim, float eps, float* rr, float* y) {
  for (size_t r = 0; r < n; ++r) {
    const float* xr = x + r * dim;
    double ss = 0.0;
    for (size_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
    rr[r] = inv;
    for (size_t i = 0; i < dim; ++i) y[r * dim + i] = xr[i] * inv * g[i];
  }
}

// dx (+)= d/dx of rmsnorm for upstream dy; dg += sum over rows of dy x r.
void rmsnorm_backward(const float* x, const float* g, const float* rr, const float* dy, size_t n,
                      size_t dim, bool accumulate, float* dx, float* dg) {
  for (size_t r = 0; r < n; ++r) {
    const float* xr = x + r * dim;
    const float* d = dy + r * dim;
    const float inv = rr[r];
    double s = 0.0;
    for (size_t i = 0; i < dim; ++i) s += static_cast<double>(d[i]) * g[i] * xr[i];
    const float c = static_cast<float>(s / static_cast<double>(dim)) * inv * inv * inv;
    for (size_t i = 0; i < dim; ++i) {
      const float v = inv * d[i] * g[i] - xr[i] * c;
      dx[r * dim + i] = accumulate ? dx[r * dim + i] + v : v;
      if (dg) dg[i] += d[i] * xr[i] * inv;
    }
  }
}

float sigmoid(float z) { return 1.0f / (1.0f + std::exp(-z)); }

}  // namespace

LlamaGrad::LlamaGrad(const LlamaConfig& cfg) : cfg_(cfg) {
  nn::Rotary rot;
  rot.init(cfg.head_dim, cfg.rope_theta);
  models::rescale_llama_rope(cfg, &rot.inv_freq);
  inv_freq_ = rot.inv_freq;
}

int LlamaGrad::out_features(int j) const {
  switch (j) {
    case kQ: return cfg_.q_dim();
    case kK: case kV: return cfg_.kv_dim();
    case kGate: case kUp: return cfg_.intermediate_size;
    default: return cfg_.hidden_size;
  }
}
int LlamaGrad::in_features(int j) const {
  if (j == kO) return cfg_.q_dim();
  if (j == kDown) return cfg_.intermediate_size;
  return cfg_.hidden_size;
}

void LlamaGrad::attention(const Acts& a, size_t l, float* probs, float* att) const {
  (void)l;
  const size_t T = seq_, nh = static_cast<size_t>(cfg_.num_attention_heads);
  const size_t hd = static_cast<size_t>(cfg_.head_dim);
  const size_t group = nh / static_cast<size_t>(cfg_.num_key_value_heads);
  const size_t Q = nh * hd, KV = static_cast<size_t>(cfg_.kv_dim());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  parallel_for(batch_ * nh, [&](size_t u0, size_t u1) {
    std::vector<double> s(T);
    for (size_t u = u0; u < u1; ++u) {
      const size_t b = u / nh, h = u % nh, kvh = h / group;
      for (size_t i = 0; i < T; ++i) {
        const float* qi = &a.q[(b * T + i) * Q + h * hd];
        double mx = -INFINITY;
        for (size_t j = 0; j <= i; ++j) {
          const float* kj = &a.k[(b * T + j) * KV + kvh * hd];
          float d = 0.0f;
          for (size_t e = 0; e < hd; ++e) d += qi[e] * kj[e];
          s[j] = static_cast<double>(d * scale);
          mx = std::max(mx, s[j]);
        }
        double sum = 0.0;
        for (size_t j = 0; j <= i; ++j) sum += (s[j] = std::exp(s[j] - mx));
        float* p = probs + (u * T + i) * T;
        float* o = att + (b * T + i) * Q + h * hd;
        std::fill(o, o + hd, 0.0f);
        for (size_t j = 0; j < T; ++j) {
          p[j] = j <= i ? static_cast<float>(s[j] / sum) : 0.0f;
          if (j > i) continue;
          const float* vj = &a.v[(b * T + j) * KV + kvh * hd];
          for (size_t e = 0; e < hd; ++e) o[e] += p[j] * vj[e];
        }
      }
    }
  });
}

void LlamaGrad::attention_backward(const Acts& a, const float* datt, float* dq, float* dk,
                                   float* dv) const {
  const size_t T = seq_, nh = static_cast<size_t>(cfg_.num_attention_heads);
  const size_t hd = static_cast<size_t>(cfg_.head_dim);
  const size_t nkv = static_cast<size_t>(cfg_.num_key_value_heads), group = nh / nkv;
  const size_t Q = nh * hd, KV = nkv * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One task per (sequence, KV head): it owns that head's dk / dv rows.
  parallel_for(batch_ * nkv, [&](size_t u0, size_t u1) {
    std::vector<float> dp(T);
    for (size_t u = u0; u < u1; ++u) {
      const size_t b = u / nkv, kvh = u % nkv;
      for (size_t i = 0; i < T; ++i) {
        std::fill(&dk[(b * T + i) * KV + kvh * hd], &dk[(b * T + i) * KV + kvh * hd] + hd, 0.0f);
        std::fill(&dv[(b * T + i) * KV + kvh * hd], &dv[(b * T + i) * KV + kvh * hd] + hd, 0.0f);
      }
      for (size_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (size_t i = 0; i < T; ++i) {
          const float* p = &a.probs[((b * nh + h) * T + i) * T];
          const float* go = datt + (b * T + i) * Q + h * hd;
          double dot = 0.0;
          for (size_t j = 0; j <= i; ++j) {
            const float* vj = &a.v[(b * T + j) * KV + kvh * hd];
            float d = 0.0f;
            for (size_t e = 0; e < hd; ++e) d += go[e] * vj[e];
            dp[j] = d;
            dot += static_cast<double>(p[j]) * d;
            float* dvj = &dv[(b * T + j) * KV + kvh * hd];
            for (size_t e = 0; e < hd; ++e) dvj[e] += p[j] * go[e];
          }
          const float* qi = &a.q[(b * T + i) * Q + h * hd];
          float* dqi = dq + (b * T + i) * Q + h * hd;
          std::fill(dqi, dqi + hd, 0.0f);
          for (size_t j = 0; j <= i; ++j) {
            const float ds = p[j] * (dp[j] - static_cast<float>(dot)) * scale;
            const float* kj = &a.k[(b * T + j) * KV + kvh * hd];
            float* dkj = &dk[(b * T + j) * KV + kvh * hd];
            for (size_t e = 0; e < hd; ++e) {
              dqi[e] += ds * kj[e];
              dkj[e] += ds * qi[e];
            }
          }
        }
      }
    }
  });
}

void LlamaGrad::forward(const LlamaParams& p, const int32_t* tokens, size_t batch, size_t seq,
                        std::vector<float>* logits) {
  batch_ = batch;
  seq_ = seq;
  const size_t N = batch * seq, H = static_cast<size_t>(cfg_.hidden_size);
  const size_t I = static_cast<size_t>(cfg_.intermediate_size), V = static_cast<size_t>(cfg_.vocab_size);
  const size_t Q = static_cast<size_t>(cfg_.q_dim()), KV = static_cast<size_t>(cfg_.kv_dim());
  const size_t hd = static_cast<size_t>(cfg_.head_dim), nh = static_cast<size_t>(cfg_.num_attention_heads);
  const float eps = cfg_.rms_norm_eps;
  nn::Rotary rot;
  rot.dims = cfg_.head_dim;
  rot.inv_freq = inv_freq_;
  cs_.resize(seq * hd);
  for (size_t t = 0; t < seq; ++t) rot.cos_sin(static_cast<int>(t), &cs_[t * hd]);

  std::vector<float> x(N * H), tmp(N * H);
  for (size_t r = 0; r < N; ++r)
    std::copy_n(p.embed + static_cast<size_t>(tokens[r]) * H, H, &x[r * H]);
  acts_.resize(p.layers.size());
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const LlamaParams::Layer& L = p.layers[l];
    Acts& a = acts_[l];
    a.x = x;
    a.r1.resize(N); a.n1.resize(N * H); a.q.resize(N * Q); a.k.resize(N * KV); a.v.resize(N * KV);
    a.probs.resize(batch * nh * seq * seq); a.att.resize(N * Q); a.r2.resize(N); a.n2.resize(N * H);
    a.gate.resize(N * I); a.up.resize(N * I); a.act.resize(N * I);
    rmsnorm(x.data(), L.norm1, N, H, eps, a.r1.data(), a.n1.data());
    matmul_nt(a.n1.data(), L.lin[kQ], L.bias[kQ], N, H, Q, a.q.data());
    matmul_nt(a.n1.data(), L.lin[kK], L.bias[kK], N, H, KV, a.k.data());
    matmul_nt(a.n1.data(), L.lin[kV], L.bias[kV], N, H, KV, a.v.data());
    for (size_t r = 0; r < N; ++r) {
      const float* cs = &cs_[(r % seq) * hd];
      rot.apply(&a.q[r * Q], cfg_.num_attention_heads, cfg_.head_dim, cs);
      rot.apply(&a.k[r * KV], cfg_.num_key_value_heads, cfg_.head_dim, cs);
    }
    attention(a, l, a.probs.data(), a.att.data());
    matmul_nt(a.att.data(), L.lin[kO], L.bias[kO], N, Q, H, tmp.data());
    for (size_t i = 0; i < N * H; ++i) x[i] += tmp[i];
    a.h = x;
    rmsnorm(x.data(), L.norm2, N, H, eps, a.r2.data(), a.n2.data());
    matmul_nt(a.n2.data(), L.lin[kGate], L.bias[kGate], N, H, I, a.gate.data());
    matmul_nt(a.n2.data(), L.lin[kUp], L.bias[kUp], N, H, I, a.up.data());
    for (size_t i = 0; i < N * I; ++i) a.act[i] = a.gate[i] * sigmoid(a.gate[i]) * a.up[i];
    matmul_nt(a.act.data(), L.lin[kDown], L.bias[kDown], N, I, H, tmp.data());
    for (size_t i = 0; i < N * H; ++i) x[i] += tmp[i];
  }
  xl_ = x;
  rf_.resize(N);
  nf_.resize(N * H);
  rmsnorm(x.data(), p.final_norm, N, H, eps, rf_.data(), nf_.data());
  logits->resize(N * V);
  matmul_nt(nf_.data(), p.head, nullptr, N, H, V, logits->data());
}

void LlamaGrad::backward(const LlamaParams& p, const float* dlogits, LlamaGrads* g) {
  const size_t N = batch_ * seq_, H = static_cast<size_t>(cfg_.hidden_size);
  const size_t I = static_cast<size_t>(cfg_.intermediate_size), V = static_cast<size_t>(cfg_.vocab_size);
  const size_t Q = static_cast<size_t>(cfg_.q_dim()), KV = static_cast<size_t>(cfg_.kv_dim());
  const size_t hd = static_cast<size_t>(cfg_.head_dim);
  g->layers.resize(p.layers.size());
  for (size_t l = 0; l < p.layers.size(); ++l) {
    for (int j = 0; j < 7; ++j)
      g->layers[l].lin[j].assign(static_cast<size_t>(out_features(j)) * in_features(j), 0.0f);
    g->layers[l].norm1.assign(H, 0.0f);
    g->layers[l].norm2.assign(H, 0.0f);
  }
  g->final_norm.assign(H, 0.0f);

  // The inverse rotation: sin negated.
  nn::Rotary rot;
  rot.dims = cfg_.head_dim;
  rot.inv_freq = inv_freq_;
  std::vector<float> back_cs(cs_);
  for (size_t t = 0; t < seq_; ++t)
    for (size_t e = hd / 2; e < hd; ++e) back_cs[t * hd + e] = -back_cs[t * hd + e];

  std::vector<float> dn(N * H), dx(N * H);
  matmul_nn(dlogits, p.head, N, H, V, false, dn.data());
  rmsnorm_backward(xl_.data(), p.final_norm, rf_.data(), dn.data(), N, H, false, dx.data(),
                   g->final_norm.data());
  std::vector<float> dh(N * H), dact(N * I), dgate(N * I), dup(N * I), datt(N * Q), dq(N * Q),
      dk(N * KV), dv(N * KV);
  for (size_t l = p.layers.size(); l-- > 0;) {
    const LlamaParams::Layer& L = p.layers[l];
    const Acts& a = acts_[l];
    LlamaGrads::Layer& G = g->layers[l];
    // MLP: x_out = h + act Wd^T, act = silu(gate) * up.
    matmul_nn(dx.data(), L.lin[kDown], N, I, H, false, dact.data());
    matmul_tn(dx.data(), a.act.data(), N, I, H, G.lin[kDown].data());
    for (size_t i = 0; i < N * I; ++i) {
      const float s = sigmoid(a.gate[i]);
      dup[i] = dact[i] * a.gate[i] * s;
      dgate[i] = dact[i] * a.up[i] * s * (1.0f + a.gate[i] * (1.0f - s));
    }
    matmul_nn(dgate.data(), L.lin[kGate], N, H, I, false, dn.data());
    matmul_nn(dup.data(), L.lin[kUp], N, H, I, true, dn.data());
    matmul_tn(dgate.data(), a.n2.data(), N, H, I, G.lin[kGate].data());
    matmul_tn(dup.data(), a.n2.data(), N, H, I, G.lin[kUp].data());
    dh = dx;
    rmsnorm_backward(a.h.data(), L.norm2, a.r2.data(), dn.data(), N, H, true, dh.data(),
                     G.norm2.data());
    // Attention: h = x + att Wo^T.
    matmul_nn(dh.data(), L.lin[kO], N, Q, H, false, datt.data());
    matmul_tn(dh.data(), a.att.data(), N, Q, H, G.lin[kO].data());
    attention_backward(a, datt.data(), dq.data(), dk.data(), dv.data());
    for (size_t r = 0; r < N; ++r) {
      const float* cs = &back_cs[(r % seq_) * hd];
      rot.apply(&dq[r * Q], cfg_.num_attention_heads, cfg_.head_dim, cs);
      rot.apply(&dk[r * KV], cfg_.num_key_value_heads, cfg_.head_dim, cs);
    }
    matmul_nn(dq.data(), L.lin[kQ], N, H, Q, false, dn.data());
    matmul_nn(dk.data(), L.lin[kK], N, H, KV, true, dn.data());
    matmul_nn(dv.data(), L.lin[kV], N, H, KV, true, dn.data());
    matmul_tn(dq.data(), a.n1.data(), N, H, Q, G.lin[kQ].data());
    matmul_tn(dk.data(), a.n1.data(), N, H, KV, G.lin[kK].data());
    matmul_tn(dv.data(), a.n1.data(), N, H, KV, G.lin[kV].data());
    dx = dh;
    rmsnorm_backward(a.x.data(), L.norm1, a.r1.data(), dn.data(), N, H, true, dx.data(),
                     G.norm1.data());
  }
}

}  // namespace webquant::train
