// QuantDistiller (webquant/distill.h): fake-quantized Llama student, KL to the float teacher, Adam.
#include "webquant/distill.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>

#include "train/llama_grad.h"
#include "webquant/linear.h"
#include "webquant/llama.h"

namespace webquant {
namespace {

const char* const kLinearNames[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                     "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                     "mlp.down_proj"};

// A trained parameter: master weights, Adam moments, and (linear layers with a quantized spec) the
// fake-quantized copy the forward pass reads.
struct Trained {
  std::string name;  // "<module>.weight"
  std::vector<float> w, m, v, fq;
  int out = 0, in = 0;  // linear layers; 0 for norms
  bool quantized = false;
  LinearQuantSpec spec;
  std::vector<float> bias;  // the layer's own (frozen); empty when it has none
  const float* read() const { return quantized ? fq.data() : w.data(); }
};

// Log-softmax of each row of z [rows, V] in place (sums in double).
void log_softmax_rows(float* z, size_t rows, size_t V) {
  for (size_t r = 0; r < rows; ++r) {
    float* row = z + r * V;
    float mx = row[0];
    for (size_t i = 1; i < V; ++i) mx = std::max(mx, row[i]);
    double s = 0.0;
    for (size_t i = 0; i < V; ++i) s += std::exp(static_cast<double>(row[i] - mx));
    const float lse = mx + static_cast<float>(std::log(s));
    for (size_t i = 0; i < V; ++i) row[i] -= lse;
  }
}

}  // namespace

struct QuantDistiller::Impl {
  CausalLM* model = nullptr;
  ModelQuantOptions quant;
  DistillOptions opt;
  LlamaConfig cfg;
  std::unique_ptr<train::LlamaGrad> graph;
  std::vector<Trained> params;                       // linears (layer-major, kLinearNames order), then norms
  std::vector<std::array<size_t, 9>> layer_index;    // per layer: 7 linears, norm1, norm2
  size_t final_norm = 0;
  std::vector<float> head_copy;  // an untied head's weights (frozen)
  const float* embed = nullptr;
  const float* head = nullptr;
  int steps = 0;
  bool spent = false;

  train::LlamaParams view() const {
    train::LlamaParams p;
    p.layers.resize(layer_index.size());
    for (size_t l = 0; l < layer_index.size(); ++l) {
      for (int j = 0; j < 7; ++j) {
        p.layers[l].lin[j] = params[layer_index[l][j]].read();
        p.layers[l].bias[j] = params[layer_index[l][j]].bias.empty() ? nullptr : params[layer_index[l][j]].bias.data();
      }
      p.layers[l].norm1 = params[layer_index[l][7]].w.data();
      p.layers[l].norm2 = params[layer_index[l][8]].w.data();
    }
    p.final_norm = params[final_norm].w.data();
    p.embed = embed;
    p.head = head;
    return p;
  }

  Status fake_quantize() {
    for (Trained& t : params) {
      if (!t.quantized) continue;
      std::unique_ptr<LinearLayer> layer;
      std::string note;
      Status s = make_linear_quantized(t.w.data(), t.out, t.in, nullptr, t.spec, &layer, &note);
      if (!s.ok()) return Status::Error(s.code, t.name + ": " + s.message);
      t.fq.resize(t.w.size());
      layer->dequantize_weight(t.fq.data());
    }
    return Status::Ok();
  }

  Status check(const int32_t* tokens, size_t batch, size_t seq) const {
    if (spent) return Status::Error(StatusCode::kInvalidArgument, "distill: finish() was called");
    if (tokens == nullptr || batch == 0 || seq == 0)
      return Status::Error(StatusCode::kInvalidArgument, "distill: empty batch");
    if (seq > static_cast<size_t>(model->max_context()))
      return Status::Error(StatusCode::kInvalidArgument,
                           "distill: seq_len " + std::to_string(seq) + " > max_context " +
                               std::to_string(model->max_context()));
    if (cfg.sliding_window > 0 && seq > static_cast<size_t>(cfg.sliding_window))
      return Status::Error(StatusCode::kInvalidArgument, "distill: seq_len exceeds the sliding window");
    for (size_t i = 0; i < batch * seq; ++i)
      if (tokens[i] < 0 || tokens[i] >= cfg.vocab_size)
        return Status::Error(StatusCode::kInvalidArgument,
                             "distill: token " + std::to_string(tokens[i]) + " at index " +
                                 std::to_string(i) + " is outside the vocabulary");
    return Status::Ok();
  }

