// webquant's quantized checkpoints, for every architecture: saving the model's tensors and loading
// them back from the stored integers. The quantization_config schema is checkpoint_config.cpp; format
// and error contract in webquant/model_checkpoint.h.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/json.h"
#include "webquant/convert.h"
#include "webquant/causal_lm.h"
#include "webquant/model_checkpoint.h"
#include "webquant/pack.h"

#include "models/checkpoint_config.h"

namespace webquant {
namespace {

using io::JsonValue;
using namespace ckpt;

// Bytes of one packed row of C codes of `bits` bits (8-bit rows are not packed).
size_t row_bytes(int in_features, int bits) { return packed_size(static_cast<size_t>(in_features), bits); }

// ---------------------------------------------------------------------------------------------
// Describing the model's layers.

// The layer as saved, plus its integer form when quantized.
Status describe_layer(const LinearInfo& li, const LinearLayer* layer, QuantMethod method,
                      CheckpointLayer* out, LinearQuantizedData* data) {
  CheckpointLayer c;
  c.name = li.name;
  c.out_features = li.out_features;
  c.in_features = li.in_features;
  c.has_bias = li.has_bias;
  c.transposed = li.conv1d;
  if (layer == nullptr) {
    c.tied = true;  // a tied lm_head reading the embedding
  } else if (!is_float_scheme(layer->scheme())) {
    LinearQuantizedData d;
    Status st = layer->export_quantized(&d);
    if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
    c.scheme = d.scheme;
    c.input_scales = !d.input_scales.empty();
    c.activation_scale = d.activation_scale;
    c.bits = d.bits;
    c.asymmetric = d.asymmetric;
    c.group_size = d.group_size;
    c.fallback = d.fallback;
    // hqq is a storage form (float zero points); gptq / awq layers store RTN-form codes, or (gptq
    // on HQQ's grid) HQQ's, and the registry keeps which method chose them.
    const bool float_zero = d.method == QuantMethod::kHqq;
    c.method = float_zero && method != QuantMethod::kGptq ? QuantMethod::kHqq : method;
    c.hqq_grid = float_zero && c.method == QuantMethod::kGptq;
    c.range_search = float_zero ? d.range_search : 0;
    c.codebook = d.codebook;
    if (data != nullptr) *data = std::move(d);
  }
  *out = std::move(c);
  return Status::Ok();
}

// The LinearInfo a quantized embedding table is saved and loaded as: the module, [rows, dim].
LinearInfo table_info(const ParamInfo& p) {
  LinearInfo li;
  const size_t dot = p.name.rfind('.');
  li.name = dot == std::string::npos ? p.name : p.name.substr(0, dot);
  li.out_features = static_cast<int>(p.shape[0]);
  li.in_features = static_cast<int>(p.shape[1]);
  return li;
}

// The quantized embedding tables, in parameter order.
Status describe_tables(const Weights& model, std::vector<CheckpointLayer>* out) {
  out->clear();
  for (size_t i = 0; i < model.num_params(); ++i) {
    const Weights::Param& p = model.param(i);
    if (!p.quantized) continue;
    CheckpointLayer c;
    WQ_RETURN_IF_ERROR(describe_layer(table_info(p.info), p.quantized.get(), QuantMethod::kRtn, &c, nullptr));
    out->push_back(std::move(c));
  }
  return Status::Ok();
}

Status describe_model(const Weights& model, std::vector<CheckpointLayer>* out) {
  out->clear();
  for (const LinearInfo& li : model.layout().linears) {
    CheckpointLayer c;
    WQ_RETURN_IF_ERROR(describe_layer(li, model.linear(li.name), model.linear_method(li.name), &c, nullptr));
    out->push_back(std::move(c));
  }
  return Status::Ok();
}


// ---------------------------------------------------------------------------------------------
// Writing tensors.

template <typename T>
std::vector<uint8_t> as_bytes(const T* p, size_t n) {
  std::vector<uint8_t> b(n * sizeof(T));
  if (n != 0) std::memcpy(b.data(), p, b.size());  // little-endian host (x86, wasm)
  return b;
}

// 16-bit values stored as they are, in the dtype of `type` (kF16 / kBF16).
OwnedTensor half_tensor(std::string name, std::vector<int64_t> shape, FloatType type,
                        const uint16_t* h, size_t n) {
  return {std::move(name), type == FloatType::kBF16 ? "BF16" : "F16", std::move(shape), as_bytes(h, n)};
}

// Float values in the narrowest of BF16, F16, F32 that reproduces every bit; a half-precision
// layer's weights (`prefer` kF16 / kBF16) in its own type.
OwnedTensor float_tensor(std::string name, std::vector<int64_t> shape, const float* v, size_t n,
                         FloatType prefer = FloatType::kF32) {
  if (prefer != FloatType::kF32) {
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = prefer == FloatType::kBF16 ? fp32_to_bf16(v[i]) : fp32_to_fp16(v[i]);
    return half_tensor(std::move(name), std::move(shape), prefer, h.data(), n);
  }
  bool bf16 = true, f16 = true;
  for (size_t i = 0; i < n && (bf16 || f16); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &v[i], 4);
    if ((bits & 0xFFFFu) != 0) bf16 = false;
    if (f16) {
      const float back = fp16_to_fp32(fp32_to_fp16(v[i]));
      uint32_t bb;
      std::memcpy(&bb, &back, 4);
      if (bb != bits) f16 = false;
    }
  }
  OwnedTensor t{std::move(name), "F32", std::move(shape), {}};
  if (bf16 || f16) {
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) h[i] = bf16 ? fp32_to_bf16(v[i]) : fp32_to_fp16(v[i]);
    t.dtype = bf16 ? "BF16" : "F16";
    t.bytes = as_bytes(h.data(), n);
  } else {
    t.bytes = as_bytes(v, n);
  }
  return t;
}

