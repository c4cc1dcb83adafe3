// StreamingBuilder (webquant/model_checkpoint.h): quantizes a float checkpoint shard by shard,
// for every architecture. Memory: the model being built (quantized linears and tables, float32
// parameters) plus one float32 copy of the tensor in hand (of a block of rows, for an embedding
// table quantized on arrival); the caller holds one shard's bytes at a time.
#include <algorithm>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "webquant/causal_lm.h"
#include "webquant/model_checkpoint.h"

namespace webquant {
namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

enum class Kind { kParam, kWeight, kBias };

struct Expected {
  Kind kind;
  size_t index;  // parameter index for kParam, linear index for weights and biases
  std::vector<int64_t> shape;
  size_t order;  // position in model order (for missing())
  bool seen = false;
};

}  // namespace

struct StreamingBuilder::State {
  std::string config_json;
  ModelQuantOptions options;
  LoadOptions load_options;
  ModelLayout layout;
  std::vector<std::vector<float>> params;              // per layout parameter
  std::vector<std::unique_ptr<LinearLayer>> linears;   // per layout linear
  // Per layout parameter: the spec of an embedding table quantized on arrival (resolve_embedding_spec)
  // and the table once built (its floats are then freed).
  std::vector<std::optional<LinearQuantSpec>> table_spec;
  std::vector<std::unique_ptr<LinearLayer>> tables;
  std::vector<LayerQuantReport> table_report;
  std::vector<std::vector<float>> bias;  // per linear, until its weight arrives
  std::vector<LayerQuantReport> report;  // per linear
  std::unordered_map<std::string, Expected> expected;
  std::vector<std::string> order;  // expected names in model order
  size_t seen = 0;
  std::vector<float> w;  // float32 copy of the weight in hand (reused)
};

StreamingBuilder::StreamingBuilder() = default;
StreamingBuilder::~StreamingBuilder() = default;

Status StreamingBuilder::begin(std::string_view config_json, const ModelQuantOptions& options,
                               const LoadOptions& load_options) {
  st_.reset();
  auto s = std::make_unique<State>();
  ModelInfo info;
  WQ_RETURN_IF_ERROR(CausalLM::layout(config_json, &s->layout, &info));
  if (load_options.max_context < 0 || load_options.max_context > info.max_position_embeddings) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "streaming: max_context must be in [0, max_position_embeddings]");
  }
  s->config_json = std::string(config_json);
  s->options = options;
  s->load_options = load_options;
  const ModelLayout& L = s->layout;
  s->params.resize(L.params.size());
  s->linears.resize(L.linears.size());
  s->bias.resize(L.linears.size());
  s->report.resize(L.linears.size());
  s->table_spec.resize(L.params.size());
  s->tables.resize(L.params.size());
  s->table_report.resize(L.params.size());
  for (size_t p = 0; p < L.params.size(); ++p) {
    LinearQuantSpec spec;
    std::string head;
    if (resolve_embedding_spec(options, L, p, &spec, &head)) s->table_spec[p] = spec;
  }

  auto expect = [&](const std::string& name, Kind kind, size_t index, std::vector<int64_t> shape) {
    s->expected.emplace(name, Expected{kind, index, std::move(shape), s->order.size()});
    s->order.push_back(name);
  };
  for (const ModelLayout::Entry& e : L.order) {
    if (!e.is_linear) {
      const ParamInfo& p = L.params[e.index];
      expect(p.name, Kind::kParam, e.index, p.shape);
      continue;
    }
    const LinearInfo& li = L.linears[e.index];
    if (!li.tied_to.empty()) continue;  // quantized from the tied parameter in finish()
    const std::vector<int64_t> shape = li.conv1d ? std::vector<int64_t>{li.in_features, li.out_features}
                                                 : std::vector<int64_t>{li.out_features, li.in_features};
    expect(li.name + ".weight", Kind::kWeight, e.index, shape);
    if (li.has_bias) expect(li.name + ".bias", Kind::kBias, e.index, {li.out_features});
  }
  st_ = std::move(s);
  return Status::Ok();
}

namespace {

// Builds linear i's layer from the float32 weight (and bias, when known), as quantize() would.
Status build_linear(const LinearInfo& li, const float* w,
                    const std::vector<float>& bias, const ModelQuantOptions& options,
                    std::unique_ptr<LinearLayer>* layer, LayerQuantReport* r) {
  r->name = li.name;
  r->out_features = li.out_features;
  r->in_features = li.in_features;
  const size_t out = static_cast<size_t>(li.out_features), in = static_cast<size_t>(li.in_features);
  // What the float32 layer CausalLM::load builds would hold.
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
  report_layer_state(layer->get(), r);
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
  }
  *layer = std::move(fresh);
  r->bytes_after = (*layer)->weight_bytes();
  return Status::Ok();
}