  // Teacher log-probabilities [batch * seq, V] from the model's own (float) forward pass.
  Status teacher(const int32_t* tokens, size_t batch, size_t seq, std::vector<float>* lt) {
    const size_t V = static_cast<size_t>(cfg.vocab_size);
    lt->resize(batch * seq * V);
    std::vector<float> logits;
    for (size_t b = 0; b < batch; ++b) {
      model->reset();
      WQ_RETURN_IF_ERROR(model->forward(tokens + b * seq, seq, true, &logits));
      std::copy(logits.begin(), logits.end(), lt->begin() + static_cast<std::ptrdiff_t>(b * seq * V));
    }
    model->reset();
    log_softmax_rows(lt->data(), batch * seq, V);
    return Status::Ok();
  }

  // Student forward; loss = mean over positions of KL(teacher || student); dlogits when asked.
  Status loss(const int32_t* tokens, size_t batch, size_t seq, float* out, std::vector<float>* dlogits) {
    std::vector<float> lt, ls;
    WQ_RETURN_IF_ERROR(teacher(tokens, batch, seq, &lt));
    WQ_RETURN_IF_ERROR(fake_quantize());
    graph->forward(view(), tokens, batch, seq, &ls);
    const size_t N = batch * seq, V = static_cast<size_t>(cfg.vocab_size);
    log_softmax_rows(ls.data(), N, V);
    double kl = 0.0;
    if (dlogits) dlogits->resize(N * V);
    for (size_t i = 0; i < N * V; ++i) {
      const double pt = std::exp(static_cast<double>(lt[i]));
      kl += pt * (static_cast<double>(lt[i]) - ls[i]);
      if (dlogits) (*dlogits)[i] = static_cast<float>((std::exp(static_cast<double>(ls[i])) - pt) / N);
    }
    const float value = static_cast<float>(kl / static_cast<double>(N));
    if (!std::isfinite(value)) return Status::Error(StatusCode::kNonFinite, "distill: the loss is not finite");
    if (out) *out = value;
    return Status::Ok();
  }

