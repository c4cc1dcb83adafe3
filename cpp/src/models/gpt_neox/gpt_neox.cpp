// GPTNeoXForCausalLM (transformers modeling_gpt_neox.py; EleutherAI's Pythia), written in the
// module layer. HF names, per layer:
//   qkv = attention.query_key_value(input_layernorm(x)) viewed [heads, 3 * head_dim] per token:
//         q = [:, :hd], k = [:, hd:2hd], v = [:, 2hd:]
//   rotary (rotate_half) on the first rotary_ndims = int(head_dim * rotary_pct) dims of q and k
//   a = attention.dense(attn(q, k, v)),  scale 1/sqrt(head_dim)
//   use_parallel_residual: x = x + a + mlp(post_attention_layernorm(x))
//   otherwise:             h = x + a; x = h + mlp(post_attention_layernorm(h))
//   mlp = dense_4h_to_h(act(dense_h_to_4h(.)))
// then logits = embed_out(final_layer_norm(x)) (tied to embed_in when tie_word_embeddings).
#include <cmath>
#include <string>

#include "models/architectures.h"
#include "models/decoder.h"
#include "models/config_fields.h"
#include "nn/blocks.h"

namespace webquant::models {
namespace {

using nn::Linear;
using nn::Norm;

struct NeoXConfig {
  int hidden = 0, layers = 0, heads = 0, intermediate = 0, vocab = 0, max_pos = 0, rotary_ndims = 0;
  float eps = 1e-5f, rotary_base = 10000.0f;
  bool parallel = true, bias = true, tie = false;
  nn::Activation act = nn::Activation::kGeluExact;
};

class GptNeoX final : public Decoder {
 public:
  GptNeoX(const NeoXConfig& c, ModelInfo info) : cfg_(c), info_(std::move(info)) {}
  const ModelInfo& info() const override { return info_; }

  void build(VarBuilder& root) override {
    const int H = cfg_.hidden, I = cfg_.intermediate, V = cfg_.vocab;
    VarBuilder g = root.pp("gpt_neox");
    embed_.declare(g, "embed_in", V, H);
    layers_.resize(static_cast<size_t>(cfg_.layers));
    attn_.resize(layers_.size());
    for (int l = 0; l < cfg_.layers; ++l) {
      Layer& L = layers_[static_cast<size_t>(l)];
      VarBuilder b = g.pp("layers").pp(l);
      L.ln1.declare(b, "input_layernorm", nn::NormType::kLayerNorm, H, cfg_.eps, true);
      L.ln2.declare(b, "post_attention_layernorm", nn::NormType::kLayerNorm, H, cfg_.eps, true);
      L.qkv.declare(b.pp("attention"), "query_key_value", 3 * H, H, cfg_.bias);
      L.dense.declare(b.pp("attention"), "dense", H, H, cfg_.bias);
      L.mlp.up.declare(b.pp("mlp"), "dense_h_to_4h", I, H, true);
      L.mlp.down.declare(b.pp("mlp"), "dense_4h_to_h", H, I, true);
      L.mlp.act = cfg_.act;
      L.mlp.hidden = I;
      nn::CachedAttention& at = attn_[static_cast<size_t>(l)];
      at.n_heads = at.n_kv_heads = cfg_.heads;
      at.head_dim = H / cfg_.heads;
      at.scale = 1.0f / std::sqrt(static_cast<float>(at.head_dim));
    }
    final_norm_.declare(g, "final_layer_norm", nn::NormType::kLayerNorm, H, cfg_.eps, true);
    head_.index = root.linear("embed_out", V, H, false, false,
                              cfg_.tie ? "gpt_neox.embed_in.weight" : "", true);
    rotary_.init(cfg_.rotary_ndims, cfg_.rotary_base);
  }

  void begin(size_t n, int pos) override {
    const size_t H = static_cast<size_t>(cfg_.hidden), rd = static_cast<size_t>(cfg_.rotary_ndims);
    scratch(n, H, H, H);
    qkv_.resize(n * 3 * H);
    attn_out_.resize(n * H);
    cs_.resize(n * rd);
    for (size_t i = 0; i < n; ++i) rotary_.cos_sin(pos + static_cast<int>(i), &cs_[i * rd]);
  }
  void embed_rows(const Weights& w, const int32_t* tokens, size_t n, int /*pos*/, float* x) override {
    embed_.lookup(w, tokens, n, false, x);
  }
  void block(const Weights& w, int l, float* x, size_t n, int pos) override {
    const size_t H = static_cast<size_t>(cfg_.hidden);
    const int heads = cfg_.heads;
    const size_t hd = H / static_cast<size_t>(heads), rd = static_cast<size_t>(cfg_.rotary_ndims);
    const Layer& L = layers_[static_cast<size_t>(l)];
    L.ln1.forward(w, x, n, a_.data());
    L.qkv.forward(w, a_.data(), n, qkv_.data());
    for (size_t i = 0; i < n; ++i) {  // per head: q | k | v
      for (int h = 0; h < heads; ++h) {
        const float* r = &qkv_[i * 3 * H + static_cast<size_t>(h) * 3 * hd];
        const size_t o = i * H + static_cast<size_t>(h) * hd;
        std::copy(r, r + hd, &q_[o]);
        std::copy(r + hd, r + 2 * hd, &k_[o]);
        std::copy(r + 2 * hd, r + 3 * hd, &v_[o]);
      }
      if (rd > 0) {
        rotary_.apply(&q_[i * H], heads, static_cast<int>(hd), &cs_[i * rd]);
        rotary_.apply(&k_[i * H], heads, static_cast<int>(hd), &cs_[i * rd]);
      }
    }
    attn_[static_cast<size_t>(l)].forward(q_.data(), k_.data(), v_.data(), n, pos, att_.data());
    L.dense.forward(w, att_.data(), n, attn_out_.data());
    if (cfg_.parallel) {
      L.ln2.forward(w, x, n, a_.data());
      nn::add_inplace(x, attn_out_.data(), n * H);
    } else {
      nn::add_inplace(x, attn_out_.data(), n * H);
      L.ln2.forward(w, x, n, a_.data());
    }
    L.mlp.forward(w, a_.data(), n, tmp_.data(), &h_, &g_);
    nn::add_inplace(x, tmp_.data(), n * H);
  }
  void head(const Weights& w, const float* x, size_t n, size_t rows, float* logits) override {
    output(w, final_norm_, head_, x, n, rows, static_cast<size_t>(cfg_.hidden), logits);
  }

