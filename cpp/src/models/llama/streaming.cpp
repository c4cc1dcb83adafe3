// LlamaStreamingBuilder (webquant/llama_checkpoint.h): quantizes a float checkpoint shard by shard.
// Memory: the model being built (quantized linears, float32 embedding and norms) plus one float32
// copy of the tensor in hand; the caller holds one shard's bytes at a time.
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/llama/fallback_note.h"
#include "webquant/llama_checkpoint.h"

namespace webquant {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

enum class Kind { kEmbed, kFinalNorm, kInputNorm, kPostNorm, kWeight, kBias };

struct Expected {
  Kind kind;
  size_t index;  // layer for norms, linear slot for weights and biases
  std::vector<int64_t> shape;
  size_t order;  // position in model order (for missing())
  bool seen = false;
};

}  // namespace

struct LlamaStreamingBuilder::State {
  LlamaConfig cfg;
  ModelQuantOptions options;
  LlamaLoadOptions load_options;
  std::vector<LlamaLinearInfo> layout;
  LlamaParts parts;
  std::vector<std::vector<float>> bias;  // per linear slot, until its weight arrives
  std::vector<LayerQuantReport> report;  // per linear slot
  std::unordered_map<std::string, Expected> expected;
  std::vector<std::string> order;  // expected names in model order
  size_t seen = 0;
  std::vector<float> w;  // float32 copy of the weight in hand (reused)
};

LlamaStreamingBuilder::LlamaStreamingBuilder() = default;
LlamaStreamingBuilder::~LlamaStreamingBuilder() = default;

Status LlamaStreamingBuilder::begin(const LlamaConfig& cfg, const ModelQuantOptions& options,
                                    const LlamaLoadOptions& load_options) {
  st_.reset();
  if (cfg.hidden_size <= 0 || cfg.num_hidden_layers <= 0 || cfg.head_dim <= 0 ||
      cfg.vocab_size <= 0 || cfg.intermediate_size <= 0 || cfg.num_key_value_heads <= 0) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "streaming: invalid LlamaConfig (use parse_llama_config)");
  }
  if (load_options.max_context < 0 || load_options.max_context > cfg.max_position_embeddings) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "streaming: max_context must be in [0, max_position_embeddings]");
  }
  auto s = std::make_unique<State>();
  s->cfg = cfg;
  s->options = options;
  s->load_options = load_options;
  s->layout = llama_linear_layout(cfg);
  const size_t L = static_cast<size_t>(cfg.num_hidden_layers);
  const int64_t H = cfg.hidden_size;
  s->parts.input_norms.resize(L);
  s->parts.post_norms.resize(L);
  s->parts.linears.resize(s->layout.size());
  s->bias.resize(s->layout.size());
  s->report.resize(s->layout.size());

  auto expect = [&](const std::string& name, Kind kind, size_t index, std::vector<int64_t> shape) {
    s->expected.emplace(name, Expected{kind, index, std::move(shape), s->order.size()});
    s->order.push_back(name);
  };
  auto expect_linear = [&](size_t i) {
    const LlamaLinearInfo& li = s->layout[i];
    expect(li.name + ".weight", Kind::kWeight, i, {li.out_features, li.in_features});
    if (li.has_bias) expect(li.name + ".bias", Kind::kBias, i, {li.out_features});
  };
  // Model order, as LlamaModel::load looks tensors up.
  expect("model.embed_tokens.weight", Kind::kEmbed, 0, {cfg.vocab_size, H});
  expect("model.norm.weight", Kind::kFinalNorm, 0, {H});
  constexpr size_t kPerLayer = 7;
  for (size_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    expect(p + "input_layernorm.weight", Kind::kInputNorm, l, {H});
    expect(p + "post_attention_layernorm.weight", Kind::kPostNorm, l, {H});
    for (size_t j = 0; j < kPerLayer; ++j) expect_linear(l * kPerLayer + j);
  }
  if (!cfg.tie_word_embeddings) expect_linear(s->layout.size() - 1);
  st_ = std::move(s);
  return Status::Ok();
}

