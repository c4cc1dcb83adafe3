// LlamaModel: loading from HF safetensors, the forward pass with KV cache, quantization by layer
// name, memory accounting. Design notes in webquant/llama.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "models/llama/llama_ops.h"
#include "webquant/llama.h"

namespace webquant {
namespace {

// Linear slots per decoder layer, in HF module order.
constexpr int kPerLayer = 7;
enum Proj { kQ = 0, kK, kV, kO, kGate, kUp, kDown };
const char* const kProjNames[kPerLayer] = {"self_attn.q_proj", "self_attn.k_proj",
                                           "self_attn.v_proj", "self_attn.o_proj",
                                           "mlp.gate_proj",    "mlp.up_proj",
                                           "mlp.down_proj"};

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

}  // namespace

bool module_name_matches(std::string_view pattern, std::string_view name) {
  // Iterative glob with backtracking to the last '*'.
  size_t p = 0, n = 0, star = std::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (p < pattern.size() && pattern[p] == name[n]) {
      ++p;
      ++n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

struct LlamaModel::Impl {
  struct LinearSlot {
    std::string name;
    int out = 0, in = 0;
    std::unique_ptr<LinearLayer> layer;  // null only for a tied, unquantized lm_head
    std::vector<float> bias;             // kept to rebuild the layer when quantizing
  };
  struct LayerNorms {
    std::vector<float> input, post;
  };

  std::vector<float> embed;  // [vocab, hidden]
  std::vector<LayerNorms> norms;
  std::vector<float> final_norm;
  std::vector<LinearSlot> linears;  // kPerLayer per layer, then lm_head
  std::vector<float> inv_freq;

  // KV cache: per layer [cap][kv_heads][head_dim] floats.
  std::vector<std::vector<float>> k_cache, v_cache;
  int cache_cap = 0;

  // Scratch, grown to the largest batch seen.
  std::vector<float> x, xn, q, k, v, att, tmp, gate, up, cs, scores;

  LinearSlot& slot(int layer, Proj p) { return linears[static_cast<size_t>(layer * kPerLayer + p)]; }
  LinearSlot& lm_head() { return linears.back(); }
};

LlamaModel::~LlamaModel() = default;

namespace {

// Finds `name` in the shards, checks its shape and converts it to float32.
Status load_tensor(const std::vector<const io::SafetensorsFile*>& shards, const std::string& name,
                   const std::vector<int64_t>& shape, std::vector<float>* out) {
  const io::TensorView* t = nullptr;
  for (const io::SafetensorsFile* f : shards) {
    if (f != nullptr && (t = f->find(name)) != nullptr) break;
  }
  if (t == nullptr) {
    return Status::Error(StatusCode::kNotFound, "tensor '" + name + "' not found in the checkpoint");
  }
  if (t->shape != shape) {
    return Status::Error(StatusCode::kShapeMismatch, "tensor '" + name + "' has shape " +
                                                         shape_str(t->shape) + ", expected " +
                                                         shape_str(shape));
  }
  if (t->dtype != "F32" && t->dtype != "F16" && t->dtype != "BF16") {
    return Status::Error(StatusCode::kUnsupported, "tensor '" + name + "' has dtype " + t->dtype +
                                                       "; supported: F32, F16, BF16");
  }
  out->resize(static_cast<size_t>(t->numel()));
  return io::tensor_to_f32(*t, out->data());
}


}  // namespace

std::vector<LlamaLinearInfo> llama_linear_layout(const LlamaConfig& cfg) {
  std::vector<LlamaLinearInfo> out;
  const int H = cfg.hidden_size, I = cfg.intermediate_size, Q = cfg.q_dim(), KV = cfg.kv_dim();
  const int shapes[kPerLayer][2] = {{Q, H}, {KV, H}, {KV, H}, {H, Q}, {I, H}, {I, H}, {H, I}};
  const bool bias[kPerLayer] = {cfg.qkv_bias, cfg.qkv_bias, cfg.qkv_bias, cfg.o_bias,
                                cfg.mlp_bias, cfg.mlp_bias, cfg.mlp_bias};
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    for (int j = 0; j < kPerLayer; ++j) {
      out.push_back({p + kProjNames[j], shapes[j][0], shapes[j][1], bias[j]});
    }
  }
  out.push_back({"lm_head", cfg.vocab_size, cfg.hidden_size, false});
  return out;
}

bool resolve_layer_spec(const ModelQuantOptions& options, std::string_view name,
                        LinearQuantSpec* spec) {
  for (const std::string& pat : options.exclude) {
    if (module_name_matches(pat, name)) return false;
  }
  *spec = options.default_spec;
  for (const auto& ov : options.overrides) {
    if (module_name_matches(ov.first, name)) {
      *spec = ov.second;
      break;
    }
  }
  return true;
}

namespace {

Status check_config_and_options(const LlamaConfig& cfg, const LlamaLoadOptions& options,
                                const char* what) {
  if (cfg.hidden_size <= 0 || cfg.num_hidden_layers <= 0 || cfg.head_dim <= 0 ||
      cfg.num_key_value_heads <= 0 || cfg.num_attention_heads % cfg.num_key_value_heads != 0 ||
      cfg.vocab_size <= 0 || cfg.intermediate_size <= 0 || cfg.max_position_embeddings <= 0) {
    return Status::Error(StatusCode::kInvalidArgument,
                         std::string(what) + ": invalid LlamaConfig (use parse_llama_config)");
  }
  if (options.max_context < 0 || options.max_context > cfg.max_position_embeddings) {
    return Status::Error(StatusCode::kInvalidArgument,
                         std::string(what) + ": max_context " + std::to_string(options.max_context) +
                             " must be in [0, max_position_embeddings = " +
                             std::to_string(cfg.max_position_embeddings) + "]");
  }
  return Status::Ok();
}

}  // namespace

Status LlamaModel::load(const LlamaConfig& cfg, const std::vector<const io::SafetensorsFile*>& shards,
                        std::unique_ptr<LlamaModel>* out, const LlamaLoadOptions& options) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "load: out is null");
  WQ_RETURN_IF_ERROR(check_config_and_options(cfg, options, "load"));
  const int64_t H = cfg.hidden_size, V = cfg.vocab_size;

