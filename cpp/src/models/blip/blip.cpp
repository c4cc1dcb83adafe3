// BlipForConditionalGeneration (transformers modeling_blip.py + modeling_blip_text.py), written in
// the module layer. HF names:
//   vision_model.embeddings: class_embedding [1, 1, Dv], patch_embedding.{weight [Dv, C, P, P],
//     bias [Dv]} (a Conv2d with kernel = stride = P), position_embedding [1, 1 + (S/P)^2, Dv]
//   vision_model.encoder.layers.i (pre-LN):
//     x = x + self_attn.projection(attn(layer_norm1(x)))    qkv = self_attn.qkv [3 Dv, Dv], rows
//                                                           [3][heads][head_dim] (q, k, v)
//     x = x + mlp.fc2(act(mlp.fc1(layer_norm2(x))))
//   vision_model.post_layernorm -> image_embeds [1 + (S/P)^2, Dv]
//   text_decoder.bert.embeddings: LayerNorm(word_embeddings[ids] + position_embeddings[pos])
//   text_decoder.bert.encoder.layer.i (post-LN, BERT):
//     x = attention.output.LayerNorm(attention.output.dense(causal_attn(attention.self.*)) + x)
//     x = crossattention.output.LayerNorm(crossattention.output.dense(attn(q = crossattention.
//         self.query(x), k/v = crossattention.self.{key,value}(image_embeds))) + x)
//     x = output.LayerNorm(output.dense(act(intermediate.dense(x))) + x)
//   text_decoder.cls.predictions: logits = decoder(transform.LayerNorm(act(transform.dense(x))))
//     + bias; decoder tied to text_decoder.bert.embeddings.word_embeddings (text_config.
//     tie_word_embeddings, default true) or its own [vocab, Dt] weight.
// Every Linear has a bias; attention scores are scaled by head_dim^-0.5. The patch embedding is
// computed as a matmul over flattened non-overlapping patches (kernel = stride: the convolution is
// exactly that), kept as a float parameter (0.2% of the weights; not a quantizable Linear).
// encode_image() runs the vision tower once and projects image_embeds through every decoder
// layer's cross-attention key/value; forward() runs text tokens over a self-attention KV cache.
#include <algorithm>
#include <cmath>
#include <string>

#include "models/architectures.h"
#include "models/config_fields.h"
#include "nn/attend_row.h"
#include "nn/blocks.h"

namespace webquant::models {
namespace {

using nn::Linear;
using nn::Norm;

struct BlipVisionConfig {
  int hidden = 768, layers = 12, heads = 12, intermediate = 3072, image_size = 384, patch = 16, channels = 3;
  float eps = 1e-5f;
  nn::Activation act = nn::Activation::kGeluExact;
};

struct BlipTextConfig {
  int vocab = 30524, hidden = 768, layers = 12, heads = 8, intermediate = 3072, positions = 512,
      encoder_hidden = 768, bos = 30522, sep = 102, pad = 0;
  float eps = 1e-12f;
  nn::Activation act = nn::Activation::kGeluExact;
  bool tied = true;
};

struct VisionLayer {
  Norm ln1, ln2;
  Linear qkv, proj;
  nn::Mlp mlp;
};

struct TextLayer {
  Linear q, k, v, o, cq, ck, cv, co;
  Norm ln_self, ln_cross, ln_ff;
  nn::Mlp mlp;
  nn::CrossKv cross_kv;  // over the image tokens, [image tokens, Dt]
};

class Blip final : public Architecture {
 public:
  Blip(const BlipVisionConfig& v, const BlipTextConfig& t, ModelInfo info) : vc_(v), tc_(t), info_(std::move(info)) {}
  const ModelInfo& info() const override { return info_; }
  bool encoder_decoder() const override { return true; }