// The tensors of one linear layer (see the table in the header).
Status linear_tensors(const LinearInfo& li, const LinearLayer* layer, QuantMethod method,
                      std::vector<OwnedTensor>* out) {
  if (layer == nullptr) return Status::Ok();  // tied lm_head: nothing stored
  const int64_t R = li.out_features, C = li.in_features;
  if (is_float_scheme(layer->scheme())) {
    const FloatType prefer = layer->scheme() == LinearScheme::kF16    ? FloatType::kF16
                             : layer->scheme() == LinearScheme::kBF16 ? FloatType::kBF16
                                                                      : FloatType::kF32;
    std::vector<float> w(static_cast<size_t>(R * C));
    layer->dequantize_weight(w.data());
    if (li.conv1d) {  // back to HF Conv1D storage [in, out]
      std::vector<float> t(w.size());
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t k = 0; k < C; ++k) t[static_cast<size_t>(k * R + r)] = w[static_cast<size_t>(r * C + k)];
      }
      out->push_back(float_tensor(li.name + ".weight", {C, R}, t.data(), t.size(), prefer));
    } else {
      out->push_back(float_tensor(li.name + ".weight", {R, C}, w.data(), w.size(), prefer));
    }
    const std::vector<float> b = layer->bias();
    if (!b.empty()) out->push_back({li.name + ".bias", "F32", {R}, as_bytes(b.data(), b.size())});
    return Status::Ok();
  }
  CheckpointLayer c;
  LinearQuantizedData d;
  WQ_RETURN_IF_ERROR(describe_layer(li, layer, method, &c, &d));
  WQ_RETURN_IF_ERROR(encode_quantized(li.name, d, out));
  if (!d.input_scales.empty()) {
    out->push_back({li.name + ".input_scales", "F32", {C}, as_bytes(d.input_scales.data(), d.input_scales.size())});
  }

  if (!d.bias.empty()) out->push_back({li.name + ".bias", "F32", {R}, as_bytes(d.bias.data(), d.bias.size())});
  return Status::Ok();
}