  LlamaParts parts;
  WQ_RETURN_IF_ERROR(load_tensor(shards, "model.embed_tokens.weight", {V, H}, &parts.embed));
  WQ_RETURN_IF_ERROR(load_tensor(shards, "model.norm.weight", {H}, &parts.final_norm));
  parts.input_norms.resize(static_cast<size_t>(cfg.num_hidden_layers));
  parts.post_norms.resize(static_cast<size_t>(cfg.num_hidden_layers));
  // Tensor lookup order as before: per layer the two norms, then its seven linears.
  const std::vector<LlamaLinearInfo> layout = llama_linear_layout(cfg);
  std::vector<float> w, b;
  size_t next = 0;
  auto add_linear = [&](const LlamaLinearInfo& li) -> Status {
    WQ_RETURN_IF_ERROR(load_tensor(shards, li.name + ".weight", {li.out_features, li.in_features}, &w));
    if (li.has_bias) WQ_RETURN_IF_ERROR(load_tensor(shards, li.name + ".bias", {li.out_features}, &b));
    auto layer = make_linear_f32(w.data(), li.out_features, li.in_features,
                                 li.has_bias ? b.data() : nullptr);
    if (!layer) {
      return Status::Error(StatusCode::kOutOfMemory, "could not build linear layer " + li.name);
    }
    parts.linears.push_back(std::move(layer));
    return Status::Ok();
  };
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    WQ_RETURN_IF_ERROR(load_tensor(shards, p + "input_layernorm.weight", {H}, &parts.input_norms[l]));
    WQ_RETURN_IF_ERROR(
        load_tensor(shards, p + "post_attention_layernorm.weight", {H}, &parts.post_norms[l]));
    for (int j = 0; j < kPerLayer; ++j) WQ_RETURN_IF_ERROR(add_linear(layout[next++]));
  }
  if (cfg.tie_word_embeddings) {
    parts.linears.push_back(nullptr);  // shares the embedding until quantized
  } else {
    WQ_RETURN_IF_ERROR(add_linear(layout.back()));
  }
  return assemble(cfg, std::move(parts), out, options);
}

