// BertModel / BertForMaskedLM (transformers modeling_bert.py), written in the module layer. HF names:
//   x = LayerNorm(word_embeddings[ids] + position_embeddings[0..S-1] + token_type_embeddings[types])
//   per layer (bert.encoder.layer.N):
//     ctx = softmax(q k^T / sqrt(head_dim) + mask) v          q, k, v = attention.self.{query,key,value}
//     x = attention.output.LayerNorm(attention.output.dense(ctx) + x)
//     x = output.LayerNorm(output.dense(act(intermediate.dense(x))) + x)
//   masked-LM head (cls.predictions):
//     logits = decoder(transform.LayerNorm(act(transform.dense(x)))) + bias, decoder tied to
//     bert.embeddings.word_embeddings.
// Every Linear has a bias; LayerNorms use layer_norm_eps. Attention is bidirectional over the
// keys whose attention_mask is 1, one sequence of the batch at a time.
#include "models/bert/bert.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/config_fields.h"
#include "nn/blocks.h"

namespace webquant::models {
namespace {

using nn::Linear;
using nn::Norm;

struct BertConfig {
  int hidden = 768, layers = 12, heads = 12, intermediate = 3072, vocab = 30522, positions = 512,
      type_vocab = 2, pad = 0;
  float eps = 1e-12f;
  nn::Activation act = nn::Activation::kGeluExact;
  bool mlm = false, tie = true;
};

class Bert final : public EncoderArchitecture {
 public:
  Bert(const BertConfig& c, EncoderInfo info) : cfg_(c), info_(std::move(info)) {}
  const EncoderInfo& info() const override { return info_; }

  void build(VarBuilder& root) override {
    const int H = cfg_.hidden, I = cfg_.intermediate, V = cfg_.vocab;
    root.set_optional_prefix("bert");  // BertModel checkpoints store "embeddings.*", "encoder.*"
    VarBuilder b = root.pp("bert");
    VarBuilder e = b.pp("embeddings");
    word_.declare(e, "word_embeddings", V, H);
    pos_.declare(e, "position_embeddings", cfg_.positions, H);
    type_.declare(e, "token_type_embeddings", cfg_.type_vocab, H);
    emb_ln_.declare(e, "LayerNorm", nn::NormType::kLayerNorm, H, cfg_.eps, true);
    layers_.resize(static_cast<size_t>(cfg_.layers));
    for (int l = 0; l < cfg_.layers; ++l) {
      Layer& L = layers_[static_cast<size_t>(l)];
      VarBuilder x = b.pp("encoder").pp("layer").pp(l);
      VarBuilder s = x.pp("attention").pp("self");
      L.q.declare(s, "query", H, H, true);
      L.k.declare(s, "key", H, H, true);
      L.v.declare(s, "value", H, H, true);
      VarBuilder ao = x.pp("attention").pp("output");
      L.o.declare(ao, "dense", H, H, true);
      L.ln1.declare(ao, "LayerNorm", nn::NormType::kLayerNorm, H, cfg_.eps, true);
      L.mlp.up.declare(x.pp("intermediate"), "dense", I, H, true);
      L.mlp.down.declare(x.pp("output"), "dense", H, I, true);
      L.mlp.act = cfg_.act;
      L.mlp.hidden = I;
      L.ln2.declare(x.pp("output"), "LayerNorm", nn::NormType::kLayerNorm, H, cfg_.eps, true);
    }
    if (cfg_.mlm) {
      VarBuilder p = root.pp("cls").pp("predictions");
      tdense_.declare(p.pp("transform"), "dense", H, H, true);
      tln_.declare(p.pp("transform"), "LayerNorm", nn::NormType::kLayerNorm, H, cfg_.eps, true);
      decoder_.index = p.linear("decoder", V, H, false, false,
                                cfg_.tie ? "bert.embeddings.word_embeddings.weight" : "", true);
      mlm_bias_ = p.param("bias", {V}, ParamKind::kOther);
    }
  }

  void forward(const Weights& w, const EncoderBatch& batch, float* x) override {
    const size_t H = static_cast<size_t>(cfg_.hidden), S = batch.seq_len, n = batch.batch * S;
    const int hd = cfg_.hidden / cfg_.heads;
    a_.resize(n * H);
    q_.resize(n * H);
    k_.resize(n * H);
    v_.resize(n * H);
    att_.resize(n * H);
    word_.lookup(w, batch.input_ids, n, false, x);
    for (size_t b = 0; b < batch.batch; ++b) {
      pos_.rows(w, 0, S, true, x + b * S * H);
    }
    if (batch.token_type_ids != nullptr) {
      type_.lookup(w, batch.token_type_ids, n, true, x);
    } else {
      const int32_t zero = 0;
      for (size_t i = 0; i < n; ++i) type_.lookup(w, &zero, 1, true, x + i * H);
    }
    emb_ln_.forward(w, x, n, x);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (const Layer& L : layers_) {
      L.q.forward(w, x, n, q_.data());
      L.k.forward(w, x, n, k_.data());
      L.v.forward(w, x, n, v_.data());
      for (size_t b = 0; b < batch.batch; ++b) {
        const size_t off = b * S * H;
        const uint8_t* mask = batch.attention_mask != nullptr ? batch.attention_mask + b * S : nullptr;
        nn::self_attention(&q_[off], &k_[off], &v_[off], S, cfg_.heads, cfg_.heads, hd, scale,
                           /*causal=*/false, mask, &scores_, &att_[off]);
      }
      L.o.forward(w, att_.data(), n, a_.data());
      nn::add_inplace(a_.data(), x, n * H);
      L.ln1.forward(w, a_.data(), n, x);
      L.mlp.forward(w, x, n, a_.data(), &h_, &g_);
      nn::add_inplace(a_.data(), x, n * H);
      L.ln2.forward(w, a_.data(), n, x);
    }
  }