Status write_shard(std::vector<OwnedTensor>* tensors, const std::map<std::string, std::string>& metadata,
                   std::vector<uint8_t>* out) {
  std::vector<io::TensorRecord> records;
  records.reserve(tensors->size());
  for (const OwnedTensor& t : *tensors) {
    records.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
  }
  WQ_RETURN_IF_ERROR(io::write_safetensors(records, metadata, out));
  tensors->clear();
  return Status::Ok();
}

std::string pad5(size_t v) {
  std::string s = std::to_string(v);
  return std::string(s.size() < 5 ? 5 - s.size() : 0, '0') + s;
}


// ---------------------------------------------------------------------------------------------
// Loading.

// The shards of a checkpoint, and the prefix their names may leave out (ModelLayout).
struct Shards {
  std::vector<const io::SafetensorsFile*> files;
  std::string optional_prefix;
};

const io::TensorView* find(const Shards& shards, const std::string& name) {
  for (const std::string& n : stored_names(ModelLayout{{}, {}, {}, shards.optional_prefix}, name)) {
    for (const io::SafetensorsFile* f : shards.files) {
      const io::TensorView* t = f != nullptr ? f->find(n) : nullptr;
      if (t != nullptr) return t;
    }
  }
  return nullptr;
}

// Finds `name`, checks its shape and that its dtype is one of `dtypes`.
Status need(const Shards& shards, const std::string& name,
            const std::vector<int64_t>& shape, const std::vector<std::string>& dtypes,
            const io::TensorView** out) {
  const io::TensorView* t = find(shards, name);
  if (t == nullptr) {
    return Status::Error(StatusCode::kNotFound, "tensor '" + name + "' not found in the checkpoint");
  }
  if (t->shape != shape) {
    return Status::Error(StatusCode::kShapeMismatch, "tensor '" + name + "' has shape " +
                                                         shape_str(t->shape) + ", expected " +
                                                         shape_str(shape));
  }
  if (std::find(dtypes.begin(), dtypes.end(), t->dtype) == dtypes.end()) {
    std::string list;
    for (const std::string& d : dtypes) list += (list.empty() ? "" : ", ") + d;
    return corrupt("tensor '" + name + "' has dtype " + t->dtype + ", expected " + list);
  }
  *out = t;
  return Status::Ok();
}

const std::vector<std::string> kFloatDTypes = {"F32", "F16", "BF16"};

Status read_floats(const Shards& shards, const std::string& name,
                   const std::vector<int64_t>& shape, std::vector<float>* out) {
  const io::TensorView* t = nullptr;
  WQ_RETURN_IF_ERROR(need(shards, name, shape, kFloatDTypes, &t));
  out->resize(static_cast<size_t>(t->numel()));
  return io::tensor_to_f32(*t, out->data());
}