Status LlamaModel::assemble(const LlamaConfig& cfg, LlamaParts parts, std::unique_ptr<LlamaModel>* out,
                            const LlamaLoadOptions& options) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "assemble: out is null");
  WQ_RETURN_IF_ERROR(check_config_and_options(cfg, options, "assemble"));
  const size_t H = static_cast<size_t>(cfg.hidden_size), V = static_cast<size_t>(cfg.vocab_size);
  const size_t L = static_cast<size_t>(cfg.num_hidden_layers);
  auto size_error = [](const std::string& what, size_t got, size_t want) {
    return Status::Error(StatusCode::kShapeMismatch, "assemble: " + what + " has " +
                                                         std::to_string(got) + " values, expected " +
                                                         std::to_string(want));
  };
  if (parts.embed.size() != V * H) return size_error("model.embed_tokens.weight", parts.embed.size(), V * H);
  if (parts.final_norm.size() != H) return size_error("model.norm.weight", parts.final_norm.size(), H);
  if (parts.input_norms.size() != L || parts.post_norms.size() != L) {
    return Status::Error(StatusCode::kShapeMismatch,
                         "assemble: expected norms for " + std::to_string(L) + " layers");
  }
  for (size_t l = 0; l < L; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    if (parts.input_norms[l].size() != H) return size_error(p + "input_layernorm.weight", parts.input_norms[l].size(), H);
    if (parts.post_norms[l].size() != H) return size_error(p + "post_attention_layernorm.weight", parts.post_norms[l].size(), H);
  }
  const std::vector<LlamaLinearInfo> layout = llama_linear_layout(cfg);
  if (parts.linears.size() != layout.size()) {
    return Status::Error(StatusCode::kShapeMismatch,
                         "assemble: expected " + std::to_string(layout.size()) + " linear layers, got " +
                             std::to_string(parts.linears.size()));
  }
  for (size_t i = 0; i < layout.size(); ++i) {
    const LlamaLinearInfo& li = layout[i];
    const LinearLayer* layer = parts.linears[i].get();
    if (layer == nullptr) {
      if (li.name == "lm_head" && cfg.tie_word_embeddings) continue;
      return Status::Error(StatusCode::kInvalidArgument, "assemble: linear layer " + li.name + " is missing");
    }
    if (layer->out_features != li.out_features || layer->in_features != li.in_features) {
      return Status::Error(StatusCode::kShapeMismatch,
                           "assemble: " + li.name + " is [" + std::to_string(layer->out_features) +
                               ", " + std::to_string(layer->in_features) + "], expected [" +
                               std::to_string(li.out_features) + ", " +
                               std::to_string(li.in_features) + "]");
    }
    if (layer->bias().empty() == li.has_bias) {
      return Status::Error(StatusCode::kInvalidArgument,
                           "assemble: " + li.name + (li.has_bias ? " needs a bias (the config asks for one)"
                                                                 : " has a bias the config does not expect"));
    }
  }

  std::unique_ptr<LlamaModel> m(new LlamaModel());
  m->cfg_ = cfg;
  m->max_ctx_ = options.max_context ? options.max_context : cfg.max_position_embeddings;
  m->impl_ = std::make_unique<Impl>();
  Impl& im = *m->impl_;
  im.embed = std::move(parts.embed);
  im.final_norm = std::move(parts.final_norm);
  im.norms.resize(L);
  for (size_t l = 0; l < L; ++l) {
    im.norms[l].input = std::move(parts.input_norms[l]);
    im.norms[l].post = std::move(parts.post_norms[l]);
  }
  for (size_t i = 0; i < layout.size(); ++i) {
    Impl::LinearSlot s;
    s.name = layout[i].name;
    s.out = layout[i].out_features;
    s.in = layout[i].in_features;
    s.layer = std::move(parts.linears[i]);
    if (s.layer) s.bias = s.layer->bias();
    im.linears.push_back(std::move(s));
  }

  llama::RopeParams rp{cfg.head_dim,
                       cfg.rope_theta,
                       cfg.rope_type == "linear" ? 1 : cfg.rope_type == "llama3" ? 2 : 0,
                       cfg.rope_factor,
                       cfg.rope_low_freq_factor,
                       cfg.rope_high_freq_factor,
                       cfg.rope_original_max_position_embeddings};
  im.inv_freq = llama::rope_inv_freq(rp);
  im.k_cache.resize(L);
  im.v_cache.resize(L);
  *out = std::move(m);
  return Status::Ok();
}