namespace {

// Builds slot i's layer from the float32 weight (and bias, when known), as quantize() would.
Status build_linear(const LlamaLinearInfo& li, const float* w,
                    const std::vector<float>& bias, const ModelQuantOptions& options,
                    std::unique_ptr<LinearLayer>* layer, LayerQuantReport* r) {
  r->name = li.name;
  r->out_features = li.out_features;
  r->in_features = li.in_features;
  const size_t out = static_cast<size_t>(li.out_features), in = static_cast<size_t>(li.in_features);
  // What the float32 layer LlamaModel::load builds would hold.
  r->bytes_before = (out * in + (li.has_bias ? out : 0)) * sizeof(float);
  const float* b = bias.empty() ? nullptr : bias.data();
  LinearQuantSpec spec;
  std::string note;
  if (!resolve_layer_spec(options, li.name, &spec)) {
    spec.scheme = LinearScheme::kF32;
    note = "excluded";
  }
  if (spec.scheme == LinearScheme::kF32) {
    *layer = make_linear_f32(w, li.out_features, li.in_features, b);  // as load() does
    if (!*layer) return Status::Error(StatusCode::kOutOfMemory, li.name + ": allocation failed");
  } else {
    Status st = make_linear_quantized(w, li.out_features, li.in_features, b, spec, layer, &note);
    if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
  }
  r->quantized = (*layer)->scheme() != LinearScheme::kF32;
  r->scheme = (*layer)->describe();
  r->bytes_after = (*layer)->weight_bytes();
  r->note = note;
  return Status::Ok();
}

// Adds a bias that arrived after its layer was built (a later shard).
Status attach_bias(const std::string& name, const std::vector<float>& bias,
                   std::unique_ptr<LinearLayer>* layer, LayerQuantReport* r) {
  LinearLayer& l = **layer;
  std::unique_ptr<LinearLayer> fresh;
  if (l.scheme() == LinearScheme::kF32) {
    std::vector<float> w(static_cast<size_t>(l.out_features) * static_cast<size_t>(l.in_features));
    l.dequantize_weight(w.data());
    fresh = make_linear_f32(w.data(), l.out_features, l.in_features, bias.data());
    if (!fresh) return Status::Error(StatusCode::kOutOfMemory, name + ": allocation failed");
  } else {
    LinearQuantizedData d;
    WQ_RETURN_IF_ERROR(l.export_quantized(&d));
    d.bias = bias;
    Status st = make_linear_from_quantized(d, &fresh);
    if (!st.ok()) return Status::Error(st.code, name + ": " + st.message);
    fresh = llama::note_fallback(std::move(fresh), llama::fallback_of(l.describe()));
  }
  *layer = std::move(fresh);
  r->bytes_after = (*layer)->weight_bytes();
  return Status::Ok();
}

}  // namespace

Status LlamaStreamingBuilder::add_shard(const io::SafetensorsFile& shard) {
  if (!st_) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "streaming: add_shard() needs begin() first (and not after finish())");
  }
  State& s = *st_;
  auto fail = [this](Status st) {
    st_.reset();  // the builder must be begun again
    return st;
  };
  // Two passes: embedding, norms and biases first, so that a layer whose bias sits in the same
  // shard is built once, with its bias.
  for (int pass = 0; pass < 2; ++pass) {
    for (const io::TensorView& t : shard.tensors) {
      auto it = s.expected.find(t.name);
      if (it == s.expected.end()) continue;  // not a tensor of this model
      Expected& e = it->second;
      if ((e.kind == Kind::kWeight) != (pass == 1)) continue;
      if (e.seen) {
        return fail(Status::Error(StatusCode::kInvalidArgument,
                                  "streaming: tensor '" + t.name + "' appears in more than one shard"));
      }
      if (t.shape != e.shape) {
        return fail(Status::Error(StatusCode::kShapeMismatch,
                                  "tensor '" + t.name + "' has shape " + shape_str(t.shape) +
                                      ", expected " + shape_str(e.shape)));
      }
      if (t.dtype != "F32" && t.dtype != "F16" && t.dtype != "BF16") {
        return fail(Status::Error(StatusCode::kUnsupported, "tensor '" + t.name + "' has dtype " +
                                                                t.dtype + "; supported: F32, F16, BF16"));
      }
      std::vector<float>* dst = nullptr;
      switch (e.kind) {
        case Kind::kEmbed: dst = &s.parts.embed; break;
        case Kind::kFinalNorm: dst = &s.parts.final_norm; break;
        case Kind::kInputNorm: dst = &s.parts.input_norms[e.index]; break;
        case Kind::kPostNorm: dst = &s.parts.post_norms[e.index]; break;
        case Kind::kBias: dst = &s.bias[e.index]; break;
        case Kind::kWeight: dst = &s.w; break;
      }
      dst->resize(static_cast<size_t>(t.numel()));
      Status st = io::tensor_to_f32(t, dst->data());
      if (!st.ok()) return fail(st);
      e.seen = true;
      ++s.seen;

      if (e.kind == Kind::kWeight) {
        st = build_linear(s.layout[e.index], s.w.data(), s.bias[e.index], s.options,
                          &s.parts.linears[e.index], &s.report[e.index]);
        if (!st.ok()) return fail(st);
        s.bias[e.index] = std::vector<float>();  // the layer keeps its own copy
      } else if (e.kind == Kind::kBias && s.parts.linears[e.index]) {
        st = attach_bias(s.layout[e.index].name, s.bias[e.index], &s.parts.linears[e.index],
                         &s.report[e.index]);
        if (!st.ok()) return fail(st);
        s.bias[e.index] = std::vector<float>();
      }
    }
  }
  // The float copy of the largest tensor is not needed between shards.
  s.w = std::vector<float>();
  return Status::Ok();
}