Status load_linear(const CheckpointLayer& c, const Shards& shards,
                   std::unique_ptr<LinearLayer>* out) {
  const int64_t R = c.out_features, C = c.in_features;
  std::vector<float> bias;
  if (c.has_bias) WQ_RETURN_IF_ERROR(read_floats(shards, c.name + ".bias", {R}, &bias));
  if (c.scheme == LinearScheme::kF32) {
    if (c.tied) {
      out->reset();
      return Status::Ok();
    }
    std::vector<float> w;
    if (c.transposed) {  // HF Conv1D storage [in, out]
      std::vector<float> t;
      WQ_RETURN_IF_ERROR(read_floats(shards, c.name + ".weight", {C, R}, &t));
      w.resize(t.size());
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t k = 0; k < C; ++k) w[static_cast<size_t>(r * C + k)] = t[static_cast<size_t>(k * R + r)];
      }
    } else {
      WQ_RETURN_IF_ERROR(read_floats(shards, c.name + ".weight", {R, C}, &w));
    }
    Status st = make_linear_quantized(w.data(), c.out_features, c.in_features,
                                      c.has_bias ? bias.data() : nullptr, LinearQuantSpec{LinearScheme::kF32, false, 0},
                                      out, nullptr);
    if (!st.ok()) return corrupt(c.name + ": " + st.message);
    return Status::Ok();
  }

  LinearQuantizedData d;
  d.scheme = c.scheme;
  d.asymmetric = c.asymmetric;
  d.bits = c.bits;
  d.group_size = c.group_size;
  d.out_features = c.out_features;
  d.in_features = c.in_features;
  // gptq / awq: the RTN form, except gptq on HQQ's grid (hqq's form).
  const bool float_zero = c.method == QuantMethod::kHqq || c.hqq_grid;
  d.method = float_zero ? QuantMethod::kHqq : QuantMethod::kRtn;
  d.range_search = float_zero ? c.range_search : 0;
  d.codebook = c.codebook;
  const int64_t groups = (C + c.group_size - 1) / c.group_size;  // ragged: the last group short
  const size_t n = static_cast<size_t>(R * C);
  d.q.resize(n);
  const io::TensorView* t = nullptr;
  if (c.bits == 8) {
    WQ_RETURN_IF_ERROR(need(shards, c.name + ".qweight", {R, C}, {"I8"}, &t));
    std::memcpy(d.q.data(), t->data, n);
    if (c.asymmetric) {
      WQ_RETURN_IF_ERROR(need(shards, c.name + ".zero_points", {R, groups}, {"I8"}, &t));
      d.zero_points.resize(static_cast<size_t>(R * groups));
      for (size_t i = 0; i < d.zero_points.size(); ++i)
        d.zero_points[i] = static_cast<int8_t>(t->data[i]);
    }
  } else {
    const size_t rb = row_bytes(c.in_features, c.bits);
    WQ_RETURN_IF_ERROR(need(shards, c.name + ".qweight", {R, static_cast<int64_t>(rb)}, {"U8"}, &t));
    const int32_t offset = 1 << (c.bits - 1);
    const unsigned used_bits = static_cast<unsigned>((C * c.bits) % 8);  // bits used in a row's last byte
    std::vector<uint8_t> codes(static_cast<size_t>(C));
    for (int64_t r = 0; r < R; ++r) {
      const uint8_t* row = t->data + r * static_cast<int64_t>(rb);
      if (used_bits != 0 && (row[rb - 1] >> used_bits) != 0) {
        return corrupt("tensor '" + c.name + ".qweight' row " + std::to_string(r) +
                       " has non-zero padding bits after its " + std::to_string(C) + " codes");
      }
      WQ_RETURN_IF_ERROR(unpack_codes(row, rb, codes.size(), c.bits, codes.data()));
      for (int64_t k = 0; k < C; ++k) d.q[r * C + k] = static_cast<int8_t>(codes[k] - offset);
    }
    if (float_zero) {
      WQ_RETURN_IF_ERROR(need(shards, c.name + ".zero_points", {R, groups}, {"F32"}, &t));
      d.zero_points_f.resize(static_cast<size_t>(R * groups));
      std::memcpy(d.zero_points_f.data(), t->data, d.zero_points_f.size() * sizeof(float));
      d.zero_points.assign(d.zero_points_f.size(), 0);
    } else if (c.asymmetric) {
      WQ_RETURN_IF_ERROR(need(shards, c.name + ".zero_points", {R, groups}, {"U8"}, &t));
      d.zero_points.resize(static_cast<size_t>(R * groups));
      for (size_t i = 0; i < d.zero_points.size(); ++i) d.zero_points[i] = int32_t(t->data[i]) - offset;
    }
  }
  if (!c.asymmetric && d.method == QuantMethod::kRtn) d.zero_points.assign(static_cast<size_t>(R * groups), 0);
  WQ_RETURN_IF_ERROR(need(shards, c.name + ".scales", {R, groups}, {"F32"}, &t));
  d.scales.resize(static_cast<size_t>(R * groups));
  std::memcpy(d.scales.data(), t->data, d.scales.size() * sizeof(float));
  if (c.codebook != Codebook::kNone) {
    WQ_RETURN_IF_ERROR(need(shards, c.name + ".codebook", {16}, {"F32"}, &t));
    d.table.resize(16);
    std::memcpy(d.table.data(), t->data, 16 * sizeof(float));
  }
  d.bias = std::move(bias);
  if (c.group_size == c.in_features) d.fallback = c.fallback;
  if (c.input_scales) {
    WQ_RETURN_IF_ERROR(need(shards, c.name + ".input_scales", {C}, {"F32"}, &t));
    d.input_scales.resize(static_cast<size_t>(C));
    std::memcpy(d.input_scales.data(), t->data, d.input_scales.size() * sizeof(float));
  }
  d.activation_scale = c.activation_scale;
  Status st = make_linear_from_quantized(d, out);
  if (!st.ok()) return corrupt(c.name + ": " + st.message);
  return Status::Ok();
}

