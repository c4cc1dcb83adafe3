// T5ForConditionalGeneration (transformers modeling_t5.py), written in the module layer. HF names:
//   shared [vocab, d_model]: the token embedding of both stacks (encoder/decoder.embed_tokens)
//   encoder.block.i.layer.0: layer_norm, SelfAttention.{q,k,v,o} (+ relative_attention_bias in
//                            block 0 only, [num_buckets, num_heads], shared by every block)
//   encoder.block.i.layer.1: layer_norm, DenseReluDense.{wi_0, wi_1, wo} (gated) or {wi, wo}
//   encoder.final_layer_norm
//   decoder.block.i.layer.0: as the encoder's (causal buckets), layer.1: layer_norm,
//                            EncDecAttention.{q,k,v,o} (no position bias), layer.2: the MLP
//   decoder.final_layer_norm, lm_head (tied to shared when tie_word_embeddings; then the decoder
//   output is first multiplied by d_model**-0.5).
// Norms are T5LayerNorm (RMS, no bias, no mean subtraction); attention scores are q.k + bias with
// no 1/sqrt(d_kv) scaling; q/k/v are [num_heads * d_kv, d_model], o is [d_model, num_heads * d_kv].
// encode() runs the encoder once and projects its output through every decoder layer's
// EncDecAttention.k/v; forward() runs decoder tokens over a self-attention KV cache.
#include <algorithm>
#include <cmath>
#include <string>

#include "models/architectures.h"
#include "models/config_fields.h"
#include "models/t5/t5_attention.h"
#include "nn/attend_row.h"
#include "nn/blocks.h"

namespace webquant::models {
namespace {

using nn::Linear;
using nn::Norm;

struct T5Config {
  int vocab = 32128, d_model = 512, d_kv = 64, d_ff = 2048, layers = 6, dec_layers = 0, heads = 8;
  int buckets = 32, max_distance = 128, n_positions = 512;
  float eps = 1e-6f;
  bool gated = false, tied = true;
  nn::Activation act = nn::Activation::kRelu;
};

struct Attention {
  Linear q, k, v, o;
  void declare(VarBuilder vb, int d_model, int inner) {
    q.declare(vb, "q", inner, d_model, false);
    k.declare(vb, "k", inner, d_model, false);
    v.declare(vb, "v", inner, d_model, false);
    o.declare(vb, "o", d_model, inner, false);
  }
};

struct Block {
  Norm ln_self, ln_cross, ln_ff;
  Attention self, cross;  // cross: decoder only
  nn::Mlp mlp;
  // Decoder: self-attention cache rows [pos][inner]; cross-attention K/V of the encoder output.
  std::vector<float> k_cache, v_cache;
  nn::CrossKv cross_kv;
};

class T5 final : public Architecture {
 public:
  T5(const T5Config& c, ModelInfo info) : cfg_(c), info_(std::move(info)) {}
  const ModelInfo& info() const override { return info_; }
  bool encoder_decoder() const override { return true; }

  void build(VarBuilder& root) override {
    const int D = cfg_.d_model;
    shared_.declare(root, "shared", cfg_.vocab, D);
    declare_stack(root.pp("encoder"), cfg_.layers, false, &enc_, &enc_bias_, &enc_norm_);
    declare_stack(root.pp("decoder"), cfg_.dec_layers, true, &dec_, &dec_bias_, &dec_norm_);
    head_.index = root.linear("lm_head", cfg_.vocab, D, false, false, cfg_.tied ? "shared.weight" : "", true);
  }

  void reserve_cache(int positions) override {
    const size_t inner = static_cast<size_t>(cfg_.heads * cfg_.d_kv);
    for (Block& b : dec_) {
      b.k_cache.resize(static_cast<size_t>(positions) * inner);
      b.v_cache.resize(static_cast<size_t>(positions) * inner);
    }
  }
  size_t kv_cache_bytes() const override {
    size_t n = enc_out_.size();
    for (const Block& b : dec_) n += b.k_cache.size() + b.v_cache.size() + b.cross_kv.floats();
    return n * sizeof(float);
  }