Status LlamaModel::forward(const int32_t* tokens, size_t n, bool all_logits,
                           std::vector<float>* logits) {
  if (n == 0 || tokens == nullptr) {
    return Status::Error(StatusCode::kInvalidArgument, "forward: no tokens given");
  }
  if (logits == nullptr) return Status::Error(StatusCode::kInvalidArgument, "forward: logits is null");
  for (size_t i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= cfg_.vocab_size) {
      return Status::Error(StatusCode::kInvalidArgument,
                           "forward: token " + std::to_string(i) + " has id " +
                               std::to_string(tokens[i]) + ", outside the vocabulary [0, " +
                               std::to_string(cfg_.vocab_size) + ")");
    }
  }
  if (n > static_cast<size_t>(max_ctx_ - pos_)) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "forward: context overflow: position " + std::to_string(pos_) + " + " +
                             std::to_string(n) + " tokens exceeds the maximum context of " +
                             std::to_string(max_ctx_) + " positions (call reset())");
  }

  Impl& im = *impl_;
  const size_t H = static_cast<size_t>(cfg_.hidden_size), I = static_cast<size_t>(cfg_.intermediate_size);
  const size_t Q = static_cast<size_t>(cfg_.q_dim()), KV = static_cast<size_t>(cfg_.kv_dim());
  const size_t hd = static_cast<size_t>(cfg_.head_dim), half = hd / 2;
  const int n_heads = cfg_.num_attention_heads, group = n_heads / cfg_.num_key_value_heads;
  const size_t V = static_cast<size_t>(cfg_.vocab_size);

  // Grow the KV cache (doubling, capped at max_context) so that it holds pos_ + n rows.
  const int need = pos_ + static_cast<int>(n);
  if (need > im.cache_cap) {
    int cap = std::max(need, std::min(max_ctx_, std::max(16, im.cache_cap * 2)));
    for (size_t l = 0; l < im.k_cache.size(); ++l) {
      im.k_cache[l].resize(static_cast<size_t>(cap) * KV);
      im.v_cache[l].resize(static_cast<size_t>(cap) * KV);
    }
    im.cache_cap = cap;
  }

  im.x.resize(n * H);
  im.xn.resize(n * H);
  im.q.resize(n * Q);
  im.k.resize(n * KV);
  im.v.resize(n * KV);
  im.att.resize(n * Q);
  im.tmp.resize(n * H);
  im.gate.resize(n * I);
  im.up.resize(n * I);
  im.cs.resize(n * hd);
  im.scores.resize(static_cast<size_t>(need));

  for (size_t i = 0; i < n; ++i) {
    std::memcpy(&im.x[i * H], &im.embed[static_cast<size_t>(tokens[i]) * H], H * sizeof(float));
    llama::rope_cos_sin(im.inv_freq.data(), static_cast<int>(half), pos_ + static_cast<int>(i),
                        &im.cs[i * hd]);
  }

  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float eps = cfg_.rms_norm_eps;
  for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
    const Impl::LayerNorms& nw = im.norms[static_cast<size_t>(l)];
    for (size_t i = 0; i < n; ++i) {
      llama::rms_norm(&im.x[i * H], nw.input.data(), static_cast<int>(H), eps, &im.xn[i * H]);
    }
    im.slot(l, kQ).layer->forward(im.xn.data(), n, im.q.data());
    im.slot(l, kK).layer->forward(im.xn.data(), n, im.k.data());
    im.slot(l, kV).layer->forward(im.xn.data(), n, im.v.data());

    float* kc = im.k_cache[static_cast<size_t>(l)].data();
    float* vc = im.v_cache[static_cast<size_t>(l)].data();
    for (size_t i = 0; i < n; ++i) {
      llama::rope_apply(&im.q[i * Q], n_heads, static_cast<int>(half), &im.cs[i * hd]);
      llama::rope_apply(&im.k[i * KV], cfg_.num_key_value_heads, static_cast<int>(half),
                        &im.cs[i * hd]);
      const size_t row = static_cast<size_t>(pos_) + i;
      std::memcpy(kc + row * KV, &im.k[i * KV], KV * sizeof(float));
      std::memcpy(vc + row * KV, &im.v[i * KV], KV * sizeof(float));
    }

    // Causal attention: token i (position pos_+i) sees cache rows [start, pos_+i].
    for (size_t i = 0; i < n; ++i) {
      const int p = pos_ + static_cast<int>(i);
      const int start = cfg_.sliding_window > 0 ? std::max(0, p - cfg_.sliding_window + 1) : 0;
      for (int h = 0; h < n_heads; ++h) {
        const float* qh = &im.q[i * Q + static_cast<size_t>(h) * hd];
        const size_t koff = static_cast<size_t>(h / group) * hd;
        float mx = -INFINITY;
        for (int j = start; j <= p; ++j) {
          const float s = llama::dot_f32(qh, kc + static_cast<size_t>(j) * KV + koff, hd) * scale;
          im.scores[static_cast<size_t>(j)] = s;
          mx = std::max(mx, s);
        }
        double sum = 0.0;
        for (int j = start; j <= p; ++j) {
          const float e = std::exp(im.scores[static_cast<size_t>(j)] - mx);
          im.scores[static_cast<size_t>(j)] = e;
          sum += e;
        }
        const float inv = static_cast<float>(1.0 / sum);
        float* out = &im.att[i * Q + static_cast<size_t>(h) * hd];
        std::fill(out, out + hd, 0.0f);
        for (int j = start; j <= p; ++j) {
          llama::axpy_f32(im.scores[static_cast<size_t>(j)] * inv,
                          vc + static_cast<size_t>(j) * KV + koff, out, hd);
        }
      }
    }
    im.slot(l, kO).layer->forward(im.att.data(), n, im.tmp.data());
    for (size_t t = 0; t < n * H; ++t) im.x[t] += im.tmp[t];

    for (size_t i = 0; i < n; ++i) {
      llama::rms_norm(&im.x[i * H], nw.post.data(), static_cast<int>(H), eps, &im.xn[i * H]);
    }
    im.slot(l, kGate).layer->forward(im.xn.data(), n, im.gate.data());
    im.slot(l, kUp).layer->forward(im.xn.data(), n, im.up.data());
    llama::silu_mul(im.gate.data(), im.up.data(), n * I);
    im.slot(l, kDown).layer->forward(im.gate.data(), n, im.tmp.data());
    for (size_t t = 0; t < n * H; ++t) im.x[t] += im.tmp[t];
  }

  const size_t rows = all_logits ? n : 1;
  const size_t first = n - rows;
  for (size_t r = 0; r < rows; ++r) {
    llama::rms_norm(&im.x[(first + r) * H], im.final_norm.data(), static_cast<int>(H), eps,
                    &im.xn[r * H]);
  }
  logits->resize(rows * V);
  const LinearLayer* head = im.lm_head().layer.get();
  if (head != nullptr) {
    head->forward(im.xn.data(), rows, logits->data());
  } else {
    llama::gemm_nt_f32(im.xn.data(), rows, im.embed.data(), V, H, logits->data());
  }
  pos_ = need;
  return Status::Ok();
}