  void mlm_logits(const Weights& w, const float* hidden, size_t n, float* logits) override {
    const size_t H = static_cast<size_t>(cfg_.hidden), V = static_cast<size_t>(cfg_.vocab);
    a_.resize(n * H);
    tdense_.forward(w, hidden, n, a_.data());
    nn::activate(cfg_.act, a_.data(), n * H);
    tln_.forward(w, a_.data(), n, a_.data());
    decoder_.forward(w, a_.data(), n, logits);
    nn::add_bias(logits, w.param_f32(static_cast<size_t>(mlm_bias_), &bias_scratch_), n, V);
  }

 private:
  struct Layer {
    Linear q, k, v, o;
    Norm ln1, ln2;
    nn::Mlp mlp;
  };
  BertConfig cfg_;
  EncoderInfo info_;
  nn::Embedding word_, pos_, type_;
  Norm emb_ln_;
  std::vector<Layer> layers_;
  Linear tdense_, decoder_;
  Norm tln_;
  int mlm_bias_ = -1;
  // Scratch: a (block outputs), q / k / v, att (attention output), h / g (MLP hidden), scores.
  std::vector<float> a_, q_, k_, v_, att_, h_, g_, scores_;
  std::vector<float> bias_scratch_;  // the MLM bias widened, when the parameters are half
};

bool names_mlm_head(const io::JsonValue& root) {
  const io::JsonValue* archs = root.get("architectures");
  if (archs == nullptr || !archs->is_array()) return false;
  for (const io::JsonValue& a : archs->array) {
    if (a.is_string() && (a.string == "BertForMaskedLM" || a.string == "BertForPreTraining")) return true;
  }
  return false;
}

}  // namespace

Status make_bert(const io::JsonValue& root, std::unique_ptr<EncoderArchitecture>* out) {
  using namespace config;
  BertConfig c;
  WQ_RETURN_IF_ERROR(read_int(root, "hidden_size", true, &c.hidden));
  WQ_RETURN_IF_ERROR(read_int(root, "num_hidden_layers", true, &c.layers));
  WQ_RETURN_IF_ERROR(read_int(root, "num_attention_heads", true, &c.heads));
  WQ_RETURN_IF_ERROR(read_int(root, "intermediate_size", true, &c.intermediate));
  WQ_RETURN_IF_ERROR(read_int(root, "vocab_size", true, &c.vocab));
  WQ_RETURN_IF_ERROR(read_int(root, "max_position_embeddings", false, &c.positions));
  WQ_RETURN_IF_ERROR(read_int(root, "type_vocab_size", false, &c.type_vocab));
  WQ_RETURN_IF_ERROR(read_int(root, "pad_token_id", false, &c.pad));
  WQ_RETURN_IF_ERROR(read_float(root, "layer_norm_eps", &c.eps));
  WQ_RETURN_IF_ERROR(read_bool(root, "tie_word_embeddings", &c.tie));
  std::string act = "gelu", pos_type = "absolute";
  WQ_RETURN_IF_ERROR(read_string(root, "hidden_act", &act));
  WQ_RETURN_IF_ERROR(read_string(root, "position_embedding_type", &pos_type));
  if (!nn::parse_activation(act.c_str(), &c.act)) {
    return Status::Error(StatusCode::kUnsupported, "config.json: hidden_act '" + act +
                                                       "' is not supported; supported: gelu, gelu_new, "
                                                       "gelu_pytorch_tanh, relu, silu");
  }
  if (pos_type != "absolute") {
    return Status::Error(StatusCode::kUnsupported, "config.json: position_embedding_type '" + pos_type +
                                                       "' is not supported; supported: absolute");
  }
  for (auto [k, v] : {std::pair<const char*, int>{"hidden_size", c.hidden}, {"num_hidden_layers", c.layers},
                      {"num_attention_heads", c.heads}, {"intermediate_size", c.intermediate},
                      {"vocab_size", c.vocab}, {"max_position_embeddings", c.positions},
                      {"type_vocab_size", c.type_vocab}}) {
    WQ_RETURN_IF_ERROR(positive(k, v));
  }
  if (c.hidden % c.heads != 0) {
    return bad("num_attention_heads (" + std::to_string(c.heads) + ") must divide hidden_size (" +
               std::to_string(c.hidden) + ")");
  }
  if (static_cast<double>(c.vocab) * c.hidden > 2e9 || static_cast<double>(c.intermediate) * c.hidden > 2e9 ||
      static_cast<double>(c.positions) * c.hidden > 2e9) {
    return bad("model dimensions are too large");
  }
  c.mlm = names_mlm_head(root);
  EncoderInfo info;
  info.model_type = "bert";
  info.vocab_size = c.vocab;
  info.hidden_size = c.hidden;
  info.num_layers = c.layers;
  info.num_heads = c.heads;
  info.head_dim = c.hidden / c.heads;
  info.intermediate_size = c.intermediate;
  info.max_position_embeddings = c.positions;
  info.type_vocab_size = c.type_vocab;
  info.pad_token_id = c.pad;
  info.has_mlm_head = c.mlm;
  *out = std::make_unique<Bert>(c, std::move(info));
  return Status::Ok();
}

}  // namespace webquant::models