Status parse_object(std::string_view text, const std::string& what, JsonValue* out) {
  Status st = io::parse_json(text, out);
  if (!st.ok()) return corrupt(what + ": " + st.message);
  if (!out->is_object()) return corrupt(what + " must be a JSON object");
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

// Reads a quantized checkpoint's tensors for the model being built.
class CheckpointSource final : public WeightSource {
 public:
  CheckpointSource(Shards shards, std::vector<CheckpointLayer> layers)
      : shards_(std::move(shards)), layers_(std::move(layers)) {}
  Status tensor(const ParamInfo& info, std::vector<float>* out) override {
    return read_floats(shards_, info.name, info.shape, out);
  }
  Status linear(const LinearInfo& info, std::unique_ptr<LinearLayer>* out) override {
    for (const CheckpointLayer& c : layers_) {
      if (c.name == info.name) return load_linear(c, shards_, out);
    }
    return corrupt("quantization_config has no entry for '" + info.name + "'");
  }
  Status quantized_tensor(const ParamInfo& info, std::unique_ptr<LinearLayer>* out) override {
    out->reset();
    const std::string module = table_info(info).name;
    for (const CheckpointLayer& c : tables_) {
      if (c.name == module) return load_linear(c, shards_, out);
    }
    return Status::Ok();  // a float table
  }

  // Records on `w` the method of every layer not rounded by RTN (gptq, awq, hqq).
  // The layers' methods and the distillation record, which the weights alone do not tell.
  Status apply_provenance(Weights* w) const {
    for (const CheckpointLayer& c : layers_) {
      if (c.method != QuantMethod::kRtn) WQ_RETURN_IF_ERROR(w->set_linear_method(c.name, c.method));
    }
    w->set_distillation_record(distillation_);
    return Status::Ok();
  }

  std::vector<CheckpointLayer> tables_;
  std::string distillation_;

 private:
  Shards shards_;
  std::vector<CheckpointLayer> layers_;
};

}  // namespace

std::string model_quantization_config(const Weights& model) {
  std::vector<CheckpointLayer> layers, tables;
  Status st = describe_model(model, &layers);
  if (st.ok()) st = describe_tables(model, &tables);
  if (!st.ok()) return "";
  return io::write_json(quantization_config_json(layers, tables, model.distillation_record()));
}