// Quantizes an embedding table [rows, dim] straight from its stored tensor, a block of rows at a
// time, so that its float32 copy is never resident (a SmolLM2 table is 113 MB as float32). Every
// granularity a table can have puts its scales per row, so the blocks quantize exactly as the
// whole table would (bit-identical codes and scales).
Status quantize_table_blocks(const io::TensorView& t, int rows, int dim, const LinearQuantSpec& spec,
                             std::unique_ptr<LinearLayer>* out, std::string* note) {
  constexpr int kRowsPerBlock = 1024;
  const size_t esize = t.nbytes / (static_cast<size_t>(rows) * static_cast<size_t>(dim));
  LinearQuantizedData all;
  std::vector<float> f;
  for (int r0 = 0; r0 < rows; r0 += kRowsPerBlock) {
    const int n = std::min(kRowsPerBlock, rows - r0);
    io::TensorView v = t;
    v.shape = {n, dim};
    v.data = t.data + static_cast<size_t>(r0) * static_cast<size_t>(dim) * esize;
    v.nbytes = static_cast<size_t>(n) * static_cast<size_t>(dim) * esize;
    f.resize(static_cast<size_t>(n) * static_cast<size_t>(dim));
    WQ_RETURN_IF_ERROR(io::tensor_to_f32(v, f.data()));
    std::unique_ptr<LinearLayer> part;
    Status st = make_linear_quantized(f.data(), n, dim, nullptr, spec, &part, note);
    if (!st.ok()) return Status::Error(st.code, "rows " + std::to_string(r0) + ".. : " + st.message);
    LinearQuantizedData d;
    WQ_RETURN_IF_ERROR(part->export_quantized(&d));
    if (r0 == 0) {
      all = std::move(d);
      all.out_features = rows;
      continue;
    }
    all.q.insert(all.q.end(), d.q.begin(), d.q.end());
    all.scales.insert(all.scales.end(), d.scales.begin(), d.scales.end());
    all.zero_points.insert(all.zero_points.end(), d.zero_points.begin(), d.zero_points.end());
  }
  return make_linear_from_quantized(all, out);
}

// An embedding table as Weights::quantize leaves it (same spec, same report line). A quantized
// table is built from `stored` by blocks of rows; a float one is converted into *floats.
Status build_table(const ModelLayout& layout, size_t p, const LinearQuantSpec& spec,
                   const io::TensorView& stored, std::vector<float>* floats,
                   std::unique_ptr<LinearLayer>* table, LayerQuantReport* r) {
  const ParamInfo& info = layout.params[p];
  LinearQuantSpec unused;
  std::string head;
  resolve_embedding_spec(ModelQuantOptions{}, layout, p, &unused, &head);
  r->name = info.name.substr(0, info.name.rfind('.'));
  r->embedding = true;
  r->out_features = static_cast<int>(info.shape[0]);
  r->in_features = static_cast<int>(info.shape[1]);
  r->bytes_before = static_cast<size_t>(stored.numel()) * sizeof(float);
  std::string note;
  if (spec.scheme != LinearScheme::kF32) {
    Status st = quantize_table_blocks(stored, r->out_features, r->in_features, spec, table, &note);
    if (!st.ok()) return Status::Error(st.code, info.name + ": " + st.message);
    note += std::string(note.empty() ? "" : "; ") + "rows dequantized on gather";
  } else {
    floats->resize(static_cast<size_t>(stored.numel()));
    WQ_RETURN_IF_ERROR(io::tensor_to_f32(stored, floats->data()));
  }
  if (!head.empty()) note += std::string(note.empty() ? "" : "; ") + "shared with the tied " + head;
  report_layer_state(table->get(), r);
  r->tied = false;
  r->scheme = *table ? (*table)->describe() : "f32";
  r->bytes_after = *table ? (*table)->weight_bytes() : r->bytes_before;
  r->note = note;
  return Status::Ok();
}

}  // namespace

