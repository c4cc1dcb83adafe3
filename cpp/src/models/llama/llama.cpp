// LlamaForCausalLM and the architectures sharing its graph (mistral, qwen2), written in the module
// layer. Config semantics in webquant/llama.h. Per layer (HF names):
//   h  = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),  n1 = input_layernorm(x)
//   x' = h + down_proj(silu(gate_proj(n2)) * up_proj(n2)),                  n2 = post_attention_layernorm(h)
// then logits = lm_head(norm(x)); a tied lm_head reads model.embed_tokens.
#include <cmath>

#include "models/architectures.h"
#include "models/decoder.h"
#include "models/llama/llama_rope.h"
#include "nn/blocks.h"
#include "webquant/llama.h"

namespace webquant::models {
namespace {

using nn::Linear;
using nn::Norm;

class Llama final : public Decoder {
 public:
  explicit Llama(const LlamaConfig& c) : cfg_(c) {
    info_.model_type = c.model_type;
    info_.vocab_size = c.vocab_size;
    info_.hidden_size = c.hidden_size;
    info_.num_layers = c.num_hidden_layers;
    info_.num_heads = c.num_attention_heads;
    info_.num_kv_heads = c.num_key_value_heads;
    info_.head_dim = c.head_dim;
    info_.max_position_embeddings = c.max_position_embeddings;
    info_.bos_token_id = c.bos_token_id;
    info_.eos_token_ids = c.eos_token_ids;
    info_.tie_word_embeddings = c.tie_word_embeddings;
  }
  const ModelInfo& info() const override { return info_; }

  void build(VarBuilder& root) override {
    const int H = cfg_.hidden_size, I = cfg_.intermediate_size, V = cfg_.vocab_size;
    const int Q = cfg_.q_dim(), KV = cfg_.kv_dim();
    const float eps = cfg_.rms_norm_eps;
    VarBuilder m = root.pp("model");
    embed_.declare(m, "embed_tokens", V, H);
    layers_.resize(static_cast<size_t>(cfg_.num_hidden_layers));
    attn_.resize(layers_.size());
    for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
      Layer& L = layers_[static_cast<size_t>(l)];
      VarBuilder b = m.pp("layers").pp(l);
      VarBuilder a = b.pp("self_attn"), mlp = b.pp("mlp");
      L.q.declare(a, "q_proj", Q, H, cfg_.qkv_bias);
      L.k.declare(a, "k_proj", KV, H, cfg_.qkv_bias);
      L.v.declare(a, "v_proj", KV, H, cfg_.qkv_bias);
      L.o.declare(a, "o_proj", H, Q, cfg_.o_bias);
      L.mlp.gate.declare(mlp, "gate_proj", I, H, cfg_.mlp_bias);
      L.mlp.up.declare(mlp, "up_proj", I, H, cfg_.mlp_bias);
      L.mlp.down.declare(mlp, "down_proj", H, I, cfg_.mlp_bias);
      L.mlp.act = nn::Activation::kSilu;
      L.mlp.hidden = I;
      L.input_norm.declare(b, "input_layernorm", nn::NormType::kRmsNorm, H, eps, false);
      L.post_norm.declare(b, "post_attention_layernorm", nn::NormType::kRmsNorm, H, eps, false);
      nn::CachedAttention& at = attn_[static_cast<size_t>(l)];
      at.n_heads = cfg_.num_attention_heads;
      at.n_kv_heads = cfg_.num_key_value_heads;
      at.head_dim = cfg_.head_dim;
      at.scale = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim));
      at.sliding_window = cfg_.sliding_window;
    }
    final_norm_.declare(m, "norm", nn::NormType::kRmsNorm, H, eps, false);
    head_.index = root.linear("lm_head", V, H, false, false,
                              cfg_.tie_word_embeddings ? "model.embed_tokens.weight" : "", true);
    rotary_.init(cfg_.head_dim, cfg_.rope_theta);
    rescale_llama_rope(cfg_, &rotary_.inv_freq);
  }

  void begin(size_t n, int pos) override {
    const size_t hd = static_cast<size_t>(cfg_.head_dim);
    scratch(n, static_cast<size_t>(cfg_.hidden_size), static_cast<size_t>(cfg_.q_dim()),
            static_cast<size_t>(cfg_.kv_dim()));
    cs_.resize(n * hd);
    for (size_t i = 0; i < n; ++i) rotary_.cos_sin(pos + static_cast<int>(i), &cs_[i * hd]);
  }
  void embed_rows(const Weights& w, const int32_t* tokens, size_t n, int /*pos*/, float* x) override {
    embed_.lookup(w, tokens, n, false, x);
  }
  void block(const Weights& w, int b, float* x, size_t n, int pos) override {
    const size_t H = static_cast<size_t>(cfg_.hidden_size);
    const size_t Q = static_cast<size_t>(cfg_.q_dim()), KV = static_cast<size_t>(cfg_.kv_dim());
    const size_t hd = static_cast<size_t>(cfg_.head_dim);
    const Layer& L = layers_[static_cast<size_t>(b)];
    L.input_norm.forward(w, x, n, a_.data());
    // q, k and v read the same input: one pool hand-off for the three in decode.
    const size_t qkv[3] = {static_cast<size_t>(L.q.index), static_cast<size_t>(L.k.index),
                           static_cast<size_t>(L.v.index)};
    float* const qkv_out[3] = {q_.data(), k_.data(), v_.data()};
    w.forward_linears(qkv, 3, a_.data(), n, qkv_out);
    for (size_t i = 0; i < n; ++i) {
      rotary_.apply(&q_[i * Q], cfg_.num_attention_heads, cfg_.head_dim, &cs_[i * hd]);
      rotary_.apply(&k_[i * KV], cfg_.num_key_value_heads, cfg_.head_dim, &cs_[i * hd]);
    }
    attn_[static_cast<size_t>(b)].forward(q_.data(), k_.data(), v_.data(), n, pos, att_.data());
    L.o.forward(w, att_.data(), n, tmp_.data());
    nn::add_inplace(x, tmp_.data(), n * H);

    L.post_norm.forward(w, x, n, a_.data());
    L.mlp.forward(w, a_.data(), n, tmp_.data(), &h_, &g_);
    nn::add_inplace(x, tmp_.data(), n * H);
  }
  void head(const Weights& w, const float* x, size_t n, size_t rows, float* logits) override {
    output(w, final_norm_, head_, x, n, rows, static_cast<size_t>(cfg_.hidden_size), logits);
  }

 private:
  struct Layer {
    Linear q, k, v, o;
    nn::Mlp mlp;
    Norm input_norm, post_norm;
  };
  LlamaConfig cfg_;
  ModelInfo info_;
  nn::Embedding embed_;
  std::vector<Layer> layers_;
  Norm final_norm_;
  Linear head_;
  nn::Rotary rotary_;
  std::vector<float> cs_;
};

}  // namespace

Status make_llama(std::string_view text, std::unique_ptr<Architecture>* out) {
  LlamaConfig cfg;
  WQ_RETURN_IF_ERROR(parse_llama_config(text, &cfg));
  *out = std::make_unique<Llama>(cfg);
  return Status::Ok();
}

}  // namespace webquant::models