  void build(VarBuilder& root) override {
    const int Dv = vc_.hidden, P = vc_.patch, G = vc_.image_size / vc_.patch;
    VarBuilder vm = root.pp("vision_model");
    VarBuilder e = vm.pp("embeddings");
    class_emb_ = e.param("class_embedding", {1, 1, Dv}, ParamKind::kEmbedding);
    patch_w_ = e.param("patch_embedding.weight", {Dv, vc_.channels, P, P}, ParamKind::kOther);
    patch_b_ = e.param("patch_embedding.bias", {Dv}, ParamKind::kOther);
    pos_emb_ = e.param("position_embedding", {1, 1 + G * G, Dv}, ParamKind::kEmbedding);
    vlayers_.resize(static_cast<size_t>(vc_.layers));
    for (int l = 0; l < vc_.layers; ++l) {
      VisionLayer& L = vlayers_[static_cast<size_t>(l)];
      VarBuilder x = vm.pp("encoder").pp("layers").pp(l);
      L.qkv.declare(x.pp("self_attn"), "qkv", 3 * Dv, Dv, true);
      L.proj.declare(x.pp("self_attn"), "projection", Dv, Dv, true);
      L.ln1.declare(x, "layer_norm1", nn::NormType::kLayerNorm, Dv, vc_.eps, true);
      L.mlp.up.declare(x.pp("mlp"), "fc1", vc_.intermediate, Dv, true);
      L.mlp.down.declare(x.pp("mlp"), "fc2", Dv, vc_.intermediate, true);
      L.mlp.act = vc_.act;
      L.mlp.hidden = vc_.intermediate;
      L.ln2.declare(x, "layer_norm2", nn::NormType::kLayerNorm, Dv, vc_.eps, true);
    }
    post_ln_.declare(vm, "post_layernorm", nn::NormType::kLayerNorm, Dv, vc_.eps, true);

    const int D = tc_.hidden, E = tc_.encoder_hidden, I = tc_.intermediate, V = tc_.vocab;
    VarBuilder td = root.pp("text_decoder");
    VarBuilder b = td.pp("bert");
    VarBuilder te = b.pp("embeddings");
    word_.declare(te, "word_embeddings", V, D);
    pos_.declare(te, "position_embeddings", tc_.positions, D);
    emb_ln_.declare(te, "LayerNorm", nn::NormType::kLayerNorm, D, tc_.eps, true);
    tlayers_.resize(static_cast<size_t>(tc_.layers));
    attn_.resize(static_cast<size_t>(tc_.layers));
    const int hd = D / tc_.heads;
    for (int l = 0; l < tc_.layers; ++l) {
      TextLayer& L = tlayers_[static_cast<size_t>(l)];
      VarBuilder x = b.pp("encoder").pp("layer").pp(l);
      VarBuilder s = x.pp("attention").pp("self");
      L.q.declare(s, "query", D, D, true);
      L.k.declare(s, "key", D, D, true);
      L.v.declare(s, "value", D, D, true);
      L.o.declare(x.pp("attention").pp("output"), "dense", D, D, true);
      L.ln_self.declare(x.pp("attention").pp("output"), "LayerNorm", nn::NormType::kLayerNorm, D, tc_.eps, true);
      VarBuilder c = x.pp("crossattention").pp("self");
      L.cq.declare(c, "query", D, D, true);
      L.ck.declare(c, "key", D, E, true);
      L.cv.declare(c, "value", D, E, true);
      L.co.declare(x.pp("crossattention").pp("output"), "dense", D, D, true);
      L.ln_cross.declare(x.pp("crossattention").pp("output"), "LayerNorm", nn::NormType::kLayerNorm, D, tc_.eps, true);
      L.mlp.up.declare(x.pp("intermediate"), "dense", I, D, true);
      L.mlp.down.declare(x.pp("output"), "dense", D, I, true);
      L.mlp.act = tc_.act;
      L.mlp.hidden = I;
      L.ln_ff.declare(x.pp("output"), "LayerNorm", nn::NormType::kLayerNorm, D, tc_.eps, true);
      nn::CachedAttention& a = attn_[static_cast<size_t>(l)];
      a.n_heads = a.n_kv_heads = tc_.heads;
      a.head_dim = hd;
      a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
    }
    VarBuilder p = td.pp("cls").pp("predictions");
    tdense_.declare(p.pp("transform"), "dense", D, D, true);
    tln_.declare(p.pp("transform"), "LayerNorm", nn::NormType::kLayerNorm, D, tc_.eps, true);
    head_.index = p.linear("decoder", V, D, false, false,
                           tc_.tied ? "text_decoder.bert.embeddings.word_embeddings.weight" : "", true);
    head_bias_ = p.param("bias", {V}, ParamKind::kOther);
  }

  void reserve_cache(int positions) override {
    for (nn::CachedAttention& a : attn_) a.reserve(positions);
  }
  size_t kv_cache_bytes() const override {
    size_t n = image_.size();
    for (const TextLayer& L : tlayers_) n += L.cross_kv.floats();
    size_t b = n * sizeof(float);
    for (const nn::CachedAttention& a : attn_) b += a.cache_bytes();
    return b;
  }

