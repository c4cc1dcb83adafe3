// CheckpointQuantizer (webquant/checkpoint_quant.h): any safetensors checkpoint, shard by shard,
// into webquant's quantized format. Memory: the output so far, plus one float32 copy (and one
// quantized layer) of the tensor in hand; the caller holds one source shard at a time.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "quant/checkpoint_format.h"
#include "webquant/causal_lm.h"
#include "webquant/checkpoint_quant.h"
#include "webquant/quant.h"

namespace webquant {

using ckpt::JsonValue;
using ckpt::OwnedTensor;

struct CheckpointQuantizer::State {
  JsonValue config;
  std::string model_type;
  CheckpointQuantOptions options;
  int shard_count = 0;
  bool has_index = false;
  std::map<std::string, std::vector<std::string>> index_by_shard;  // shard -> tensors it must hold
  std::set<std::string> added_shards;
  std::set<std::string> seen;  // source tensor names
  std::vector<std::string> shard_names;
  std::vector<std::vector<OwnedTensor>> out;  // per output shard
  std::vector<std::pair<std::string, JsonValue>> layers;  // module -> entry (without "bias")
  std::vector<TensorQuantReport> report;
  std::map<std::string, std::string> metadata;  // set by finish()
  bool finished = false;
  std::vector<bool> taken;
  bool tied = false;            // the output head reads the token embedding
  std::string tied_head_from;   // the embedding table quantized for a tied head
  std::vector<std::pair<std::string, JsonValue>> tables;  // quantized embedding tables (module -> entry)
  // For an architecture webquant runs, its layout decides what is a linear layer, the head's
  // name and what it is tied to (otherwise: the name rules of checkpoint_quant.h).
  bool runnable = false;
  ModelLayout layout;
  std::string head = "lm_head";
  std::string tied_to;          // full name of the tied embedding ("" when unknown)
  int head_out = 0, head_in = 0;
};

CheckpointQuantizer::CheckpointQuantizer() = default;
CheckpointQuantizer::~CheckpointQuantizer() = default;

namespace {

Status invalid(std::string msg) { return Status::Error(StatusCode::kInvalidArgument, std::move(msg)); }

Status parse_object(std::string_view text, const std::string& what, JsonValue* out) {
  Status st = io::parse_json(text, out);
  if (!st.ok()) return ckpt::corrupt(what + ": " + st.message);
  if (!out->is_object()) return ckpt::corrupt(what + " must be a JSON object");
  return Status::Ok();
}

// True when `stored` is how a checkpoint may store the full name `name` (layout.optional_prefix).
bool is_stored_name(const ModelLayout& layout, const std::string& name, const std::string& stored) {
  for (const std::string& n : stored_names(layout, name)) {
    if (n == stored) return true;
  }
  return false;
}

// True when `module` (as stored) is a linear module of the layout.
bool is_layout_linear(const ModelLayout& layout, const std::string& module) {
  for (const LinearInfo& li : layout.linears) {
    if (is_stored_name(layout, li.name, module)) return true;
  }
  return false;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string last_component(const std::string& module) {
  const size_t dot = module.rfind('.');
  return dot == std::string::npos ? module : module.substr(dot + 1);
}

bool is_embedding(const std::string& module) {
  std::string last = last_component(module);
  std::transform(last.begin(), last.end(), last.begin(), [](unsigned char c) { return std::tolower(c); });
  return last.find("embed") != std::string::npos || last == "wte" || last == "wpe" || last == "shared" ||
         last == "relative_attention_bias";
}

// GPT-2's Conv1D modules (weights stored [in, out]).
bool is_gpt2_conv1d(const std::string& model_type, const std::string& module) {
  if (model_type != "gpt2") return false;
  for (const char* s : {".attn.c_attn", ".attn.c_proj", ".mlp.c_fc", ".mlp.c_proj"}) {
    if (ends_with(module, s)) return true;
  }
  return false;
}

bool is_float_dtype(const std::string& d) { return d == "F32" || d == "F16" || d == "BF16"; }

// The "default" entry: the requested default spec.
JsonValue default_entry(const LinearQuantSpec& spec) {
  JsonValue o = ckpt::jobj();
  ckpt::put(&o, "scheme", ckpt::jstr(linear_scheme_name(spec.scheme)));
  if (spec.scheme == LinearScheme::kF32) return o;
  const int bits = ckpt::scheme_bits(spec.scheme);
  const bool per_channel = bits == 8 || spec.group_size == 0;
  ckpt::put(&o, "bits", ckpt::jnum(bits));
  ckpt::put(&o, "mode", ckpt::jstr(spec.asymmetric && bits < 8 ? "asymmetric" : "symmetric"));
  ckpt::put(&o, "granularity", ckpt::jstr(per_channel ? "per-channel" : "per-group"));
  if (!per_channel) ckpt::put(&o, "group_size", ckpt::jnum(spec.group_size));
  ckpt::put(&o, "activations", ckpt::jstr(ckpt::scheme_a8(spec.scheme) ? "int8" : "float"));
  ckpt::put(&o, "packing", ckpt::jstr(bits == 8 ? "none" : "lsb-first"));
  ckpt::MethodRecord m;
  m.method = spec.method;
  m.range_search = spec.method == QuantMethod::kHqq ? spec.range_search : 0;
  ckpt::put_method(m, &o);
  if (spec.codebook != Codebook::kNone) ckpt::put(&o, "codebook", ckpt::jstr(codebook_name(spec.codebook)));
  return o;
}

}  // namespace

Status CheckpointQuantizer::begin(std::string_view config_json, std::string_view index_json,
                                  int shard_count, const CheckpointQuantOptions& options) {
  st_.reset();
  if (shard_count < 1) return invalid("quantize checkpoint: shard_count must be >= 1");
  auto s = std::make_unique<State>();
  WQ_RETURN_IF_ERROR(parse_object(config_json, "config.json", &s->config));
  const JsonValue* mt = s->config.get("model_type");
  if (mt != nullptr && mt->is_string()) s->model_type = mt->string;
  if (!index_json.empty()) {
    JsonValue index;
    WQ_RETURN_IF_ERROR(parse_object(index_json, "model.safetensors.index.json", &index));
    const JsonValue* map = index.get("weight_map");
    if (map == nullptr || !map->is_object()) {
      return ckpt::corrupt("model.safetensors.index.json has no \"weight_map\" object");
    }
    for (const auto& kv : map->object) {
      if (!kv.second.is_string()) {
        return ckpt::corrupt("model.safetensors.index.json: weight_map[\"" + kv.first + "\"] must be a file name");
      }
      s->index_by_shard[kv.second.string].push_back(kv.first);
    }
    s->has_index = true;
  }
  ModelInfo info;
  if (CausalLM::layout(config_json, &s->layout, &info).ok()) {
    s->runnable = true;
    for (const LinearInfo& li : s->layout.linears) {
      if (!li.is_head) continue;
      s->head = li.name;
      s->tied = !li.tied_to.empty();
      s->tied_to = li.tied_to;
      s->head_out = li.out_features;
      s->head_in = li.in_features;
    }
  } else {
    const JsonValue* tied = s->config.get("tie_word_embeddings");
    s->tied = tied != nullptr && tied->type == JsonValue::Type::kBool && tied->boolean;
  }
  s->shard_count = shard_count;
  s->options = options;
  st_ = std::move(s);
  return Status::Ok();
}

namespace {

// Quantizes one float tensor: appends its output tensors, its "layers" entry and its report.
Status quantize_tensor(const io::TensorView& t, const std::string& module, bool transposed, bool conv,
                       const LinearQuantSpec& spec_in, std::vector<OwnedTensor>* out, JsonValue* entry,
                       TensorQuantReport* r) {
  const int64_t rows = transposed ? t.shape[1] : t.shape[0];
  const int64_t cols = transposed ? t.shape[0] : t.numel() / t.shape[0];
  if (rows > std::numeric_limits<int>::max() || cols > std::numeric_limits<int>::max()) {
    return invalid("tensor '" + t.name + "' is too large to quantize as one layer");
  }
  std::vector<float> w(static_cast<size_t>(t.numel()));
  WQ_RETURN_IF_ERROR(io::tensor_to_f32(t, w.data()));
  if (transposed) {  // [in, out] -> [out, in]
    std::vector<float> wt(w.size());
    for (int64_t i = 0; i < cols; ++i) {
      for (int64_t o = 0; o < rows; ++o) wt[o * cols + i] = w[i * rows + o];
    }
    w.swap(wt);
  }
  LinearQuantSpec spec = spec_in;
  if (conv) spec.group_size = 0;  // per output channel
  std::unique_ptr<LinearLayer> layer;
  std::string note;
  Status st = make_linear_quantized(w.data(), static_cast<int>(rows), static_cast<int>(cols), nullptr,
                                    spec, &layer, &note);
  if (!st.ok()) return Status::Error(st.code, "tensor '" + t.name + "': " + st.message);
  LinearQuantizedData d;
  WQ_RETURN_IF_ERROR(layer->export_quantized(&d));
  const size_t first = out->size();
  WQ_RETURN_IF_ERROR(ckpt::encode_quantized(module, d, out));

  std::vector<float> back(w.size());
  layer->dequantize_weight(back.data());
  const ErrorMetrics m = error_metrics(w.data(), back.data(), w.size());

  *entry = ckpt::quantized_entry(d, false);
  if (transposed) ckpt::put(entry, "transposed", ckpt::jbool(true));
  if (conv) {
    JsonValue shape = ckpt::jarr();
    for (int64_t v : t.shape) shape.array.push_back(ckpt::jnum(static_cast<double>(v)));
    ckpt::put(entry, "shape", std::move(shape));
  }
  ckpt::put(entry, "source_dtype", ckpt::jstr(t.dtype));

  r->quantized = true;
  r->scheme = layer->describe();
  r->transposed = transposed;
  r->bytes_after = 0;
  for (size_t i = first; i < out->size(); ++i) r->bytes_after += (*out)[i].bytes.size();
  r->mse = m.mse;
  r->max_abs = m.max_abs;
  r->sqnr_db = m.sqnr_db;
  r->note = note;
  return Status::Ok();
}

}  // namespace

Status CheckpointQuantizer::add_shard(const std::string& shard_name, const io::SafetensorsFile& shard) {
  if (!st_ || st_->finished) return invalid("quantize checkpoint: add_shard() needs begin() first (and not after finish())");
  State& s = *st_;
  auto fail = [this, &shard_name](Status st) {
    st_.reset();
    return Status::Error(st.code, shard_name + ": " + st.message);
  };
  if (static_cast<int>(s.added_shards.size()) >= s.shard_count) {
    return fail(invalid("more shards than the " + std::to_string(s.shard_count) + " announced"));
  }
  if (!s.added_shards.insert(shard_name).second) return fail(invalid("shard added twice"));
  if (s.has_index) {
    auto it = s.index_by_shard.find(shard_name);
    if (it != s.index_by_shard.end()) {
      for (const std::string& name : it->second) {
        if (shard.find(name) == nullptr) {
          return fail(Status::Error(StatusCode::kNotFound,
                                    "tensor '" + name + "' is mapped to this shard by "
                                    "model.safetensors.index.json but the shard does not hold it"));
        }
      }
    }
  }
  s.shard_names.push_back(shard_name);
  s.out.emplace_back();
  std::vector<OwnedTensor>& out = s.out.back();
  for (const io::TensorView& t : shard.tensors) {
    if (!s.seen.insert(t.name).second) {
      return fail(invalid("tensor '" + t.name + "' appears in more than one shard"));
    }
    TensorQuantReport r;
    r.name = t.name;
    r.dtype = t.dtype;
    r.shape = t.shape;
    r.bytes_before = t.nbytes;
    r.scheme = "kept";
    r.sqnr_db = std::numeric_limits<double>::infinity();
    const bool weight = ends_with(t.name, ".weight");
    const std::string module = weight ? t.name.substr(0, t.name.size() - 7) : t.name;
    const size_t nd = t.shape.size();
    const bool transposed = nd == 2 && is_gpt2_conv1d(s.model_type, module);
    LinearQuantSpec spec;
    bool quantize = false;
    if (!weight) {
      r.note = "not a .weight";
    } else if (!is_float_dtype(t.dtype)) {
      r.note = "dtype " + t.dtype;
    } else if (nd == 4 && !s.options.conv) {
      r.note = "conv (conv option off)";
    } else if (nd != 4 && (s.runnable ? !is_layout_linear(s.layout, module) : is_embedding(module))) {
      r.note = s.runnable && !is_embedding(module) ? "not a linear layer of the model" : "embedding";
    } else if (nd != 2 && nd != 4) {
      r.note = std::to_string(nd) + "-D";
    } else if (t.numel() == 0) {
      r.note = "empty";
    } else if (!resolve_layer_spec(s.options.quant, module, &spec)) {
      r.note = "excluded";
    } else if (spec.scheme == LinearScheme::kF32) {
      r.note = "f32 override";
    } else {
      quantize = true;
    }
    // A tied output head that is not excluded reads its embedding table quantized with the head's
    // scheme (as quantizeModel leaves it): the table is stored quantized under its module and
    // listed in "embeddings"; the head stays tied.
    LinearQuantSpec head;
    const bool is_tied_embedding =
        s.tied_to.empty() ? (last_component(module) == "embed_tokens" || last_component(module) == "wte")
                          : is_stored_name(s.layout, s.tied_to, t.name);
    if (s.tied && s.tied_head_from.empty() && nd == 2 && weight && is_float_dtype(t.dtype) &&
        is_tied_embedding && s.seen.count(s.head + ".weight") == 0 &&
        resolve_layer_spec(s.options.quant, s.head, &head) && head.scheme != LinearScheme::kF32) {
      JsonValue entry;
      Status st = quantize_tensor(t, module, false, false, head, &out, &entry, &r);
      if (!st.ok()) return fail(st);
      r.note += std::string(r.note.empty() ? "" : "; ") + "embedding table shared with the tied " +
                s.head + " (quantized with its scheme)";
      ckpt::put(&entry, "bias", ckpt::jbool(false));
      s.tables.emplace_back(module, std::move(entry));
      s.report.push_back(std::move(r));
      s.tied_head_from = t.name;
      continue;
    }
    if (quantize) {
      JsonValue entry;
      Status st = quantize_tensor(t, module, transposed, nd == 4, spec, &out, &entry, &r);
      if (!st.ok()) return fail(st);
      s.layers.emplace_back(module, std::move(entry));
    } else {
      // Kept: byte for byte, under its own name. A kept 2-D linear weight is listed as f32 so that a
      // loader finds every linear layer.
      if (weight && nd == 2 && is_float_dtype(t.dtype) && r.note != "embedding" &&
          r.note != "not a linear layer of the model") {
        JsonValue e = ckpt::jobj();
        ckpt::put(&e, "scheme", ckpt::jstr("f32"));
        const int64_t o = transposed ? t.shape[1] : t.shape[0], i = transposed ? t.shape[0] : t.shape[1];
        ckpt::put(&e, "out_features", ckpt::jnum(static_cast<double>(o)));
        ckpt::put(&e, "in_features", ckpt::jnum(static_cast<double>(i)));
        ckpt::put(&e, "source_dtype", ckpt::jstr(t.dtype));
        s.layers.emplace_back(module, std::move(e));
      }
      out.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
      r.bytes_after = t.nbytes;
      r.mse = 0;
      r.max_abs = 0;
    }
    s.report.push_back(std::move(r));
    if (t.name == s.head + ".weight" && !s.tied_head_from.empty()) {
      return fail(invalid("tensor '" + t.name + "' arrived after a head tied to '" + s.tied_head_from +
                          "' was quantized (config.json ties the embeddings)"));
    }
  }
  return Status::Ok();
}

Status CheckpointQuantizer::finish(CheckpointQuantResult* result) {
  if (result == nullptr) return invalid("quantize checkpoint: result is null");
  if (!st_ || st_->finished) return invalid("quantize checkpoint: finish() needs begin() first");
  State& s = *st_;
  if (static_cast<int>(s.added_shards.size()) != s.shard_count) {
    const std::string msg = "quantize checkpoint: " + std::to_string(s.added_shards.size()) + " of " +
                            std::to_string(s.shard_count) + " shards were added";
    st_.reset();
    return invalid(msg);
  }
  for (const auto& kv : s.index_by_shard) {
    if (s.added_shards.count(kv.first) == 0) {
      const std::string msg = "model.safetensors.index.json maps tensor '" + kv.second.front() +
                              "' to " + kv.first + ", which is not one of the shards";
      st_.reset();
      return ckpt::corrupt(msg);
    }
  }

  JsonValue by_name = ckpt::jobj();
  for (auto& kv : s.layers) {
    ckpt::put(&kv.second, "bias", ckpt::jbool(s.seen.count(kv.first + ".bias") != 0));
    by_name.object.emplace_back(kv.first, std::move(kv.second));
  }
  // A tied output head has no tensor: list it so that a loader finds it (see the header).
  const JsonValue* vocab = s.config.get("vocab_size");
  const JsonValue* hidden = s.config.get("hidden_size");
  if (hidden == nullptr) hidden = s.config.get("n_embd");
  double out_f = s.head_out, in_f = s.head_in;
  if (out_f == 0 && vocab != nullptr && vocab->is_number()) out_f = vocab->number;
  if (in_f == 0 && hidden != nullptr && hidden->is_number()) in_f = hidden->number;
  if (s.tied && s.seen.count(s.head + ".weight") == 0 && out_f > 0 && in_f > 0) {
    JsonValue e = ckpt::jobj();
    ckpt::put(&e, "scheme", ckpt::jstr("f32"));
    ckpt::put(&e, "out_features", ckpt::jnum(out_f));
    ckpt::put(&e, "in_features", ckpt::jnum(in_f));
    ckpt::put(&e, "bias", ckpt::jbool(false));
    ckpt::put(&e, "tied", ckpt::jbool(true));
    by_name.object.emplace_back(s.head, std::move(e));
  }
  JsonValue q = ckpt::jobj();
  ckpt::put(&q, "quant_method", ckpt::jstr(ckpt::kQuantMethod));
  ckpt::put(&q, "version", ckpt::jnum(ckpt::kFormatVersion));
  ckpt::put(&q, "packing", ckpt::jstr("lsb-first"));
  ckpt::put(&q, "default", default_entry(s.options.quant.default_spec));
  ckpt::put(&q, "layers", std::move(by_name));
  if (!s.tables.empty()) {
    JsonValue tables = ckpt::jobj();
    for (auto& kv : s.tables) tables.object.emplace_back(kv.first, std::move(kv.second));
    ckpt::put(&q, "embeddings", std::move(tables));
  }
  CheckpointQuantResult r;
  r.quantization_config_json = io::write_json(q);
  ckpt::put(&s.config, ckpt::kMetadataKey, std::move(q));
  r.config_json = io::write_json(s.config);
  s.metadata = {{"format", "webquant"}, {ckpt::kMetadataKey, r.quantization_config_json}};

  const size_t n = s.out.size();
  if (n == 1) {
    r.shard_names.push_back("model.safetensors");
  } else {
    r.shard_names = s.shard_names;
  }
  if (n > 1) {
    JsonValue index = ckpt::jobj();
    JsonValue meta = ckpt::jobj();
    size_t total = 0;
    std::vector<std::pair<std::string, size_t>> weight_map;
    for (size_t i = 0; i < n; ++i) {
      for (const OwnedTensor& t : s.out[i]) {
        total += t.bytes.size();
        weight_map.emplace_back(t.name, i);
      }
    }
    ckpt::put(&meta, "total_size", ckpt::jnum(static_cast<double>(total)));
    ckpt::put(&meta, "format", ckpt::jstr("webquant"));
    ckpt::put(&index, "metadata", std::move(meta));
    std::sort(weight_map.begin(), weight_map.end());
    JsonValue map = ckpt::jobj();
    for (const auto& kv : weight_map) map.object.emplace_back(kv.first, ckpt::jstr(r.shard_names[kv.second]));
    ckpt::put(&index, "weight_map", std::move(map));
    r.index_json = io::write_json(index);
  }
  r.tensors = std::move(s.report);
  s.finished = true;
  s.taken.assign(n, false);
  *result = std::move(r);
  return Status::Ok();
}

Status CheckpointQuantizer::shard_pieces(size_t i, std::vector<uint8_t>* header,
                                         std::vector<std::pair<const uint8_t*, size_t>>* pieces) const {
  if (header == nullptr || pieces == nullptr) return invalid("shard_pieces: null output");
  if (!st_ || !st_->finished) return invalid("shard_pieces() needs finish() first");
  const State& s = *st_;
  if (i >= s.out.size()) return invalid("shard_pieces: no output shard " + std::to_string(i));
  if (s.taken[i]) return invalid("shard_pieces: shard " + std::to_string(i) + " was already released");
  std::vector<io::TensorRecord> records;
  records.reserve(s.out[i].size());
  for (const OwnedTensor& t : s.out[i]) records.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
  std::vector<size_t> order;
  WQ_RETURN_IF_ERROR(io::write_safetensors_header(records, s.metadata, header, &order));
  pieces->clear();
  for (size_t k : order) pieces->emplace_back(records[k].data, records[k].nbytes);
  return Status::Ok();
}

Status CheckpointQuantizer::release_shard(size_t i) {
  if (!st_ || !st_->finished) return invalid("release_shard() needs finish() first");
  State& s = *st_;
  if (i >= s.out.size()) return invalid("release_shard: no output shard " + std::to_string(i));
  s.out[i] = std::vector<OwnedTensor>();
  s.taken[i] = true;
  return Status::Ok();
}

Status CheckpointQuantizer::take_shard(size_t i, std::vector<uint8_t>* bytes) {
  if (bytes == nullptr) return invalid("take_shard: bytes is null");
  std::vector<uint8_t> out;
  std::vector<std::pair<const uint8_t*, size_t>> pieces;
  WQ_RETURN_IF_ERROR(shard_pieces(i, &out, &pieces));
  size_t total = out.size();
  for (const auto& p : pieces) total += p.second;
  out.reserve(total);
  for (const auto& p : pieces) out.insert(out.end(), p.first, p.first + p.second);
  *bytes = std::move(out);
  return release_shard(i);
}

}  // namespace webquant