 private:
  struct Layer {
    Norm ln1, ln2;
    Linear qkv, dense;
    nn::Mlp mlp;
  };
  NeoXConfig cfg_;
  ModelInfo info_;
  nn::Embedding embed_;
  std::vector<Layer> layers_;
  Norm final_norm_;
  Linear head_;
  nn::Rotary rotary_;
  std::vector<float> qkv_, attn_out_, cs_;
};

}  // namespace

Status make_gpt_neox(const io::JsonValue& root, std::unique_ptr<Architecture>* out) {
  using namespace config;
  NeoXConfig c;
  WQ_RETURN_IF_ERROR(read_int(root, "hidden_size", true, &c.hidden));
  WQ_RETURN_IF_ERROR(read_int(root, "num_hidden_layers", true, &c.layers));
  WQ_RETURN_IF_ERROR(read_int(root, "num_attention_heads", true, &c.heads));
  WQ_RETURN_IF_ERROR(read_int(root, "intermediate_size", true, &c.intermediate));
  WQ_RETURN_IF_ERROR(read_int(root, "vocab_size", true, &c.vocab));
  WQ_RETURN_IF_ERROR(read_int(root, "max_position_embeddings", true, &c.max_pos));
  WQ_RETURN_IF_ERROR(read_float(root, "layer_norm_eps", &c.eps));
  WQ_RETURN_IF_ERROR(read_float(root, "rotary_emb_base", &c.rotary_base));
  WQ_RETURN_IF_ERROR(read_float(root, "rope_theta", &c.rotary_base));  // newer spelling
  WQ_RETURN_IF_ERROR(read_bool(root, "use_parallel_residual", &c.parallel));
  WQ_RETURN_IF_ERROR(read_bool(root, "attention_bias", &c.bias));
  WQ_RETURN_IF_ERROR(read_bool(root, "tie_word_embeddings", &c.tie));
  float pct = 1.0f;
  WQ_RETURN_IF_ERROR(read_float(root, "rotary_pct", &pct));
  WQ_RETURN_IF_ERROR(read_float(root, "partial_rotary_factor", &pct));  // newer spelling
  const io::JsonValue* rs = root.get("rope_scaling");
  if (rs != nullptr && !rs->is_null()) {
    return Status::Error(StatusCode::kUnsupported, "config.json: gpt_neox rope_scaling is not supported");
  }
  std::string act = "gelu";
  WQ_RETURN_IF_ERROR(read_string(root, "hidden_act", &act));
  if (!nn::parse_activation(act.c_str(), &c.act)) {
    return Status::Error(StatusCode::kUnsupported,
                         "config.json: hidden_act '" + act +
                             "' is not supported; supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu");
  }
  for (auto [k, v] : {std::pair<const char*, int>{"hidden_size", c.hidden}, {"num_hidden_layers", c.layers},
                      {"num_attention_heads", c.heads}, {"intermediate_size", c.intermediate},
                      {"vocab_size", c.vocab}, {"max_position_embeddings", c.max_pos}}) {
    WQ_RETURN_IF_ERROR(positive(k, v));
  }
  if (c.hidden % c.heads != 0) {
    return bad("num_attention_heads (" + std::to_string(c.heads) + ") must divide hidden_size (" +
               std::to_string(c.hidden) + ")");
  }
  const int hd = c.hidden / c.heads;
  if (!(pct >= 0.0f && pct <= 1.0f)) return bad("'rotary_pct' must be in [0, 1]");
  c.rotary_ndims = static_cast<int>(static_cast<float>(hd) * pct);  // int(head_size * rotary_pct)
  if (c.rotary_ndims % 2 != 0) {
    return bad("rotary dims (head_dim * rotary_pct = " + std::to_string(c.rotary_ndims) + ") must be even");
  }
  if (!(c.rotary_base > 0)) return bad("'rotary_emb_base' must be positive");
  if (static_cast<double>(c.vocab) * c.hidden > 2e9 || static_cast<double>(c.intermediate) * c.hidden > 2e9) {
    return bad("model dimensions are too large");
  }
  ModelInfo info;
  info.model_type = "gpt_neox";
  info.vocab_size = c.vocab;
  info.hidden_size = c.hidden;
  info.num_layers = c.layers;
  info.num_heads = info.num_kv_heads = c.heads;
  info.head_dim = hd;
  info.max_position_embeddings = c.max_pos;
  info.tie_word_embeddings = c.tie;
  WQ_RETURN_IF_ERROR(read_special_ids(root, &info.bos_token_id, &info.eos_token_ids));
  *out = std::make_unique<GptNeoX>(c, std::move(info));
  return Status::Ok();
}

}  // namespace webquant::models