Status save_checkpoint(const Weights& model, std::string_view source_config_json,
                             const CheckpointSaveOptions& options, std::vector<CheckpointFile>* files) {
  if (files == nullptr) return Status::Error(StatusCode::kInvalidArgument, "save: files is null");
  files->clear();
  JsonValue config;
  WQ_RETURN_IF_ERROR(parse_object(source_config_json, "config.json", &config));

  std::vector<CheckpointLayer> layers, tables;
  WQ_RETURN_IF_ERROR(describe_model(model, &layers));
  WQ_RETURN_IF_ERROR(describe_tables(model, &tables));
  JsonValue qconfig = quantization_config_json(layers, tables, model.distillation_record());
  const std::string qtext = io::write_json(qconfig);
  put(&config, kMetadataKey, std::move(qconfig));
  // A half model records its dtype (fromPretrained's dtype 'auto' reads it back); a float32 model
  // leaves the source's torch_dtype as it was.
  if (model.dtype() != FloatType::kF32) put(&config, "torch_dtype", jstr(float_type_name(model.dtype())));
  files->push_back({"config.json", {}});
  const std::string ctext = io::write_json(config);
  files->back().bytes.assign(ctext.begin(), ctext.end());

  const std::map<std::string, std::string> metadata = {{"format", "webquant"}, {kMetadataKey, qtext}};
  std::vector<CheckpointFile> shards;
  std::vector<std::pair<std::string, size_t>> weight_map;  // tensor -> shard index
  std::vector<OwnedTensor> pending;
  size_t pending_bytes = 0, total_bytes = 0;
  auto flush = [&]() -> Status {
    if (pending.empty()) return Status::Ok();
    for (const OwnedTensor& t : pending) weight_map.emplace_back(t.name, shards.size());
    shards.push_back({"", {}});
    WQ_RETURN_IF_ERROR(write_shard(&pending, metadata, &shards.back().bytes));
    pending_bytes = 0;
    return Status::Ok();
  };
  // One unit = one float parameter or one linear's tensors; units are never split.
  auto add_unit = [&](std::vector<OwnedTensor> unit) -> Status {
    size_t bytes = 0;
    for (const OwnedTensor& t : unit) bytes += t.bytes.size();
    if (options.max_shard_bytes != 0 && pending_bytes != 0 && pending_bytes + bytes > options.max_shard_bytes) {
      WQ_RETURN_IF_ERROR(flush());
    }
    for (OwnedTensor& t : unit) pending.push_back(std::move(t));
    pending_bytes += bytes;
    total_bytes += bytes;
    return Status::Ok();
  };

  // Model order (the architecture's declaration order); a tied head stores nothing.
  const ModelLayout& layout = model.layout();
  for (const ModelLayout::Entry& e : layout.order) {
    std::vector<OwnedTensor> unit;
    if (e.is_linear) {
      const LinearInfo& li = layout.linears[e.index];
      WQ_RETURN_IF_ERROR(linear_tensors(li, model.linear(li.name), model.linear_method(li.name), &unit));
    } else {
      const Weights::Param& p = model.param(e.index);
      if (p.quantized) {  // a quantized embedding table: <module>.qweight / .scales / ...
        WQ_RETURN_IF_ERROR(linear_tensors(table_info(p.info), p.quantized.get(), QuantMethod::kRtn, &unit));
      } else if (p.type != FloatType::kF32) {
        unit.push_back(half_tensor(p.info.name, p.info.shape, p.type, p.half.data(), p.half.size()));
      } else {
        unit.push_back(float_tensor(p.info.name, p.info.shape, p.data.data(), p.data.size()));
      }
    }
    if (!unit.empty()) WQ_RETURN_IF_ERROR(add_unit(std::move(unit)));
  }
  WQ_RETURN_IF_ERROR(flush());

  if (shards.size() == 1) {
    shards[0].name = "model.safetensors";
    files->push_back(std::move(shards[0]));
    return Status::Ok();
  }
  const std::string n = pad5(shards.size());
  for (size_t i = 0; i < shards.size(); ++i) {
    shards[i].name = "model-" + pad5(i + 1) + "-of-" + n + ".safetensors";
  }
  JsonValue index = jobj();
  JsonValue meta = jobj();
  put(&meta, "total_size", jnum(static_cast<double>(total_bytes)));
  put(&meta, "format", jstr("webquant"));
  put(&index, "metadata", std::move(meta));
  JsonValue map = jobj();
  std::sort(weight_map.begin(), weight_map.end());
  for (const auto& kv : weight_map) map.object.emplace_back(kv.first, jstr(shards[kv.second].name));
  put(&index, "weight_map", std::move(map));
  const std::string itext = io::write_json(index);
  for (CheckpointFile& f : shards) files->push_back(std::move(f));
  files->push_back({"model.safetensors.index.json", std::vector<uint8_t>(itext.begin(), itext.end())});
  return Status::Ok();
}