  void encode(const Weights& w, const int32_t* ids, size_t n) override {
    const size_t D = static_cast<size_t>(cfg_.d_model), inner = static_cast<size_t>(cfg_.heads * cfg_.d_kv);
    const int H = cfg_.heads;
    scratch(n);
    shared_.lookup(w, ids, n, false, x_.data());
    // Bias of query i over key j depends on j - i only: one row per relative position.
    const float* rel = w.param_f32(static_cast<size_t>(enc_bias_), &rel_scratch_);
    const int span = 2 * static_cast<int>(n) - 1;
    table_.assign(static_cast<size_t>(span) * static_cast<size_t>(H), 0.0f);
    for (int r = 0; r < span; ++r) {
      const int bucket = t5::relative_position_bucket(r - (static_cast<int>(n) - 1), true, cfg_.buckets, cfg_.max_distance);
      for (int h = 0; h < H; ++h) table_[static_cast<size_t>(h * span + r)] = rel[bucket * H + h];
    }
    bias_.resize(static_cast<size_t>(H) * n);
    for (const Block& b : enc_) {
      b.ln_self.forward(w, x_.data(), n, a_.data());
      b.self.q.forward(w, a_.data(), n, q_.data());
      b.self.k.forward(w, a_.data(), n, k_.data());
      b.self.v.forward(w, a_.data(), n, v_.data());
      for (size_t i = 0; i < n; ++i) {
        for (int h = 0; h < H; ++h) {  // key j: relative position j - i -> table column j - i + n - 1
          const float* src = &table_[static_cast<size_t>(h * span) + (n - 1 - i)];
          std::copy(src, src + n, &bias_[static_cast<size_t>(h) * n]);
        }
        nn::attend_row(&q_[i * inner], k_.data(), v_.data(), n, inner, H, cfg_.d_kv, 1.0f, bias_.data(), n,
                       &scores_, &att_[i * inner]);
      }
      b.self.o.forward(w, att_.data(), n, tmp_.data());
      nn::add_inplace(x_.data(), tmp_.data(), n * D);
      b.ln_ff.forward(w, x_.data(), n, a_.data());
      b.mlp.forward(w, a_.data(), n, tmp_.data(), &h_, &g_);
      nn::add_inplace(x_.data(), tmp_.data(), n * D);
    }
    enc_out_.resize(n * D);
    enc_norm_.forward(w, x_.data(), n, enc_out_.data());
    for (Block& b : dec_) b.cross_kv.project(w, b.cross.k, b.cross.v, enc_out_.data(), n, inner);
  }

  void forward(const Weights& w, const int32_t* tokens, size_t n, int pos, size_t rows,
               float* logits) override {
    const size_t D = static_cast<size_t>(cfg_.d_model), inner = static_cast<size_t>(cfg_.heads * cfg_.d_kv);
    const int H = cfg_.heads;
    scratch(n);
    shared_.lookup(w, tokens, n, false, x_.data());
    // Query at position p sees keys 0..p; the causal bucket depends on p - j only.
    const size_t last = static_cast<size_t>(pos) + n;
    const float* rel = w.param_f32(static_cast<size_t>(dec_bias_), &rel_scratch_);
    table_.resize(static_cast<size_t>(H) * last);
    for (size_t d = 0; d < last; ++d) {  // d = p - j
      const int bucket = t5::relative_position_bucket(-static_cast<int>(d), false, cfg_.buckets, cfg_.max_distance);
      for (int h = 0; h < H; ++h) table_[static_cast<size_t>(h) * last + d] = rel[bucket * H + h];
    }
    bias_.resize(static_cast<size_t>(H) * last);
    for (Block& b : dec_) {
      b.ln_self.forward(w, x_.data(), n, a_.data());
      b.self.q.forward(w, a_.data(), n, q_.data());
      b.self.k.forward(w, a_.data(), n, &b.k_cache[static_cast<size_t>(pos) * inner]);
      b.self.v.forward(w, a_.data(), n, &b.v_cache[static_cast<size_t>(pos) * inner]);
      for (size_t i = 0; i < n; ++i) {
        const size_t p = static_cast<size_t>(pos) + i, nk = p + 1;
        for (int h = 0; h < H; ++h) {
          const float* t = &table_[static_cast<size_t>(h) * last];
          float* dst = &bias_[static_cast<size_t>(h) * nk];
          for (size_t j = 0; j < nk; ++j) dst[j] = t[p - j];
        }
        nn::attend_row(&q_[i * inner], b.k_cache.data(), b.v_cache.data(), nk, inner, H, cfg_.d_kv, 1.0f,
                       bias_.data(), nk, &scores_, &att_[i * inner]);
      }
      b.self.o.forward(w, att_.data(), n, tmp_.data());
      nn::add_inplace(x_.data(), tmp_.data(), n * D);
      b.ln_cross.forward(w, x_.data(), n, a_.data());
      b.cross.q.forward(w, a_.data(), n, q_.data());
      b.cross_kv.attend(q_.data(), n, H, cfg_.d_kv, 1.0f, &scores_, att_.data());
      b.cross.o.forward(w, att_.data(), n, tmp_.data());
      nn::add_inplace(x_.data(), tmp_.data(), n * D);
      b.ln_ff.forward(w, x_.data(), n, a_.data());
      b.mlp.forward(w, a_.data(), n, tmp_.data(), &h_, &g_);
      nn::add_inplace(x_.data(), tmp_.data(), n * D);
    }
    dec_norm_.forward(w, &x_[(n - rows) * D], rows, a_.data());
    if (cfg_.tied) {  // rescale before the tied head (mesh tensorflow)
      const float s = static_cast<float>(1.0 / std::sqrt(static_cast<double>(cfg_.d_model)));
      for (size_t i = 0; i < rows * D; ++i) a_[i] *= s;
    }
    head_.forward(w, a_.data(), rows, logits);
  }