  // Gradients in params order.
  Status gradients(const int32_t* tokens, size_t batch, size_t seq, float* out,
                   std::vector<std::vector<float>>* grads) {
    std::vector<float> dlogits;
    WQ_RETURN_IF_ERROR(loss(tokens, batch, seq, out, &dlogits));
    train::LlamaGrads g;
    graph->backward(view(), dlogits.data(), &g);
    grads->assign(params.size(), {});
    for (size_t l = 0; l < layer_index.size(); ++l) {
      for (int j = 0; j < 7; ++j) (*grads)[layer_index[l][j]] = std::move(g.layers[l].lin[j]);
      (*grads)[layer_index[l][7]] = std::move(g.layers[l].norm1);
      (*grads)[layer_index[l][8]] = std::move(g.layers[l].norm2);
    }
    (*grads)[final_norm] = std::move(g.final_norm);
    for (const auto& gr : *grads)
      for (float v : gr)
        if (!std::isfinite(v)) return Status::Error(StatusCode::kNonFinite, "distill: a gradient is not finite");
    return Status::Ok();
  }
};

QuantDistiller::QuantDistiller(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QuantDistiller::~QuantDistiller() = default;

Status QuantDistiller::create(CausalLM* model, const ModelQuantOptions& quant,
                              const DistillOptions& options, std::unique_ptr<QuantDistiller>* out) {
  if (model == nullptr || out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "distill: null argument");
  if (!(options.learning_rate > 0.0f) || !std::isfinite(options.learning_rate) ||
      !(options.beta1 >= 0.0f && options.beta1 < 1.0f) || !(options.beta2 >= 0.0f && options.beta2 < 1.0f) ||
      !(options.epsilon > 0.0f) || options.total_steps < 0)
    return Status::Error(StatusCode::kInvalidArgument, "distill: learning rate or Adam constants out of range");
  if (quant.method != QuantMethod::kRtn && quant.method != QuantMethod::kHqq)
    return Status::Error(StatusCode::kUnsupported, "distill: only the rtn and hqq methods are trained");
  if (quant.embeddings.has_value())
    return Status::Error(StatusCode::kUnsupported, "distill: embedding tables stay as they are (no embeddings option)");
  if (quant.prune.kind != PruneSpec::Kind::kNone)
    return Status::Error(StatusCode::kUnsupported, "distill: pruning is not trained (prune in quantizeModel instead)");
  if (model->dtype() != FloatType::kF32)
    return Status::Error(StatusCode::kUnsupported, "distill: the model must be float32");
  auto impl = std::make_unique<Impl>();
  impl->model = model;
  impl->quant = quant;
  impl->opt = options;
  Status s = parse_llama_config(model->config_json(), &impl->cfg);
  if (!s.ok()) return Status::Error(StatusCode::kUnsupported, "distill: not a llama-family model: " + s.message);
  const LlamaConfig& cfg = impl->cfg;
  const Weights& w = model->weights();
  const std::string head_name = "lm_head";
  LinearQuantSpec spec;
  if (resolve_layer_spec(quant, head_name, &spec))
    return Status::Error(StatusCode::kUnsupported, "distill: the output head must be excluded from the quantization");
  const Weights::Param* emb = w.find_param("model.embed_tokens.weight");
  if (emb == nullptr || emb->quantized || emb->data.empty())
    return Status::Error(StatusCode::kUnsupported, "distill: the token embedding must be float32");
  impl->embed = emb->data.data();
  if (cfg.tie_word_embeddings) {
    impl->head = impl->embed;
  } else {
    const LinearLayer* h = w.linear(head_name);
    if (h == nullptr || h->scheme() != LinearScheme::kF32)
      return Status::Error(StatusCode::kUnsupported, "distill: the output head must be float32");
    impl->head_copy.resize(static_cast<size_t>(cfg.vocab_size) * cfg.hidden_size);
    h->dequantize_weight(impl->head_copy.data());
    impl->head = impl->head_copy.data();
  }
  impl->graph = std::make_unique<train::LlamaGrad>(cfg);
  auto add_norm = [&](const std::string& name, size_t* index) -> Status {
    const Weights::Param* p = w.find_param(name);
    if (p == nullptr || p->data.empty()) return Status::Error(StatusCode::kUnsupported, "distill: " + name + " is not float32");
    Trained t;
    t.name = name;
    t.w = p->data;
    *index = impl->params.size();
    impl->params.push_back(std::move(t));
    return Status::Ok();
  };
  impl->layer_index.resize(static_cast<size_t>(cfg.num_hidden_layers));
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".";
    for (int j = 0; j < 7; ++j) {
      const std::string name = prefix + kLinearNames[j];
      const LinearLayer* layer = w.linear(name);
      if (layer == nullptr || layer->scheme() != LinearScheme::kF32)
        return Status::Error(StatusCode::kUnsupported, "distill: " + name + " is not a float32 layer");
      Trained t;
      t.name = name + ".weight";
      t.out = impl->graph->out_features(j);
      t.in = impl->graph->in_features(j);
      t.w.resize(static_cast<size_t>(t.out) * t.in);
      layer->dequantize_weight(t.w.data());
      t.bias = layer->bias();
      for (float v : t.w)
        if (!std::isfinite(v)) return Status::Error(StatusCode::kNonFinite, "distill: " + name + " has NaN / Inf weights");
      LinearQuantSpec ls;
      t.quantized = resolve_layer_spec(quant, name, &ls) && ls.scheme != LinearScheme::kF32;
      if (t.quantized && (ls.scheme == LinearScheme::kW8A8 || ls.scheme == LinearScheme::kW4A8))
        return Status::Error(StatusCode::kUnsupported, "distill: int8 activations are not simulated in training (" + name + ")");
      if (t.quantized) {
        // Weights::quantize: default_spec takes options.method, an override keeps its own.
        bool overridden = false;
        for (const auto& o : quant.overrides) overridden = overridden || module_name_matches(o.first, name);
        if (!overridden) ls.method = quant.method;
        t.spec = ls;
      }
      impl->layer_index[static_cast<size_t>(l)][static_cast<size_t>(j)] = impl->params.size();
      impl->params.push_back(std::move(t));
    }
    WQ_RETURN_IF_ERROR(add_norm(prefix + "input_layernorm.weight", &impl->layer_index[static_cast<size_t>(l)][7]));
    WQ_RETURN_IF_ERROR(add_norm(prefix + "post_attention_layernorm.weight", &impl->layer_index[static_cast<size_t>(l)][8]));
  }
  WQ_RETURN_IF_ERROR(add_norm("model.norm.weight", &impl->final_norm));
  WQ_RETURN_IF_ERROR(impl->fake_quantize());  // refuses a spec the layer cannot take, now
  for (Trained& t : impl->params) {
    t.m.assign(t.w.size(), 0.0f);
    t.v.assign(t.w.size(), 0.0f);
  }
  out->reset(new QuantDistiller(std::move(impl)));
  return Status::Ok();
}

Status QuantDistiller::loss_and_gradients(const int32_t* tokens, size_t batch, size_t seq_len,
                                          float* loss, std::vector<std::vector<float>>* grads) {
  WQ_RETURN_IF_ERROR(impl_->check(tokens, batch, seq_len));
  if (grads == nullptr) return Status::Error(StatusCode::kInvalidArgument, "distill: grads is null");
  return impl_->gradients(tokens, batch, seq_len, loss, grads);
}

Status QuantDistiller::evaluate(const int32_t* tokens, size_t batch, size_t seq_len, float* loss) {
  WQ_RETURN_IF_ERROR(impl_->check(tokens, batch, seq_len));
  return impl_->loss(tokens, batch, seq_len, loss, nullptr);
}

Status QuantDistiller::step(const int32_t* tokens, size_t batch, size_t seq_len, float* loss) {
  WQ_RETURN_IF_ERROR(impl_->check(tokens, batch, seq_len));
  std::vector<std::vector<float>> grads;
  WQ_RETURN_IF_ERROR(impl_->gradients(tokens, batch, seq_len, loss, &grads));
  Impl& m = *impl_;
  ++m.steps;
  const float b1 = m.opt.beta1, b2 = m.opt.beta2;
  const float c1 = 1.0f - std::pow(b1, static_cast<float>(m.steps));
  const float c2 = 1.0f - std::pow(b2, static_cast<float>(m.steps));
  float lr = m.opt.learning_rate;
  if (m.opt.total_steps > 0) {
    const double progress = std::min(1.0, static_cast<double>(m.steps - 1) / m.opt.total_steps);
    lr = static_cast<float>(0.5 * m.opt.learning_rate * (1.0 + std::cos(3.14159265358979323846 * progress)));
  }
  for (size_t k = 0; k < m.params.size(); ++k) {
    Trained& t = m.params[k];
    if (t.out == 0 && !m.opt.train_norms) continue;
    const std::vector<float>& g = grads[k];
    for (size_t i = 0; i < t.w.size(); ++i) {
      t.m[i] = b1 * t.m[i] + (1.0f - b1) * g[i];
      t.v[i] = b2 * t.v[i] + (1.0f - b2) * g[i] * g[i];
      t.w[i] -= lr * (t.m[i] / c1) / (std::sqrt(t.v[i] / c2) + m.opt.epsilon);
    }
  }
  return Status::Ok();
}

std::vector<std::string> QuantDistiller::trained_names() const {
  std::vector<std::string> names;
  for (const Trained& t : impl_->params) names.push_back(t.name);
  return names;
}

int QuantDistiller::steps() const { return impl_->steps; }

Status QuantDistiller::finish(std::vector<LayerQuantReport>* report) {
  Impl& m = *impl_;
  if (m.spent) return Status::Error(StatusCode::kInvalidArgument, "distill: finish() was called");
  m.spent = true;
  Weights& w = m.model->weights();
  for (const Trained& t : m.params) {
    if (t.out == 0) {
      float* dst = w.mutable_param_f32(t.name);
      if (dst == nullptr) return Status::Error(StatusCode::kNotFound, "distill: " + t.name);
      std::copy(t.w.begin(), t.w.end(), dst);
      continue;
    }
    const std::string name = t.name.substr(0, t.name.size() - 7);  // without ".weight"
    LinearQuantSpec f32;
    f32.scheme = LinearScheme::kF32;
    f32.group_size = 0;
    std::unique_ptr<LinearLayer> layer;
    std::string note;
    WQ_RETURN_IF_ERROR(make_linear_quantized(t.w.data(), t.out, t.in, t.bias.empty() ? nullptr : t.bias.data(),
                                             f32, &layer, &note));
    WQ_RETURN_IF_ERROR(w.replace_linear(name, std::move(layer)));
  }
  return m.model->quantize(m.quant, report);
}

}  // namespace webquant