  void encode_image(const Weights& w, const float* chw) override {
    const int P = vc_.patch, G = vc_.image_size / vc_.patch, C = vc_.channels, S = vc_.image_size;
    const size_t Dv = static_cast<size_t>(vc_.hidden), np = static_cast<size_t>(G) * static_cast<size_t>(G),
                 n = np + 1, K = static_cast<size_t>(C) * static_cast<size_t>(P) * static_cast<size_t>(P);
    // Patches flattened in the conv weight's (c, ky, kx) order, row-major over the grid.
    patches_.resize(np * K);
    for (int gy = 0; gy < G; ++gy) {
      for (int gx = 0; gx < G; ++gx) {
        float* dst = &patches_[(static_cast<size_t>(gy) * static_cast<size_t>(G) + static_cast<size_t>(gx)) * K];
        for (int c = 0; c < C; ++c) {
          for (int ky = 0; ky < P; ++ky) {
            const float* src = chw + (static_cast<size_t>(c) * S + static_cast<size_t>(gy * P + ky)) * S + static_cast<size_t>(gx * P);
            std::copy(src, src + P, dst + (static_cast<size_t>(c) * P + static_cast<size_t>(ky)) * P);
          }
        }
      }
    }
    x_.resize(n * Dv);
    const float* pw = w.param_f32(static_cast<size_t>(patch_w_), &pscratch_);
    nn::gemm_nt_f32(patches_.data(), np, pw, Dv, K, &x_[Dv]);
    const float* pb = w.param_f32(static_cast<size_t>(patch_b_), &bscratch_);
    nn::add_bias(&x_[Dv], pb, np, Dv);
    w.read_param(static_cast<size_t>(class_emb_), 0, Dv, x_.data());
    const float* pos = w.param_f32(static_cast<size_t>(pos_emb_), &pscratch_);
    nn::add_inplace(x_.data(), pos, n * Dv);

    const int H = vc_.heads, hd = vc_.hidden / vc_.heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    a_.resize(n * Dv);
    tmp_.resize(n * Dv);
    qkv_.resize(n * 3 * Dv);
    q_.resize(n * Dv);
    k_.resize(n * Dv);
    v_.resize(n * Dv);
    att_.resize(n * Dv);
    for (const VisionLayer& L : vlayers_) {
      L.ln1.forward(w, x_.data(), n, a_.data());
      L.qkv.forward(w, a_.data(), n, qkv_.data());
      for (size_t i = 0; i < n; ++i) {  // [3][heads][head_dim] -> q, k, v rows
        const float* r = &qkv_[i * 3 * Dv];
        std::copy(r, r + Dv, &q_[i * Dv]);
        std::copy(r + Dv, r + 2 * Dv, &k_[i * Dv]);
        std::copy(r + 2 * Dv, r + 3 * Dv, &v_[i * Dv]);
      }
      nn::self_attention(q_.data(), k_.data(), v_.data(), n, H, H, hd, scale, /*causal=*/false, nullptr,
                         &scores_, att_.data());
      L.proj.forward(w, att_.data(), n, tmp_.data());
      nn::add_inplace(x_.data(), tmp_.data(), n * Dv);
      L.ln2.forward(w, x_.data(), n, a_.data());
      L.mlp.forward(w, a_.data(), n, tmp_.data(), &h_, &g_);
      nn::add_inplace(x_.data(), tmp_.data(), n * Dv);
    }
    image_.resize(n * Dv);
    post_ln_.forward(w, x_.data(), n, image_.data());
    for (TextLayer& L : tlayers_) L.cross_kv.project(w, L.ck, L.cv, image_.data(), n, static_cast<size_t>(tc_.hidden));
  }

