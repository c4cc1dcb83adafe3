// The module layer's registry (webquant/module.h): VarBuilder, weight sources, and the
// architecture-independent operations on a model's weights (quantize, footprint, saving views).
#include <algorithm>
#include <cstring>
#include <string>

#include "nn/ops.h"
#include "webquant/module.h"

namespace webquant {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Finds `name` (or, failing that, `name` without `optional_prefix`) across the shards, checks its
// shape and converts it to float32.
Status read_f32(const std::vector<const io::SafetensorsFile*>& shards, const std::string& name,
                const std::vector<int64_t>& shape, const std::string& optional_prefix,
                std::vector<float>* out) {
  const io::TensorView* t = nullptr;
  for (const io::SafetensorsFile* f : shards) {
    if (f != nullptr && (t = f->find(name)) != nullptr) break;
  }
  if (t == nullptr && !optional_prefix.empty() && name.compare(0, optional_prefix.size(), optional_prefix) == 0) {
    const std::string bare = name.substr(optional_prefix.size());
    for (const io::SafetensorsFile* f : shards) {
      if (f != nullptr && (t = f->find(bare)) != nullptr) break;
    }
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

// ---- sources ----------------------------------------------------------------------------------

Status SafetensorsSource::tensor(const ParamInfo& info, std::vector<float>* out) {
  return read_f32(shards_, info.name, info.shape, optional_prefix_, out);
}

Status SafetensorsSource::linear_weights(const LinearInfo& li, std::vector<float>* w,
                                         std::vector<float>* b) {
  const int64_t R = li.out_features, C = li.in_features;
  if (li.conv1d) {
    std::vector<float> t;
    WQ_RETURN_IF_ERROR(read_f32(shards_, li.name + ".weight", {C, R}, optional_prefix_, &t));
    w->resize(t.size());
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t r = 0; r < R; ++r) (*w)[static_cast<size_t>(r * C + c)] = t[static_cast<size_t>(c * R + r)];
    }
  } else {
    WQ_RETURN_IF_ERROR(read_f32(shards_, li.name + ".weight", {R, C}, optional_prefix_, w));
  }
  b->clear();
  if (li.has_bias) WQ_RETURN_IF_ERROR(read_f32(shards_, li.name + ".bias", {R}, optional_prefix_, b));
  return Status::Ok();
}

Status SafetensorsSource::linear(const LinearInfo& li, std::unique_ptr<LinearLayer>* out) {
  out->reset();
  if (!li.tied_to.empty()) return Status::Ok();  // reads the tied parameter
  std::vector<float> w, b;
  WQ_RETURN_IF_ERROR(linear_weights(li, &w, &b));
  *out = make_linear_f32(w.data(), li.out_features, li.in_features, li.has_bias ? b.data() : nullptr);
  if (!*out) return Status::Error(StatusCode::kOutOfMemory, "could not build linear layer " + li.name);
  return Status::Ok();
}

void PartsSource::add_tensor(std::string name, std::vector<float> data) {
  tensors_.emplace_back(std::move(name), std::move(data));
}

void PartsSource::add_linear(std::string name, std::unique_ptr<LinearLayer> layer) {
  linears_.emplace_back(std::move(name), std::move(layer));
}

Status PartsSource::tensor(const ParamInfo& info, std::vector<float>* out) {
  size_t numel = 1;
  for (int64_t d : info.shape) numel *= static_cast<size_t>(d);
  for (auto& t : tensors_) {
    if (t.first != info.name) continue;
    if (t.second.size() != numel) {
      return Status::Error(StatusCode::kShapeMismatch,
                           "'" + info.name + "' has " + std::to_string(t.second.size()) +
                               " values, expected " + shape_str(info.shape));
    }
    *out = std::move(t.second);
    return Status::Ok();
  }
  return Status::Error(StatusCode::kNotFound, "tensor '" + info.name + "' is missing");
}

Status PartsSource::linear(const LinearInfo& li, std::unique_ptr<LinearLayer>* out) {
  for (auto& l : linears_) {
    if (l.first != li.name) continue;
    if (!l.second) {
      if (li.tied_to.empty()) {
        return Status::Error(StatusCode::kInvalidArgument, "linear layer " + li.name + " is missing");
      }
      out->reset();
      return Status::Ok();
    }
    if (l.second->out_features != li.out_features || l.second->in_features != li.in_features) {
      return Status::Error(StatusCode::kShapeMismatch,
                           li.name + " is [" + std::to_string(l.second->out_features) + ", " +
                               std::to_string(l.second->in_features) + "], expected [" +
                               std::to_string(li.out_features) + ", " +
                               std::to_string(li.in_features) + "]");
    }
    if (l.second->bias().empty() == li.has_bias) {
      return Status::Error(StatusCode::kInvalidArgument,
                           li.name + (li.has_bias ? " needs a bias (the config asks for one)"
                                                  : " has a bias the config does not expect"));
    }
    *out = std::move(l.second);
    return Status::Ok();
  }
  if (!li.tied_to.empty()) {
    out->reset();
    return Status::Ok();
  }
  return Status::Error(StatusCode::kNotFound, "linear layer " + li.name + " is missing");
}

// ---- VarBuilder -------------------------------------------------------------------------------

VarBuilder::VarBuilder(Weights* weights, WeightSource* source)
    : weights_(weights), source_(source), status_(std::make_shared<Status>()) {}

VarBuilder VarBuilder::pp(std::string_view name) const {
  return VarBuilder(weights_, source_, status_, path(name));
}

std::string VarBuilder::path(std::string_view name) const {
  if (prefix_.empty()) return std::string(name);
  return prefix_ + "." + std::string(name);
}

void VarBuilder::set_optional_prefix(std::string_view prefix) {
  const std::string p = std::string(prefix) + ".";
  weights_->layout_.optional_prefix = p;
  if (source_ != nullptr) source_->set_optional_prefix(p);
}

std::vector<std::string> stored_names(const ModelLayout& layout, const std::string& name) {
  std::vector<std::string> out = {name};
  const std::string& p = layout.optional_prefix;
  if (!p.empty() && name.compare(0, p.size(), p) == 0) out.push_back(name.substr(p.size()));
  return out;
}

void VarBuilder::fail(Status s) {
  if (status_->ok() && !s.ok()) *status_ = std::move(s);
}

int VarBuilder::param(std::string_view name, std::vector<int64_t> shape, ParamKind kind) {
  if (!status_->ok()) return -1;
  Weights::Param p;
  p.info = ParamInfo{path(name), std::move(shape), kind};
  if (source_ != nullptr) {
    Status s = source_->tensor(p.info, &p.data);
    if (!s.ok()) {
      fail(s);
      return -1;
    }
  }
  weights_->layout_.params.push_back(p.info);
  weights_->layout_.order.push_back({false, weights_->params_.size()});
  weights_->params_.push_back(std::move(p));
  return static_cast<int>(weights_->params_.size() - 1);
}

int VarBuilder::linear(std::string_view name, int out_features, int in_features, bool bias,
                       bool conv1d, std::string_view tied_to, bool is_head) {
  if (!status_->ok()) return -1;
  Weights::Linear l;
  l.info = LinearInfo{path(name), out_features, in_features, bias, conv1d, std::string(tied_to), is_head};
  if (!l.info.tied_to.empty()) {
    const Weights::Param* t = weights_->find_param(l.info.tied_to);
    if (t == nullptr || t->info.shape != std::vector<int64_t>{out_features, in_features}) {
      fail(Status::Error(StatusCode::kInvalidArgument,
                         l.info.name + " is tied to '" + l.info.tied_to +
                             "', which is not a declared [out, in] parameter"));
      return -1;
    }
  }
  if (source_ != nullptr) {
    Status s = source_->linear(l.info, &l.layer);
    if (!s.ok()) {
      fail(s);
      return -1;
    }
    if (!l.layer && l.info.tied_to.empty()) {
      fail(Status::Error(StatusCode::kInvalidArgument, "linear layer " + l.info.name + " is missing"));
      return -1;
    }
    if (l.layer) l.bias = l.layer->bias();
  }
  weights_->layout_.linears.push_back(l.info);
  weights_->layout_.order.push_back({true, weights_->linears_.size()});
  weights_->linears_.push_back(std::move(l));
  return static_cast<int>(weights_->linears_.size() - 1);
}

void report_layer_state(const LinearLayer* layer, LayerQuantReport* r) {
  r->tied = layer == nullptr;
  r->quantized = layer != nullptr && layer->scheme() != LinearScheme::kF32;
  r->bytes_after = layer != nullptr ? layer->weight_bytes() : 0;
  r->scheme_id = layer != nullptr ? layer->scheme() : LinearScheme::kF32;
  r->bits = 32;
  r->asymmetric = false;
  r->group_size = 0;
  r->fallback.clear();
  r->method = QuantMethod::kRtn;
  r->codebook = Codebook::kNone;
  r->zeros = 0;
  if (layer != nullptr) r->scheme = layer->describe();
  if (r->quantized) {
    LinearQuantizedData d;
    if (layer->export_quantized(&d).ok()) {
      r->bits = d.bits;
      r->asymmetric = d.asymmetric;
      r->group_size = d.group_size;
      r->fallback = d.fallback;
      r->method = d.method;
      r->codebook = d.codebook;
    }
  }
}

// ---- Weights ----------------------------------------------------------------------------------

const Weights::Param* Weights::find_param(std::string_view name) const {
  for (const Param& p : params_) {
    if (p.info.name == name) return &p;
  }
  return nullptr;
}

void Weights::forward_linear(size_t i, const float* x, size_t m, float* y) const {
  const Linear& l = linears_[i];
  if (l.layer) {
    l.layer->forward(x, m, y);
    return;
  }
  const Param* t = find_param(l.info.tied_to);
  nn::gemm_nt_f32(x, m, t->data.data(), static_cast<size_t>(l.info.out_features),
                  static_cast<size_t>(l.info.in_features), y);
}

Status Weights::quantize(const ModelQuantOptions& options, std::vector<LayerQuantReport>* report) {
  if (report != nullptr) report->clear();
  std::vector<float> w;
  for (Linear& s : linears_) {
    const LinearInfo& li = s.info;
    LayerQuantReport r;
    r.name = li.name;
    r.out_features = li.out_features;
    r.in_features = li.in_features;
    const bool shared_head = s.layer == nullptr;  // tied head reading the embedding
    const std::string tied_note = "tied to " + li.tied_to.substr(0, li.tied_to.rfind(".weight"));
    r.bytes_before = shared_head ? 0 : s.layer->weight_bytes();
    const std::string before_desc = shared_head ? "f32 (" + tied_note + ")" : s.layer->describe();

    LinearQuantSpec spec;
    if (!resolve_layer_spec(options, li.name, &spec)) {
      report_layer_state(s.layer.get(), &r);
      r.scheme = before_desc;
      r.note = "excluded";
      if (report != nullptr) report->push_back(std::move(r));
      continue;
    }

    const bool was_quantized = !shared_head && s.layer->scheme() != LinearScheme::kF32;
    std::unique_ptr<LinearLayer> fresh;
    std::string note;
    if (spec.scheme == LinearScheme::kF32 && !li.tied_to.empty()) {
      // Float32 for a tied head means reading the embedding again: drop any own copy.
      s.layer.reset();
      note = tied_note;
    } else {
      w.resize(static_cast<size_t>(li.out_features) * static_cast<size_t>(li.in_features));
      if (shared_head) {
        const Param* t = find_param(li.tied_to);
        std::copy(t->data.begin(), t->data.end(), w.begin());
      } else {
        s.layer->dequantize_weight(w.data());
      }
      const float* bias = s.bias.empty() ? nullptr : s.bias.data();
      if (spec.scheme != LinearScheme::kF32) {
        Status st = prune_magnitude(w.data(), size_t(li.out_features), size_t(li.in_features),
                                    options.prune, &r.pruned);
        if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
      }
      if (spec.scheme == LinearScheme::kF32) {
        fresh = make_linear_f32(w.data(), li.out_features, li.in_features, bias);
        if (!fresh) return Status::Error(StatusCode::kOutOfMemory, li.name + ": allocation failed");
      } else {
        Status st = make_linear_quantized(w.data(), li.out_features, li.in_features, bias, spec,
                                          &fresh, &note);
        if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
      }
      if (shared_head) {
        note += std::string(note.empty() ? "" : "; ") + tied_note +
                ": own quantized copy (the embedding stays f32)";
      }
      if (was_quantized) {
        note += std::string(note.empty() ? "" : "; ") +
                (spec.scheme == LinearScheme::kF32 ? "converted to f32 from " : "re-quantized from ") +
                before_desc;
      }
      s.layer = std::move(fresh);
    }
    report_layer_state(s.layer.get(), &r);
    if (!s.layer) r.scheme = before_desc;
    if (options.prune.kind != PruneSpec::Kind::kNone && r.quantized) {
      s.layer->dequantize_weight(w.data());  // w has out * in floats (sized above)
      for (float v : w) r.zeros += v == 0.0f;
    }
    r.note = note;
    if (report != nullptr) report->push_back(std::move(r));
  }
  return Status::Ok();
}

MemoryFootprint Weights::memory_footprint() const {
  MemoryFootprint f;
  // Parameters are grouped by module (the name without its last component).
  for (const ModelLayout::Entry& e : layout_.order) {
    if (e.is_linear) {
      const Linear& l = linears_[e.index];
      const size_t b = l.layer ? l.layer->weight_bytes() : 0;
      f.modules.push_back({l.info.name, b});
      (l.info.is_head ? f.lm_head : f.linear) += b;
      continue;
    }
    const Param& p = params_[e.index];
    const size_t b = p.data.size() * sizeof(float);
    const size_t dot = p.info.name.rfind('.');
    const std::string module = dot == std::string::npos ? p.info.name : p.info.name.substr(0, dot);
    if (!f.modules.empty() && f.modules.back().name == module) {
      f.modules.back().bytes += b;
    } else {
      f.modules.push_back({module, b});
    }
    switch (p.info.kind) {
      case ParamKind::kEmbedding: f.embedding += b; break;
      case ParamKind::kNorm: f.norms += b; break;
      default: f.other += b; break;
    }
  }
  f.total = f.embedding + f.linear + f.norms + f.other + f.lm_head;
  return f;
}

std::vector<FloatParamView> Weights::float_params() const {
  std::vector<FloatParamView> out;
  for (const Param& p : params_) {
    out.push_back({p.info.name, p.info.shape, p.data.data(), p.data.size(), p.info.kind});
  }
  return out;
}

std::vector<std::string> Weights::linear_names() const {
  std::vector<std::string> names;
  for (const Linear& l : linears_) names.push_back(l.info.name);
  return names;
}

const LinearLayer* Weights::linear(std::string_view name) const {
  for (const Linear& l : linears_) {
    if (l.info.name == name) return l.layer.get();
  }
  return nullptr;
}

const LinearInfo* Weights::linear_info(std::string_view name) const {
  for (const Linear& l : linears_) {
    if (l.info.name == name) return &l.info;
  }
  return nullptr;
}

Status Weights::replace_linear(std::string_view name, std::unique_ptr<LinearLayer> layer) {
  for (Linear& s : linears_) {
    if (s.info.name != name) continue;
    if (!layer) {
      if (!s.info.tied_to.empty()) {
        s.layer.reset();  // back to sharing the embedding
        return Status::Ok();
      }
      return Status::Error(StatusCode::kInvalidArgument,
                           "replace_linear: null layer for " + std::string(name));
    }
    if (layer->out_features != s.info.out_features || layer->in_features != s.info.in_features) {
      return Status::Error(StatusCode::kShapeMismatch,
                           "replace_linear: " + std::string(name) + " expects [" +
                               std::to_string(s.info.out_features) + ", " +
                               std::to_string(s.info.in_features) + "], got [" +
                               std::to_string(layer->out_features) + ", " +
                               std::to_string(layer->in_features) + "]");
    }
    s.bias = layer->bias();  // what quantize() rebuilds from
    s.layer = std::move(layer);
    return Status::Ok();
  }
  return Status::Error(StatusCode::kNotFound,
                       "replace_linear: no linear layer named '" + std::string(name) + "'");
}

}  // namespace webquant
