// The module layer's registry (webquant/module.h): VarBuilder, weight sources, and the
// architecture-independent access to a model's weights (forward, rows, saving views; quantizing and
// the footprint are in weights_quantize.cpp).
#include <algorithm>
#include <cstring>
#include <string>

#include "nn/blocks.h"
#include "nn/ops.h"
#include "quant/linear_internal.h"
#include "webquant/convert.h"
#include "webquant/module.h"

namespace webquant {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Finds `name` (or, failing that, `name` without `optional_prefix`) across the shards and checks
// its shape and dtype.
Status find_tensor(const std::vector<const io::SafetensorsFile*>& shards, const std::string& name,
                   const std::vector<int64_t>& shape, const std::string& optional_prefix,
                   const io::TensorView** found) {
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
  *found = t;
  return Status::Ok();
}

// The tensor converted to float32.
Status read_f32(const std::vector<const io::SafetensorsFile*>& shards, const std::string& name,
                const std::vector<int64_t>& shape, const std::string& optional_prefix,
                std::vector<float>* out) {
  const io::TensorView* t = nullptr;
  WQ_RETURN_IF_ERROR(find_tensor(shards, name, shape, optional_prefix, &t));
  out->resize(static_cast<size_t>(t->numel()));
  return io::tensor_to_f32(*t, out->data());
}

// The tensor as 16-bit values of `type`: copied when stored in that type, else rounded through
// float32 one chunk at a time (no float32 copy of the whole tensor).
Status read_half(const std::vector<const io::SafetensorsFile*>& shards, const std::string& name,
                 const std::vector<int64_t>& shape, const std::string& optional_prefix,
                 FloatType type, std::vector<uint16_t>* out) {
  const io::TensorView* t = nullptr;
  WQ_RETURN_IF_ERROR(find_tensor(shards, name, shape, optional_prefix, &t));
  const size_t n = static_cast<size_t>(t->numel());
  out->resize(n);
  const char* same = type == FloatType::kBF16 ? "BF16" : "F16";
  if (t->dtype == same) {
    if (n != 0) std::memcpy(out->data(), t->data, n * sizeof(uint16_t));  // little-endian host
    return Status::Ok();
  }
  const size_t elem = t->dtype == "F32" ? 4 : 2;
  constexpr size_t kChunk = 4096;
  std::vector<float> buf(std::min(n, kChunk));
  for (size_t i = 0; i < n; i += kChunk) {
    const size_t c = std::min(kChunk, n - i);
    io::TensorView part = *t;
    part.data = t->data + i * elem;
    part.nbytes = c * elem;
    part.shape = {static_cast<int64_t>(c)};
    WQ_RETURN_IF_ERROR(io::tensor_to_f32(part, buf.data()));
    linear_detail::narrow_half(type, buf.data(), c, out->data() + i);
  }
  return Status::Ok();
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
  // ModelQuantOptions::method is the default spec's method when it is one applied per layer (hqq);
  // gptq / awq are applied by quantize_calibrated over RTN-form specs.
  if (options.method == QuantMethod::kHqq) spec->method = QuantMethod::kHqq;
  for (const auto& ov : options.overrides) {
    if (module_name_matches(ov.first, name)) {
      *spec = ov.second;
      break;
    }
  }
  return true;
}

// ---- sources ----------------------------------------------------------------------------------

Status WeightSource::tensor_half(const ParamInfo& info, FloatType type, std::vector<uint16_t>* out) {
  std::vector<float> f;
  WQ_RETURN_IF_ERROR(tensor(info, &f));
  out->resize(f.size());
  linear_detail::narrow_half(type, f.data(), f.size(), out->data());
  return Status::Ok();
}

Status SafetensorsSource::tensor(const ParamInfo& info, std::vector<float>* out) {
  return read_f32(shards_, info.name, info.shape, optional_prefix_, out);
}

Status SafetensorsSource::tensor_half(const ParamInfo& info, FloatType type,
                                      std::vector<uint16_t>* out) {
  return read_half(shards_, info.name, info.shape, optional_prefix_, type, out);
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
  if (dtype_ != FloatType::kF32) {  // half weights straight from the file
    const int64_t R = li.out_features, C = li.in_features;
    std::vector<uint16_t> h, t;
    WQ_RETURN_IF_ERROR(read_half(shards_, li.name + ".weight", li.conv1d ? std::vector<int64_t>{C, R}
                                                                         : std::vector<int64_t>{R, C},
                                 optional_prefix_, dtype_, li.conv1d ? &t : &h));
    if (li.conv1d) {
      h.resize(t.size());
      for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < R; ++r) h[static_cast<size_t>(r * C + c)] = t[static_cast<size_t>(c * R + r)];
    }
    std::vector<float> b;
    if (li.has_bias) WQ_RETURN_IF_ERROR(read_f32(shards_, li.name + ".bias", {R}, optional_prefix_, &b));
    *out = make_linear_half(dtype_, std::move(h), li.out_features, li.in_features,
                            li.has_bias ? b.data() : nullptr);
    if (!*out) return Status::Error(StatusCode::kOutOfMemory, "could not build linear layer " + li.name);
    return Status::Ok();
  }
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

void PartsSource::add_quantized_tensor(std::string name, std::unique_ptr<LinearLayer> table) {
  quantized_.emplace_back(std::move(name), std::move(table));
}

Status PartsSource::quantized_tensor(const ParamInfo& info, std::unique_ptr<LinearLayer>* out) {
  out->reset();
  for (auto& t : quantized_) {
    if (t.first != info.name || !t.second) continue;
    if (info.shape.size() != 2 || t.second->out_features != info.shape[0] ||
        t.second->in_features != info.shape[1]) {
      return Status::Error(StatusCode::kShapeMismatch,
                           "quantized table '" + info.name + "' is [" +
                               std::to_string(t.second->out_features) + ", " +
                               std::to_string(t.second->in_features) + "], expected " +
                               shape_str(info.shape));
    }
    *out = std::move(t.second);
    return Status::Ok();
  }
  return Status::Ok();
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
    : weights_(weights), source_(source), status_(std::make_shared<Status>()) {
  if (source_ != nullptr) weights_->dtype_ = source_->dtype();
}

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
    Status s = Status::Ok();
    if (kind == ParamKind::kEmbedding && p.info.shape.size() == 2) {
      s = source_->quantized_tensor(p.info, &p.quantized);
    }
    if (s.ok() && !p.quantized && source_->dtype() != FloatType::kF32) {
      p.type = source_->dtype();
      s = source_->tensor_half(p.info, p.type, &p.half);
    } else if (s.ok() && !p.quantized) {
      s = source_->tensor(p.info, &p.data);
    }
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
    if (l.layer && l.layer->scheme() == LinearScheme::kF32 && source_->dtype() != FloatType::kF32) {
      // A source that only has float32 layers: round this one to the model's type.
      std::vector<float> w(static_cast<size_t>(out_features) * static_cast<size_t>(in_features));
      l.layer->dequantize_weight(w.data());
      const std::vector<float> b = l.layer->bias();
      std::unique_ptr<LinearLayer> half;
      Status s = make_linear_quantized(w.data(), out_features, in_features,
                                       b.empty() ? nullptr : b.data(),
                                       {float_type_scheme(source_->dtype()), false, 0}, &half, nullptr);
      if (!s.ok()) {
        fail(Status::Error(s.code, l.info.name + ": " + s.message));
        return -1;
      }
      l.layer = std::move(half);
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
  r->quantized = layer != nullptr && !is_float_scheme(layer->scheme());
  r->bytes_after = layer != nullptr ? layer->weight_bytes() : 0;
  r->scheme_id = layer != nullptr ? layer->scheme() : LinearScheme::kF32;
  r->bits = 32;
  r->asymmetric = false;
  r->group_size = 0;
  r->fallback.clear();
  r->method = QuantMethod::kRtn;
  r->codebook = Codebook::kNone;
  r->zeros = 0;
  r->hqq_grid = false;
  r->range_search = 0;
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
      r->hqq_grid = d.method == QuantMethod::kHqq;
      r->range_search = d.range_search;
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

float* Weights::mutable_param_f32(std::string_view name) {
  for (Param& p : params_)
    if (p.info.name == name) return p.type == FloatType::kF32 && !p.quantized && !p.data.empty() ? p.data.data() : nullptr;
  return nullptr;
}

void Weights::forward_linear(size_t i, const float* x, size_t m, float* y) const {
  const Linear& l = linears_[i];
  if (observer_ != nullptr) observer_->observe(i, x, m);
  if (l.layer) {
    l.layer->forward_model(x, m, y);
    return;
  }
  const Param* t = find_param(l.info.tied_to);
  if (t->quantized) {
    t->quantized->forward_model(x, m, y);
    return;
  }
  if (t->type != FloatType::kF32) {
    linear_detail::forward_half(t->type, t->half.data(), l.info.out_features, l.info.in_features,
                                nullptr, x, m, y);
    return;
  }
  nn::gemm_nt_f32(x, m, t->data.data(), static_cast<size_t>(l.info.out_features),
                  static_cast<size_t>(l.info.in_features), y);
}

const float* Weights::param_f32(size_t i, std::vector<float>* scratch) const {
  const Param& p = params_[i];
  if (p.quantized) {  // a quantized embedding table, dequantized whole
    scratch->resize(static_cast<size_t>(p.info.shape[0]) * static_cast<size_t>(p.info.shape[1]));
    p.quantized->dequantize_weight(scratch->data());
    return scratch->data();
  }
  if (p.type == FloatType::kF32) return p.data.data();
  scratch->resize(p.half.size());
  linear_detail::widen_half(p.type, p.half.data(), p.half.size(), scratch->data());
  return scratch->data();
}

void Weights::read_param(size_t i, size_t offset, size_t n, float* out) const {
  const Param& p = params_[i];
  if (p.type == FloatType::kF32) {
    std::memcpy(out, p.data.data() + offset, n * sizeof(float));
  } else {
    linear_detail::widen_half(p.type, p.half.data() + offset, n, out);
  }
}

std::vector<FloatParamView> Weights::float_params() const {
  std::vector<FloatParamView> out;
  for (const Param& p : params_) {
    if (p.quantized) continue;
    if (p.type == FloatType::kF32) {
      out.push_back({p.info.name, p.info.shape, p.data.data(), p.data.size(), p.info.kind});
    } else {
      out.push_back({p.info.name, p.info.shape, nullptr, p.half.size(), p.info.kind, p.type,
                     p.half.data()});
    }
  }
  return out;
}

const LinearLayer* Weights::quantized_param(std::string_view name) const {
  const Param* p = find_param(name);
  return p != nullptr ? p->quantized.get() : nullptr;
}

void Weights::gather_rows(size_t i, const int32_t* ids, size_t n, bool accumulate, float* x) const {
  const Param& p = params_[i];
  const size_t d = static_cast<size_t>(p.info.shape[1]);
  if (p.quantized) {
    if (!accumulate) {
      for (size_t r = 0; r < n; ++r) p.quantized->dequantize_rows(static_cast<size_t>(ids[r]), 1, x + r * d);
      return;
    }
    thread_local std::vector<float> row;
    row.resize(d);
    for (size_t r = 0; r < n; ++r) {
      p.quantized->dequantize_rows(static_cast<size_t>(ids[r]), 1, row.data());
      nn::add_inplace(x + r * d, row.data(), d);
    }
    return;
  }
  if (p.type != FloatType::kF32) {
    for (size_t r = 0; r < n; ++r) {
      if (!accumulate) {
        read_param(i, static_cast<size_t>(ids[r]) * d, d, x + r * d);
        continue;
      }
      thread_local std::vector<float> row;
      row.resize(d);
      read_param(i, static_cast<size_t>(ids[r]) * d, d, row.data());
      nn::add_inplace(x + r * d, row.data(), d);
    }
    return;
  }
  for (size_t r = 0; r < n; ++r) {
    const float* src = p.data.data() + static_cast<size_t>(ids[r]) * d;
    if (accumulate) {
      nn::add_inplace(x + r * d, src, d);
    } else {
      std::memcpy(x + r * d, src, d * sizeof(float));
    }
  }
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

QuantMethod Weights::linear_method(std::string_view name) const {
  for (const Linear& l : linears_) {
    if (l.info.name == name) return l.method;
  }
  return QuantMethod::kRtn;
}

Status Weights::set_linear_method(std::string_view name, QuantMethod m) {
  for (Linear& l : linears_) {
    if (l.info.name != name) continue;
    l.method = m;
    return Status::Ok();
  }
  return Status::Error(StatusCode::kNotFound, "no linear layer named '" + std::string(name) + "'");
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
    s.method = QuantMethod::kRtn;
    return Status::Ok();
  }
  return Status::Error(StatusCode::kNotFound,
                       "replace_linear: no linear layer named '" + std::string(name) + "'");
}

}  // namespace webquant
