// GPT2LMHeadModel (transformers modeling_gpt2.py), written in the module layer. HF names:
//   x = wte[ids] + wpe[positions]
//   per block h: a = ln_1(x); x += attn.c_proj(attn(split(attn.c_attn(a))))
//                m = ln_2(x); x += mlp.c_proj(act(mlp.c_fc(m)))
//   logits = lm_head(ln_f(x)), lm_head tied to transformer.wte.
// c_attn, c_proj and c_fc are HF Conv1D modules (weights stored [in, out]); c_attn's output is
// q | k | v, each [n_embd] and split into heads. Scores are scaled by 1/sqrt(head_dim) when
// scale_attn_weights (default), and further by 1/(layer_idx + 1) when
// scale_attn_by_inverse_layer_idx.
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

struct Gpt2Config {
  int n_embd = 768, n_layer = 12, n_head = 12, n_positions = 1024, n_inner = 0, vocab_size = 50257;
  float eps = 1e-5f;
  nn::Activation act = nn::Activation::kGeluTanh;
  bool scale_attn_weights = true, scale_by_layer = false;
};

class Gpt2 final : public Decoder {
 public:
  Gpt2(const Gpt2Config& c, ModelInfo info) : cfg_(c), info_(std::move(info)) {}
  const ModelInfo& info() const override { return info_; }

  void build(VarBuilder& root) override {
    const int H = cfg_.n_embd, I = cfg_.n_inner, V = cfg_.vocab_size;
    VarBuilder t = root.pp("transformer");
    root.set_optional_prefix("transformer");  // the original gpt2 file stores "wte.weight", "h.0...."
    wte_.declare(t, "wte", V, H);
    wpe_.declare(t, "wpe", cfg_.n_positions, H);
    blocks_.resize(static_cast<size_t>(cfg_.n_layer));
    attn_.resize(blocks_.size());
    for (int l = 0; l < cfg_.n_layer; ++l) {
      Block& b = blocks_[static_cast<size_t>(l)];
      VarBuilder h = t.pp("h").pp(l);
      b.ln_1.declare(h, "ln_1", nn::NormType::kLayerNorm, H, cfg_.eps, true);
      b.c_attn.declare(h.pp("attn"), "c_attn", 3 * H, H, true, /*conv1d=*/true);
      b.attn_proj.declare(h.pp("attn"), "c_proj", H, H, true, true);
      b.ln_2.declare(h, "ln_2", nn::NormType::kLayerNorm, H, cfg_.eps, true);
      b.mlp.up.declare(h.pp("mlp"), "c_fc", I, H, true, true);
      b.mlp.down.declare(h.pp("mlp"), "c_proj", H, I, true, true);
      b.mlp.act = cfg_.act;
      b.mlp.hidden = I;
      nn::CachedAttention& at = attn_[static_cast<size_t>(l)];
      at.n_heads = at.n_kv_heads = cfg_.n_head;
      at.head_dim = H / cfg_.n_head;
      float scale = cfg_.scale_attn_weights ? 1.0f / std::sqrt(static_cast<float>(at.head_dim)) : 1.0f;
      if (cfg_.scale_by_layer) scale /= static_cast<float>(l + 1);
      at.scale = scale;
    }
    ln_f_.declare(t, "ln_f", nn::NormType::kLayerNorm, H, cfg_.eps, true);
    head_.index = root.linear("lm_head", V, H, false, false, "transformer.wte.weight", true);
  }

  void begin(size_t n, int /*pos*/) override {
    const size_t H = static_cast<size_t>(cfg_.n_embd);
    scratch(n, H, H, H);
    qkv_.resize(n * 3 * H);
  }
  void embed_rows(const Weights& w, const int32_t* tokens, size_t n, int pos, float* x) override {
    wte_.lookup(w, tokens, n, false, x);
    wpe_.rows(w, pos, n, true, x);
  }
  void block(const Weights& w, int l, float* x, size_t n, int pos) override {
    const size_t H = static_cast<size_t>(cfg_.n_embd);
    const Block& b = blocks_[static_cast<size_t>(l)];
    b.ln_1.forward(w, x, n, a_.data());
    b.c_attn.forward(w, a_.data(), n, qkv_.data());
    for (size_t i = 0; i < n; ++i) {  // q | k | v
      const float* r = &qkv_[i * 3 * H];
      std::copy(r, r + H, &q_[i * H]);
      std::copy(r + H, r + 2 * H, &k_[i * H]);
      std::copy(r + 2 * H, r + 3 * H, &v_[i * H]);
    }
    attn_[static_cast<size_t>(l)].forward(q_.data(), k_.data(), v_.data(), n, pos, att_.data());
    b.attn_proj.forward(w, att_.data(), n, tmp_.data());
    nn::add_inplace(x, tmp_.data(), n * H);
    b.ln_2.forward(w, x, n, a_.data());
    b.mlp.forward(w, a_.data(), n, tmp_.data(), &h_, &g_);
    nn::add_inplace(x, tmp_.data(), n * H);
  }
  void head(const Weights& w, const float* x, size_t n, size_t rows, float* logits) override {
    output(w, ln_f_, head_, x, n, rows, static_cast<size_t>(cfg_.n_embd), logits);
  }