  void forward(const Weights& w, const int32_t* tokens, size_t n, int pos, size_t rows, float* logits) override {
    const size_t D = static_cast<size_t>(tc_.hidden), V = static_cast<size_t>(tc_.vocab);
    const int hd = tc_.hidden / tc_.heads;
    x_.resize(n * D);
    a_.resize(n * D);
    tmp_.resize(n * D);
    q_.resize(n * D);
    k_.resize(n * D);
    v_.resize(n * D);
    att_.resize(n * D);
    word_.lookup(w, tokens, n, false, x_.data());
    pos_.rows(w, pos, n, true, x_.data());
    emb_ln_.forward(w, x_.data(), n, x_.data());
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (size_t l = 0; l < tlayers_.size(); ++l) {
      const TextLayer& L = tlayers_[l];
      L.q.forward(w, x_.data(), n, q_.data());
      L.k.forward(w, x_.data(), n, k_.data());
      L.v.forward(w, x_.data(), n, v_.data());
      attn_[l].forward(q_.data(), k_.data(), v_.data(), n, pos, att_.data());
      L.o.forward(w, att_.data(), n, tmp_.data());
      nn::add_inplace(tmp_.data(), x_.data(), n * D);
      L.ln_self.forward(w, tmp_.data(), n, x_.data());
      L.cq.forward(w, x_.data(), n, q_.data());
      L.cross_kv.attend(q_.data(), n, tc_.heads, hd, scale, &scores_, att_.data());
      L.co.forward(w, att_.data(), n, tmp_.data());
      nn::add_inplace(tmp_.data(), x_.data(), n * D);
      L.ln_cross.forward(w, tmp_.data(), n, x_.data());
      L.mlp.forward(w, x_.data(), n, tmp_.data(), &h_, &g_);
      nn::add_inplace(tmp_.data(), x_.data(), n * D);
      L.ln_ff.forward(w, tmp_.data(), n, x_.data());
    }
    const float* last = &x_[(n - rows) * D];
    tdense_.forward(w, last, rows, a_.data());
    nn::activate(tc_.act, a_.data(), rows * D);
    tln_.forward(w, a_.data(), rows, a_.data());
    head_.forward(w, a_.data(), rows, logits);
    const float* hb = w.param_f32(static_cast<size_t>(head_bias_), &bscratch_);
    nn::add_bias(logits, hb, rows, V);
  }