std::vector<std::string> LlamaStreamingBuilder::missing() const {
  std::vector<std::string> out;
  if (!st_) return out;
  for (const std::string& name : st_->order) {
    if (!st_->expected.at(name).seen) out.push_back(name);
  }
  return out;
}

size_t LlamaStreamingBuilder::tensors_seen() const { return st_ ? st_->seen : 0; }
size_t LlamaStreamingBuilder::tensors_expected() const { return st_ ? st_->order.size() : 0; }

Status LlamaStreamingBuilder::finish(std::unique_ptr<LlamaModel>* out,
                                     std::vector<LayerQuantReport>* report) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "streaming: out is null");
  if (!st_) {
    return Status::Error(StatusCode::kInvalidArgument, "streaming: finish() needs begin() first");
  }
  State& s = *st_;
  const std::vector<std::string> miss = missing();
  if (!miss.empty()) {
    return Status::Error(StatusCode::kNotFound,
                         "streaming: tensor '" + miss.front() + "' was not in any shard" +
                             (miss.size() > 1 ? " (and " + std::to_string(miss.size() - 1) +
                                                    " more tensors are missing)"
                                              : ""));
  }
  if (s.cfg.tie_word_embeddings) {
    // As quantize() treats a tied head: excluded or f32 -> keep reading the embedding; otherwise
    // an own quantized copy.
    const size_t i = s.layout.size() - 1;
    LayerQuantReport& r = s.report[i];
    r.name = "lm_head";
    r.out_features = s.cfg.vocab_size;
    r.in_features = s.cfg.hidden_size;
    r.bytes_before = 0;
    const std::string before = "f32 (tied to model.embed_tokens)";
    LinearQuantSpec spec;
    if (!resolve_layer_spec(s.options, "lm_head", &spec)) {
      r.scheme = before;
      r.note = "excluded";
    } else if (spec.scheme == LinearScheme::kF32) {
      r.scheme = before;
      r.note = "tied to model.embed_tokens";
    } else {
      std::string note;
      Status st = make_linear_quantized(s.parts.embed.data(), s.cfg.vocab_size, s.cfg.hidden_size,
                                        nullptr, spec, &s.parts.linears[i], &note);
      if (!st.ok()) return Status::Error(st.code, "lm_head: " + st.message);
      note += std::string(note.empty() ? "" : "; ") +
              "tied to model.embed_tokens: own quantized copy (the embedding stays f32)";
      r.quantized = true;
      r.scheme = s.parts.linears[i]->describe();
      r.bytes_after = s.parts.linears[i]->weight_bytes();
      r.note = note;
    }
  }
  Status st = LlamaModel::assemble(s.cfg, std::move(s.parts), out, s.load_options);
  if (!st.ok()) {
    st_.reset();
    return st;
  }
  if (report != nullptr) *report = std::move(s.report);
  st_.reset();  // add_shard() / finish() now ask for begin()
  return Status::Ok();
}

}  // namespace webquant