 private:
  struct Block {
    Norm ln_1, ln_2;
    Linear c_attn, attn_proj;
    nn::Mlp mlp;
  };
  Gpt2Config cfg_;
  ModelInfo info_;
  nn::Embedding wte_, wpe_;
  std::vector<Block> blocks_;
  Norm ln_f_;
  Linear head_;
  std::vector<float> qkv_;
};

}  // namespace

Status make_gpt2(const io::JsonValue& root, std::unique_ptr<Architecture>* out) {
  using namespace config;
  Gpt2Config c;
  WQ_RETURN_IF_ERROR(read_int(root, "n_embd", true, &c.n_embd));
  WQ_RETURN_IF_ERROR(read_int(root, "n_layer", true, &c.n_layer));
  WQ_RETURN_IF_ERROR(read_int(root, "n_head", true, &c.n_head));
  WQ_RETURN_IF_ERROR(read_int(root, "n_positions", true, &c.n_positions));
  WQ_RETURN_IF_ERROR(read_int(root, "vocab_size", true, &c.vocab_size));
  WQ_RETURN_IF_ERROR(read_int(root, "n_inner", false, &c.n_inner));
  WQ_RETURN_IF_ERROR(read_float(root, "layer_norm_epsilon", &c.eps));
  WQ_RETURN_IF_ERROR(read_bool(root, "scale_attn_weights", &c.scale_attn_weights));
  WQ_RETURN_IF_ERROR(read_bool(root, "scale_attn_by_inverse_layer_idx", &c.scale_by_layer));
  bool reorder = false;
  WQ_RETURN_IF_ERROR(read_bool(root, "reorder_and_upcast_attn", &reorder));  // same math in fp32
  std::string act = "gelu_new";
  WQ_RETURN_IF_ERROR(read_string(root, "activation_function", &act));
  if (!nn::parse_activation(act.c_str(), &c.act)) {
    return Status::Error(StatusCode::kUnsupported,
                         "config.json: activation_function '" + act +
                             "' is not supported; supported: gelu_new, gelu, gelu_pytorch_tanh, relu, silu");
  }
  if (c.n_inner == 0) c.n_inner = 4 * c.n_embd;
  for (auto [k, v] : {std::pair<const char*, int>{"n_embd", c.n_embd}, {"n_layer", c.n_layer},
                      {"n_head", c.n_head}, {"n_positions", c.n_positions},
                      {"vocab_size", c.vocab_size}, {"n_inner", c.n_inner}}) {
    WQ_RETURN_IF_ERROR(positive(k, v));
  }
  if (c.n_embd % c.n_head != 0) {
    return bad("n_head (" + std::to_string(c.n_head) + ") must divide n_embd (" +
               std::to_string(c.n_embd) + ")");
  }
  if (static_cast<double>(c.vocab_size) * c.n_embd > 2e9 || static_cast<double>(c.n_inner) * c.n_embd > 2e9) {
    return bad("model dimensions are too large");
  }
  ModelInfo info;
  info.model_type = "gpt2";
  info.vocab_size = c.vocab_size;
  info.hidden_size = c.n_embd;
  info.num_layers = c.n_layer;
  info.num_heads = info.num_kv_heads = c.n_head;
  info.head_dim = c.n_embd / c.n_head;
  info.max_position_embeddings = c.n_positions;
  info.tie_word_embeddings = true;
  WQ_RETURN_IF_ERROR(read_special_ids(root, &info.bos_token_id, &info.eos_token_ids));
  *out = std::make_unique<Gpt2>(c, std::move(info));
  return Status::Ok();
}

}  // namespace webquant::models