Status has_quantization_config(std::string_view config_json, bool* out) {
  JsonValue root;
  WQ_RETURN_IF_ERROR(parse_object(config_json, "config.json", &root));
  *out = root.get(kMetadataKey) != nullptr;
  return Status::Ok();
}

Status parse_quantization_config(std::string_view quantization_config_json, const ModelLayout& layout,
                                 std::vector<CheckpointLayer>* layers) {
  if (layers == nullptr) return Status::Error(StatusCode::kInvalidArgument, "layers is null");
  JsonValue root;
  WQ_RETURN_IF_ERROR(parse_object(quantization_config_json, "quantization_config", &root));
  const JsonValue* q = qconfig_of(root);
  if (q == nullptr) return Status::Error(StatusCode::kNotFound, "config.json has no quantization_config");
  return parse_qconfig_value(*q, layout, layers);
}

Status checkpoint_source(std::string_view config_json, const ModelLayout& layout,
                         const std::vector<const io::SafetensorsFile*>& shards,
                         std::unique_ptr<WeightSource>* out) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "checkpoint_source: out is null");
  out->reset();
  JsonValue root;
  WQ_RETURN_IF_ERROR(parse_object(config_json, "config.json", &root));

  // quantization_config: config.json's, and every shard's metadata copy must say the same.
  const JsonValue* from_config = root.get(kMetadataKey);
  JsonValue from_meta;
  std::string canonical = from_config != nullptr ? io::write_json(*from_config) : "";
  std::string source = "config.json";
  for (size_t i = 0; i < shards.size(); ++i) {
    if (shards[i] == nullptr) continue;
    auto it = shards[i]->metadata.find(kMetadataKey);
    if (it == shards[i]->metadata.end()) continue;
    JsonValue m;
    const std::string what = "shard " + std::to_string(i) + " __metadata__." + kMetadataKey;
    Status st = io::parse_json(it->second, &m);
    if (!st.ok()) return corrupt(what + ": " + st.message);
    const std::string text = io::write_json(m);
    if (canonical.empty()) {
      canonical = text;
      from_meta = std::move(m);
      source = what;
    } else if (text != canonical) {
      return corrupt(what + " differs from the quantization_config of " + source);
    }
  }
  if (canonical.empty()) {
    *out = std::make_unique<SafetensorsSource>(shards);
    return Status::Ok();
  }
  const JsonValue& q = from_config != nullptr ? *from_config : from_meta;
  std::vector<CheckpointLayer> layers;
  WQ_RETURN_IF_ERROR(parse_qconfig_value(q, layout, &layers));
  auto src = std::make_unique<CheckpointSource>(Shards{shards, layout.optional_prefix}, std::move(layers));
  WQ_RETURN_IF_ERROR(parse_qconfig_tables(q, layout, &src->tables_));
  WQ_RETURN_IF_ERROR(parse_qconfig_distillation(q, &src->distillation_));
  *out = std::move(src);
  return Status::Ok();
}

Status load_checkpoint(std::string_view config_json,
                       const std::vector<const io::SafetensorsFile*>& shards,
                       std::unique_ptr<CausalLM>* out, const LoadOptions& options) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "load: out is null");
  out->reset();
  ModelLayout layout;
  WQ_RETURN_IF_ERROR(CausalLM::layout(config_json, &layout));
  std::unique_ptr<WeightSource> src;
  WQ_RETURN_IF_ERROR(checkpoint_source(config_json, layout, shards, &src));
  WQ_RETURN_IF_ERROR(CausalLM::load(config_json, *src, out, options));
  // Layers rounded by a method other than RTN, and distilled weights, say so (reports and
  // re-saving keep it).
  if (const auto* cs = dynamic_cast<const CheckpointSource*>(src.get())) {
    WQ_RETURN_IF_ERROR(cs->apply_provenance(&(*out)->weights()));
  }
  return Status::Ok();
}

}  // namespace webquant