Status LlamaModel::quantize(const ModelQuantOptions& options, std::vector<LayerQuantReport>* report) {
  Impl& im = *impl_;
  if (report != nullptr) report->clear();
  std::vector<float> w;
  for (Impl::LinearSlot& s : im.linears) {
    LayerQuantReport r;
    r.name = s.name;
    r.out_features = s.out;
    r.in_features = s.in;
    const bool shared_head = s.layer == nullptr;  // tied lm_head reading the embedding
    r.bytes_before = shared_head ? 0 : s.layer->weight_bytes();
    const std::string before_desc =
        shared_head ? std::string("f32 (tied to model.embed_tokens)") : s.layer->describe();

    LinearQuantSpec spec;
    if (!resolve_layer_spec(options, s.name, &spec)) {
      r.scheme = before_desc;
      r.bytes_after = r.bytes_before;
      r.note = "excluded";
      if (report != nullptr) report->push_back(std::move(r));
      continue;
    }

    const bool was_quantized = !shared_head && s.layer->scheme() != LinearScheme::kF32;
    std::unique_ptr<LinearLayer> fresh;
    std::string note;
    const bool tied_head = s.name == "lm_head" && cfg_.tie_word_embeddings;
    if (spec.scheme == LinearScheme::kF32 && tied_head) {
      // Float32 for a tied head means reading the embedding again: drop any own copy.
      s.layer.reset();
      note = "tied to model.embed_tokens";
    } else {
      w.resize(static_cast<size_t>(s.out) * static_cast<size_t>(s.in));
      if (shared_head) {
        std::copy(im.embed.begin(), im.embed.end(), w.begin());
      } else {
        s.layer->dequantize_weight(w.data());
      }
      const float* bias = s.bias.empty() ? nullptr : s.bias.data();
      if (spec.scheme == LinearScheme::kF32) {
        fresh = make_linear_f32(w.data(), s.out, s.in, bias);
        if (!fresh) return Status::Error(StatusCode::kOutOfMemory, s.name + ": allocation failed");
      } else {
        Status st = make_linear_quantized(w.data(), s.out, s.in, bias, spec, &fresh, &note);
        if (!st.ok()) return Status::Error(st.code, s.name + ": " + st.message);
      }
      if (shared_head) {
        note += std::string(note.empty() ? "" : "; ") +
                "tied to model.embed_tokens: own quantized copy (the embedding stays f32)";
      }
      if (was_quantized) {
        note += std::string(note.empty() ? "" : "; ") +
                (spec.scheme == LinearScheme::kF32 ? "converted to f32 from " : "re-quantized from ") +
                before_desc;
      }
      s.layer = std::move(fresh);
    }
    r.quantized = s.layer != nullptr && s.layer->scheme() != LinearScheme::kF32;
    r.scheme = s.layer ? s.layer->describe() : before_desc;
    r.bytes_after = s.layer ? s.layer->weight_bytes() : 0;
    r.note = note;
    if (report != nullptr) report->push_back(std::move(r));
  }
  return Status::Ok();
}