 private:
  BlipVisionConfig vc_;
  BlipTextConfig tc_;
  ModelInfo info_;
  int class_emb_ = -1, patch_w_ = -1, patch_b_ = -1, pos_emb_ = -1, head_bias_ = -1;
  std::vector<VisionLayer> vlayers_;
  Norm post_ln_;
  nn::Embedding word_, pos_;
  Norm emb_ln_, tln_;
  std::vector<TextLayer> tlayers_;
  std::vector<nn::CachedAttention> attn_;
  Linear tdense_, head_;
  std::vector<float> image_;  // image_embeds [image tokens, Dv]
  std::vector<float> patches_, x_, a_, tmp_, qkv_, q_, k_, v_, att_, h_, g_, scores_, pscratch_, bscratch_;
};

// Reads the int `key` of `obj` (absent: *out unchanged) and requires it positive; errors name
// "<section>.<key>".
Status field(const io::JsonValue& obj, const char* section, const char* key, int* out) {
  Status s = config::read_int(obj, key, false, out);
  if (!s.ok()) return Status::Error(s.code, std::string(section) + "." + key + ": " + s.message);
  if (*out <= 0) return config::bad(std::string(section) + "." + key + " must be a positive integer");
  return Status::Ok();
}

Status activation(const io::JsonValue& obj, const char* section, nn::Activation* act) {
  std::string name = "gelu";
  WQ_RETURN_IF_ERROR(config::read_string(obj, "hidden_act", &name));
  if (!nn::parse_activation(name.c_str(), act)) {
    return Status::Error(StatusCode::kUnsupported, std::string("config.json: ") + section + ".hidden_act '" + name +
                                                       "' is not supported; supported: gelu, gelu_new, relu, silu");
  }
  return Status::Ok();
}

}  // namespace

Status make_blip(const io::JsonValue& root, std::unique_ptr<Architecture>* out) {
  using namespace config;
  static const io::JsonValue kEmpty = [] {
    io::JsonValue v;
    v.type = io::JsonValue::Type::kObject;
    return v;
  }();
  const io::JsonValue* vj = root.get("vision_config");
  const io::JsonValue* tj = root.get("text_config");
  if (vj != nullptr && !vj->is_null() && !vj->is_object()) return bad("vision_config must be an object");
  if (tj != nullptr && !tj->is_null() && !tj->is_object()) return bad("text_config must be an object");
  const io::JsonValue& vcj = vj != nullptr && vj->is_object() ? *vj : kEmpty;
  const io::JsonValue& tcj = tj != nullptr && tj->is_object() ? *tj : kEmpty;
  BlipVisionConfig v;
  BlipTextConfig t;
  WQ_RETURN_IF_ERROR(field(vcj, "vision_config", "hidden_size", &v.hidden));
  WQ_RETURN_IF_ERROR(field(vcj, "vision_config", "num_hidden_layers", &v.layers));
  WQ_RETURN_IF_ERROR(field(vcj, "vision_config", "num_attention_heads", &v.heads));
  WQ_RETURN_IF_ERROR(field(vcj, "vision_config", "intermediate_size", &v.intermediate));
  WQ_RETURN_IF_ERROR(field(vcj, "vision_config", "image_size", &v.image_size));
  WQ_RETURN_IF_ERROR(field(vcj, "vision_config", "patch_size", &v.patch));
  WQ_RETURN_IF_ERROR(field(vcj, "vision_config", "num_channels", &v.channels));
  WQ_RETURN_IF_ERROR(read_float(vcj, "layer_norm_eps", &v.eps));
  WQ_RETURN_IF_ERROR(activation(vcj, "vision_config", &v.act));
  WQ_RETURN_IF_ERROR(field(tcj, "text_config", "vocab_size", &t.vocab));
  WQ_RETURN_IF_ERROR(field(tcj, "text_config", "hidden_size", &t.hidden));
  WQ_RETURN_IF_ERROR(field(tcj, "text_config", "num_hidden_layers", &t.layers));
  WQ_RETURN_IF_ERROR(field(tcj, "text_config", "num_attention_heads", &t.heads));
  WQ_RETURN_IF_ERROR(field(tcj, "text_config", "intermediate_size", &t.intermediate));
  WQ_RETURN_IF_ERROR(field(tcj, "text_config", "max_position_embeddings", &t.positions));
  WQ_RETURN_IF_ERROR(field(tcj, "text_config", "encoder_hidden_size", &t.encoder_hidden));
  WQ_RETURN_IF_ERROR(read_int(tcj, "bos_token_id", false, &t.bos));
  WQ_RETURN_IF_ERROR(read_int(tcj, "sep_token_id", false, &t.sep));
  WQ_RETURN_IF_ERROR(read_int(tcj, "pad_token_id", false, &t.pad));
  WQ_RETURN_IF_ERROR(read_float(tcj, "layer_norm_eps", &t.eps));
  WQ_RETURN_IF_ERROR(read_bool(tcj, "tie_word_embeddings", &t.tied));
  WQ_RETURN_IF_ERROR(activation(tcj, "text_config", &t.act));
  if (v.hidden % v.heads != 0) return bad("vision_config.hidden_size must be a multiple of num_attention_heads");
  if (t.hidden % t.heads != 0) return bad("text_config.hidden_size must be a multiple of num_attention_heads");
  if (v.image_size % v.patch != 0) return bad("vision_config.image_size must be a multiple of patch_size");
  if (t.encoder_hidden != v.hidden) {
    return bad("text_config.encoder_hidden_size (" + std::to_string(t.encoder_hidden) +
               ") must equal vision_config.hidden_size (" + std::to_string(v.hidden) + ")");
  }
  for (auto [k, id] : {std::pair<const char*, int>{"bos_token_id", t.bos}, {"sep_token_id", t.sep}}) {
    if (id < 0 || id >= t.vocab) return bad(std::string("text_config.") + k + " must be a token id in [0, vocab_size)");
  }
  const double G = static_cast<double>(v.image_size / v.patch);
  if (static_cast<double>(t.vocab) * t.hidden > 2e9 || static_cast<double>(t.intermediate) * t.hidden > 2e9 ||
      static_cast<double>(v.intermediate) * v.hidden > 2e9 || G * G * v.hidden > 2e9 || t.positions > (1 << 20) ||
      v.image_size > 16384 || static_cast<double>(v.channels) * v.patch * v.patch * v.hidden > 2e9) {
    return bad("model dimensions are too large");
  }
  ModelInfo info;
  info.model_type = "blip";
  info.vocab_size = t.vocab;
  info.hidden_size = t.hidden;
  info.num_layers = t.layers;
  info.num_heads = info.num_kv_heads = t.heads;
  info.head_dim = t.hidden / t.heads;
  info.max_position_embeddings = t.positions;
  info.tie_word_embeddings = t.tied;
  info.bos_token_id = t.bos;
  info.eos_token_ids = {t.sep};  // BlipForConditionalGeneration.generate stops at [SEP]
  info.decoder_start_token_id = t.bos;
  info.image_size = v.image_size;
  info.num_channels = v.channels;
  *out = std::make_unique<Blip>(v, t, std::move(info));
  return Status::Ok();
}

}  // namespace webquant::models