Status StreamingBuilder::add_shard(const io::SafetensorsFile& shard) {
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
      if (it == s.expected.end() && !s.layout.optional_prefix.empty()) {
        it = s.expected.find(s.layout.optional_prefix + t.name);  // stored without the prefix
      }
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
      if (e.kind == Kind::kParam && s.table_spec[e.index]) {  // an embedding table, from `t`
        e.seen = true;
        ++s.seen;
        Status st = build_table(s.layout, e.index, *s.table_spec[e.index], t, &s.params[e.index],
                                &s.tables[e.index], &s.table_report[e.index]);
        if (!st.ok()) return fail(st);
        continue;
      }
      std::vector<float>* dst = nullptr;
      switch (e.kind) {
        case Kind::kParam: dst = &s.params[e.index]; break;
        case Kind::kBias: dst = &s.bias[e.index]; break;
        case Kind::kWeight: dst = &s.w; break;
      }
      dst->resize(static_cast<size_t>(t.numel()));
      Status st = io::tensor_to_f32(t, dst->data());
      if (!st.ok()) return fail(st);
      const LinearInfo* li = e.kind == Kind::kParam ? nullptr : &s.layout.linears[e.index];
      if (e.kind == Kind::kWeight && li->conv1d) {  // HF Conv1D [in, out] -> [out, in]
        const size_t R = static_cast<size_t>(li->out_features), C = static_cast<size_t>(li->in_features);
        std::vector<float> tr(s.w.size());
        for (size_t c = 0; c < C; ++c) {
          for (size_t r = 0; r < R; ++r) tr[r * C + c] = s.w[c * R + r];
        }
        s.w.swap(tr);
      }
      e.seen = true;
      ++s.seen;

      if (e.kind == Kind::kWeight) {
        st = build_linear(*li, s.w.data(), s.bias[e.index], s.options, &s.linears[e.index],
                          &s.report[e.index]);
        if (!st.ok()) return fail(st);
        s.bias[e.index] = std::vector<float>();  // the layer keeps its own copy
      } else if (e.kind == Kind::kBias && s.linears[e.index]) {
        st = attach_bias(li->name, s.bias[e.index], &s.linears[e.index], &s.report[e.index]);
        if (!st.ok()) return fail(st);
        s.bias[e.index] = std::vector<float>();
      }
    }
  }
  // The float copy of the largest tensor is not needed between shards.
  s.w = std::vector<float>();
  return Status::Ok();
}

std::vector<std::string> StreamingBuilder::missing() const {
  std::vector<std::string> out;
  if (!st_) return out;
  for (const std::string& name : st_->order) {
    if (!st_->expected.at(name).seen) out.push_back(name);
  }
  return out;
}

size_t StreamingBuilder::tensors_seen() const { return st_ ? st_->seen : 0; }
size_t StreamingBuilder::tensors_expected() const { return st_ ? st_->order.size() : 0; }

Status StreamingBuilder::finish(std::unique_ptr<CausalLM>* out, std::vector<LayerQuantReport>* report) {
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
  for (size_t i = 0; i < s.layout.linears.size(); ++i) {
    const LinearInfo& li = s.layout.linears[i];
    if (li.tied_to.empty()) continue;
    // As quantize() treats a tied head: it reads its table, which was quantized on arrival with
    // the head's spec unless the head is excluded.
    LayerQuantReport& r = s.report[i];
    r.name = li.name;
    r.out_features = li.out_features;
    r.in_features = li.in_features;
    r.bytes_before = 0;
    size_t p = 0;
    while (s.layout.params[p].name != li.tied_to) ++p;  // VarBuilder checked that it exists
    const LinearLayer* table = s.tables[p].get();
    const std::string tied = "tied to " + li.tied_to.substr(0, li.tied_to.rfind(".weight"));
    report_layer_state(table, &r);
    r.tied = true;
    r.bytes_after = 0;
    r.scheme = table ? table->describe() : "f32";
    LinearQuantSpec spec;
    if (!resolve_layer_spec(s.options, li.name, &spec)) {
      r.scheme += " (" + tied + ")";
      r.note = "excluded";
    } else {
      r.note = tied + (table ? ": the matmul runs on the quantized rows of the table" : " (f32)");
    }
  }
  PartsSource parts;
  for (size_t p = 0; p < s.params.size(); ++p) parts.add_tensor(s.layout.params[p].name, std::move(s.params[p]));
  for (size_t i = 0; i < s.linears.size(); ++i) parts.add_linear(s.layout.linears[i].name, std::move(s.linears[i]));
  for (size_t p = 0; p < s.tables.size(); ++p) {
    if (s.tables[p]) parts.add_quantized_tensor(s.layout.params[p].name, std::move(s.tables[p]));
  }
  Status st = CausalLM::load(s.config_json, parts, out, s.load_options);
  if (!st.ok()) {
    st_.reset();
    return st;
  }
  if (report != nullptr) {
    *report = std::move(s.report);
    for (size_t p = 0; p < s.table_spec.size(); ++p) {
      if (s.table_spec[p]) report->push_back(std::move(s.table_report[p]));
    }
  }
  st_.reset();  // add_shard() / finish() now ask for begin()
  return Status::Ok();
}

}  // namespace webquant