 private:
  void declare_stack(VarBuilder s, int layers, bool decoder, std::vector<Block>* blocks, int* bias, Norm* final_norm) {
    const int D = cfg_.d_model, inner = cfg_.heads * cfg_.d_kv;
    blocks->resize(static_cast<size_t>(layers));
    for (int l = 0; l < layers; ++l) {
      Block& b = (*blocks)[static_cast<size_t>(l)];
      VarBuilder layer = s.pp("block").pp(l).pp("layer");
      VarBuilder l0 = layer.pp(0);
      b.ln_self.declare(l0, "layer_norm", nn::NormType::kRmsNorm, D, cfg_.eps, false);
      b.self.declare(l0.pp("SelfAttention"), D, inner);
      if (l == 0) {
        *bias = l0.pp("SelfAttention").param("relative_attention_bias.weight", {cfg_.buckets, cfg_.heads},
                                              ParamKind::kEmbedding);
      }
      int ff = 1;
      if (decoder) {
        VarBuilder l1 = layer.pp(1);
        b.ln_cross.declare(l1, "layer_norm", nn::NormType::kRmsNorm, D, cfg_.eps, false);
        b.cross.declare(l1.pp("EncDecAttention"), D, inner);
        ff = 2;
      }
      VarBuilder lf = layer.pp(ff);
      b.ln_ff.declare(lf, "layer_norm", nn::NormType::kRmsNorm, D, cfg_.eps, false);
      VarBuilder drd = lf.pp("DenseReluDense");
      if (cfg_.gated) {  // act(wi_0(x)) * wi_1(x)
        b.mlp.gate.declare(drd, "wi_0", cfg_.d_ff, D, false);
        b.mlp.up.declare(drd, "wi_1", cfg_.d_ff, D, false);
      } else {
        b.mlp.up.declare(drd, "wi", cfg_.d_ff, D, false);
      }
      b.mlp.down.declare(drd, "wo", D, cfg_.d_ff, false);
      b.mlp.act = cfg_.act;
      b.mlp.hidden = cfg_.d_ff;
    }
    final_norm->declare(s, "final_layer_norm", nn::NormType::kRmsNorm, D, cfg_.eps, false);
  }

  void scratch(size_t n) {
    const size_t D = static_cast<size_t>(cfg_.d_model), inner = static_cast<size_t>(cfg_.heads * cfg_.d_kv);
    x_.resize(n * D);
    a_.resize(n * D);
    tmp_.resize(n * D);
    q_.resize(n * inner);
    k_.resize(n * inner);
    v_.resize(n * inner);
    att_.resize(n * inner);
  }