MemoryFootprint LlamaModel::memory_footprint() const {
  const Impl& im = *impl_;
  MemoryFootprint f;
  f.embedding = im.embed.size() * sizeof(float);
  f.modules.push_back({"model.embed_tokens", f.embedding});
  for (const Impl::LinearSlot& s : im.linears) {
    const size_t b = s.layer ? s.layer->weight_bytes() : 0;
    f.modules.push_back({s.name, b});
    if (s.name == "lm_head") {
      f.lm_head = b;
    } else {
      f.linear += b;
    }
  }
  for (size_t l = 0; l < im.norms.size(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    f.modules.push_back({p + "input_layernorm", im.norms[l].input.size() * sizeof(float)});
    f.modules.push_back({p + "post_attention_layernorm", im.norms[l].post.size() * sizeof(float)});
    f.norms += (im.norms[l].input.size() + im.norms[l].post.size()) * sizeof(float);
  }
  f.modules.push_back({"model.norm", im.final_norm.size() * sizeof(float)});
  f.norms += im.final_norm.size() * sizeof(float);
  f.total = f.embedding + f.linear + f.norms + f.lm_head;
  for (size_t l = 0; l < im.k_cache.size(); ++l) {
    f.kv_cache += (im.k_cache[l].size() + im.v_cache[l].size()) * sizeof(float);
  }
  return f;
}

std::vector<LlamaFloatParam> LlamaModel::float_params() const {
  const Impl& im = *impl_;
  const int64_t H = cfg_.hidden_size;
  std::vector<LlamaFloatParam> out;
  out.push_back({"model.embed_tokens.weight", {cfg_.vocab_size, H}, im.embed.data(), im.embed.size()});
  for (size_t l = 0; l < im.norms.size(); ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    out.push_back({p + "input_layernorm.weight", {H}, im.norms[l].input.data(), im.norms[l].input.size()});
    out.push_back({p + "post_attention_layernorm.weight", {H}, im.norms[l].post.data(), im.norms[l].post.size()});
  }
  out.push_back({"model.norm.weight", {H}, im.final_norm.data(), im.final_norm.size()});
  return out;
}

std::vector<std::string> LlamaModel::linear_names() const {
  std::vector<std::string> names;
  for (const Impl::LinearSlot& s : impl_->linears) names.push_back(s.name);
  return names;
}

const LinearLayer* LlamaModel::linear(const std::string& name) const {
  for (const Impl::LinearSlot& s : impl_->linears) {
    if (s.name == name) return s.layer.get();
  }
  return nullptr;
}

Status LlamaModel::replace_linear(const std::string& name, std::unique_ptr<LinearLayer> layer) {
  for (Impl::LinearSlot& s : impl_->linears) {
    if (s.name != name) continue;
    if (!layer) {
      if (name == "lm_head" && cfg_.tie_word_embeddings) {
        s.layer.reset();  // back to sharing the embedding
        return Status::Ok();
      }
      return Status::Error(StatusCode::kInvalidArgument, "replace_linear: null layer for " + name);
    }
    if (layer->out_features != s.out || layer->in_features != s.in) {
      return Status::Error(StatusCode::kShapeMismatch,
                           "replace_linear: " + name + " expects [" + std::to_string(s.out) + ", " +
                               std::to_string(s.in) + "], got [" +
                               std::to_string(layer->out_features) + ", " +
                               std::to_string(layer->in_features) + "]");
    }
    s.bias = layer->bias();  // what quantize() rebuilds from
    s.layer = std::move(layer);
    return Status::Ok();
  }
  return Status::Error(StatusCode::kNotFound, "replace_linear: no linear layer named '" + name + "'");
}

Status LlamaModel::generate(const int32_t* prompt, size_t n_prompt, int max_new_tokens,
                            const SamplingOptions& sampling, std::vector<int32_t>* out) {
  WQ_RETURN_IF_ERROR(Sampler::validate(sampling));
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "generate: out is null");
  if (max_new_tokens < 0) {
    return Status::Error(StatusCode::kInvalidArgument, "generate: max_new_tokens must be >= 0");
  }
  Sampler sampler(sampling);
  std::vector<int32_t> history(prompt, prompt + n_prompt);
  std::vector<float> logits;
  WQ_RETURN_IF_ERROR(forward(prompt, n_prompt, false, &logits));
  for (int t = 0; t < max_new_tokens; ++t) {
    int32_t tok = 0;
    WQ_RETURN_IF_ERROR(sampler.sample(logits.data(), logits.size(), history.data(), history.size(), &tok));
    out->push_back(tok);
    history.push_back(tok);
    const bool eos = std::find(cfg_.eos_token_ids.begin(), cfg_.eos_token_ids.end(), tok) !=
                     cfg_.eos_token_ids.end();
    if (eos || t + 1 == max_new_tokens || pos_ >= max_ctx_) break;
    WQ_RETURN_IF_ERROR(forward(&tok, 1, false, &logits));
  }
  return Status::Ok();
}

}  // namespace webquant