  T5Config cfg_;
  ModelInfo info_;
  nn::Embedding shared_;
  std::vector<Block> enc_, dec_;
  int enc_bias_ = -1, dec_bias_ = -1;
  Norm enc_norm_, dec_norm_;
  Linear head_;
  std::vector<float> enc_out_;
  std::vector<float> x_, a_, tmp_, q_, k_, v_, att_, h_, g_, scores_, table_, bias_;
  std::vector<float> rel_scratch_;  // the relative attention bias widened, when the model is half
};

}  // namespace

Status make_t5(const io::JsonValue& root, std::unique_ptr<Architecture>* out) {
  using namespace config;
  T5Config c;
  WQ_RETURN_IF_ERROR(read_int(root, "vocab_size", false, &c.vocab));
  WQ_RETURN_IF_ERROR(read_int(root, "d_model", false, &c.d_model));
  WQ_RETURN_IF_ERROR(read_int(root, "d_kv", false, &c.d_kv));
  WQ_RETURN_IF_ERROR(read_int(root, "d_ff", false, &c.d_ff));
  WQ_RETURN_IF_ERROR(read_int(root, "num_layers", false, &c.layers));
  c.dec_layers = c.layers;
  WQ_RETURN_IF_ERROR(read_int(root, "num_decoder_layers", false, &c.dec_layers));
  WQ_RETURN_IF_ERROR(read_int(root, "num_heads", false, &c.heads));
  WQ_RETURN_IF_ERROR(read_int(root, "relative_attention_num_buckets", false, &c.buckets));
  WQ_RETURN_IF_ERROR(read_int(root, "relative_attention_max_distance", false, &c.max_distance));
  WQ_RETURN_IF_ERROR(read_int(root, "n_positions", false, &c.n_positions));
  WQ_RETURN_IF_ERROR(read_float(root, "layer_norm_epsilon", &c.eps));
  WQ_RETURN_IF_ERROR(read_bool(root, "tie_word_embeddings", &c.tied));
  // T5Config: "gated-<act>" or "<act>"; "gated-gelu" means gelu_new (v1.1 / flan).
  std::string ff = "relu";
  WQ_RETURN_IF_ERROR(read_string(root, "feed_forward_proj", &ff));
  std::string act = ff;
  const size_t dash = ff.find('-');
  if (dash != std::string::npos) {
    if (ff.substr(0, dash) != "gated" || ff.find('-', dash + 1) != std::string::npos) {
      return bad("feed_forward_proj '" + ff + "' is not '<act>' or 'gated-<act>'");
    }
    c.gated = true;
    act = ff == "gated-gelu" ? "gelu_new" : ff.substr(dash + 1);
  }
  if (!nn::parse_activation(act.c_str(), &c.act)) {
    return Status::Error(StatusCode::kUnsupported, "config.json: feed_forward_proj '" + ff +
                                                       "' is not supported; supported: relu, gated-gelu, gelu, gelu_new, silu and their gated- forms");
  }
  for (auto [k, v] : {std::pair<const char*, int>{"vocab_size", c.vocab}, {"d_model", c.d_model}, {"d_kv", c.d_kv},
                      {"d_ff", c.d_ff}, {"num_layers", c.layers}, {"num_decoder_layers", c.dec_layers},
                      {"num_heads", c.heads}, {"relative_attention_num_buckets", c.buckets},
                      {"relative_attention_max_distance", c.max_distance}, {"n_positions", c.n_positions}}) {
    WQ_RETURN_IF_ERROR(positive(k, v));
  }
  if (c.buckets < 4 || c.buckets % 2 != 0) return bad("relative_attention_num_buckets must be even and >= 4");
  const double inner = static_cast<double>(c.heads) * c.d_kv;
  if (static_cast<double>(c.vocab) * c.d_model > 2e9 || static_cast<double>(c.d_ff) * c.d_model > 2e9 ||
      inner * c.d_model > 2e9 || c.n_positions > (1 << 20)) {
    return bad("model dimensions are too large");
  }
  ModelInfo info;
  info.model_type = "t5";
  info.vocab_size = c.vocab;
  info.hidden_size = c.d_model;
  info.num_layers = c.layers;
  info.num_decoder_layers = c.dec_layers;
  info.num_heads = info.num_kv_heads = c.heads;
  info.head_dim = c.d_kv;
  info.max_position_embeddings = c.n_positions;
  info.tie_word_embeddings = c.tied;
  info.is_encoder_decoder = true;
  info.eos_token_ids = {1};  // T5Config default
  WQ_RETURN_IF_ERROR(read_special_ids(root, &info.bos_token_id, &info.eos_token_ids));
  int pad = 0;
  WQ_RETURN_IF_ERROR(read_int(root, "pad_token_id", false, &pad));
  info.decoder_start_token_id = pad;
  WQ_RETURN_IF_ERROR(read_int(root, "decoder_start_token_id", false, &info.decoder_start_token_id));
  if (info.decoder_start_token_id < 0 || info.decoder_start_token_id >= c.vocab) {
    return bad("decoder_start_token_id must be a token id in [0, vocab_size)");
  }
  *out = std::make_unique<T5>(c, std::move(info));
  return Status::Ok();
}

}  // namespace webquant::models
