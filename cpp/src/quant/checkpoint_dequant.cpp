// dequantize_checkpoint_shard / dequantized_config (webquant/checkpoint_quant.h): a webquant
// checkpoint back to plain float safetensors.
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "quant/checkpoint_format.h"
#include "webquant/checkpoint_quant.h"
#include "webquant/convert.h"
#include "webquant/pack.h"

namespace webquant {

using ckpt::JsonValue;
using ckpt::OwnedTensor;

namespace {

Status parse_object(std::string_view text, const std::string& what, JsonValue* out) {
  Status st = io::parse_json(text, out);
  if (!st.ok()) return ckpt::corrupt(what + ": " + st.message);
  if (!out->is_object()) return ckpt::corrupt(what + " must be a JSON object");
  return Status::Ok();
}

bool valid_dtype(const std::string& d) { return d.empty() || d == "F32" || d == "F16" || d == "BF16"; }

// float32 values as a tensor of `dtype` (F32, F16, BF16; round to nearest even as downcast does).
OwnedTensor float_tensor(std::string name, std::vector<int64_t> shape, const std::vector<float>& v,
                         const std::string& dtype) {
  OwnedTensor t{std::move(name), dtype, std::move(shape), {}};
  if (dtype == "F32") {
    t.bytes.resize(v.size() * 4);
    if (!v.empty()) std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
    return t;
  }
  std::vector<uint16_t> h(v.size());
  if (dtype == "F16") {
    convert_f32_to_f16(v.data(), h.data(), v.size());
  } else {
    convert_f32_to_bf16(v.data(), h.data(), v.size());
  }
  t.bytes.resize(h.size() * 2);
  if (!h.empty()) std::memcpy(t.bytes.data(), h.data(), t.bytes.size());
  return t;
}

Status need(const io::SafetensorsFile& shard, const std::string& name, const std::vector<int64_t>& shape,
            const char* dtype, const io::TensorView** out) {
  const io::TensorView* t = shard.find(name);
  if (t == nullptr) {
    return Status::Error(StatusCode::kNotFound, "tensor '" + name + "' not found in the shard (a layer's tensors share one shard)");
  }
  if (t->shape != shape) {
    return Status::Error(StatusCode::kShapeMismatch, "tensor '" + name + "' has shape " + ckpt::shape_str(t->shape) +
                                                         ", expected " + ckpt::shape_str(shape));
  }
  if (t->dtype != dtype) return ckpt::corrupt("tensor '" + name + "' has dtype " + t->dtype + ", expected " + dtype);
  *out = t;
  return Status::Ok();
}

// The float32 weight of a quantized layer, [out, in] as stored; built through
// make_linear_from_quantized, which validates codes, scales and zero points.
Status dequantize_layer(const std::string& module, const ckpt::LayerEntry& e, const io::SafetensorsFile& shard,
                        std::vector<float>* w) {
  const int64_t R = e.out_features, C = e.in_features, groups = (C + e.group_size - 1) / e.group_size;
  LinearQuantizedData d;
  d.scheme = e.scheme;
  d.asymmetric = e.asymmetric;
  d.bits = e.bits;
  d.group_size = e.group_size;
  d.out_features = e.out_features;
  d.in_features = e.in_features;
  // gptq / awq: RTN form, except gptq on HQQ's grid (hqq_grid), stored in HQQ's form.
  const bool float_zero = e.method == QuantMethod::kHqq || e.hqq_grid;
  d.method = float_zero ? QuantMethod::kHqq : QuantMethod::kRtn;
  d.range_search = float_zero ? e.range_search : 0;
  d.codebook = e.codebook;
  d.q.resize(static_cast<size_t>(R * C));
  const io::TensorView* t = nullptr;
  if (e.bits == 8) {
    WQ_RETURN_IF_ERROR(need(shard, module + ".qweight", {R, C}, "I8", &t));
    std::memcpy(d.q.data(), t->data, d.q.size());
  } else {
    const size_t rb = packed_size(static_cast<size_t>(C), e.bits);
    WQ_RETURN_IF_ERROR(need(shard, module + ".qweight", {R, static_cast<int64_t>(rb)}, "U8", &t));
    const int32_t offset = 1 << (e.bits - 1);
    std::vector<uint8_t> codes(static_cast<size_t>(C));
    for (int64_t r = 0; r < R; ++r) {
      WQ_RETURN_IF_ERROR(unpack_codes(t->data + r * static_cast<int64_t>(rb), rb, codes.size(), e.bits, codes.data()));
      for (int64_t k = 0; k < C; ++k) d.q[r * C + k] = static_cast<int8_t>(codes[k] - offset);
    }
    if (float_zero) {
      WQ_RETURN_IF_ERROR(need(shard, module + ".zero_points", {R, groups}, "F32", &t));
      d.zero_points_f.resize(static_cast<size_t>(R * groups));
      std::memcpy(d.zero_points_f.data(), t->data, d.zero_points_f.size() * sizeof(float));
      d.zero_points.assign(d.zero_points_f.size(), 0);
    } else if (e.asymmetric) {
      WQ_RETURN_IF_ERROR(need(shard, module + ".zero_points", {R, groups}, "U8", &t));
      d.zero_points.resize(static_cast<size_t>(R * groups));
      for (size_t i = 0; i < d.zero_points.size(); ++i) d.zero_points[i] = int32_t(t->data[i]) - offset;
    }
  }
  if (!e.asymmetric) d.zero_points.assign(static_cast<size_t>(R * groups), 0);
  WQ_RETURN_IF_ERROR(need(shard, module + ".scales", {R, groups}, "F32", &t));
  d.scales.resize(static_cast<size_t>(R * groups));
  std::memcpy(d.scales.data(), t->data, d.scales.size() * sizeof(float));
  if (e.codebook != Codebook::kNone) {
    WQ_RETURN_IF_ERROR(need(shard, module + ".codebook", {16}, "F32", &t));
    d.table.resize(16);
    std::memcpy(d.table.data(), t->data, 16 * sizeof(float));
  }
  std::unique_ptr<LinearLayer> layer;
  Status st = make_linear_from_quantized(d, &layer);
  if (!st.ok()) return ckpt::corrupt(module + ": " + st.message);
  w->resize(static_cast<size_t>(R * C));
  layer->dequantize_weight(w->data());
  return Status::Ok();
}

}  // namespace

Status dequantize_checkpoint_shard(std::string_view quantization_config_json, const io::SafetensorsFile& shard,
                                   const std::string& dtype, std::vector<uint8_t>* out,
                                   std::vector<std::string>* names) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "dequantize: out is null");
  if (!valid_dtype(dtype)) {
    return Status::Error(StatusCode::kInvalidArgument, "dequantize: dtype must be F32, F16 or BF16 (got '" + dtype + "')");
  }
  JsonValue root;
  WQ_RETURN_IF_ERROR(parse_object(quantization_config_json, "quantization_config", &root));
  const JsonValue* q = root.get("quant_method") != nullptr ? &root : root.get(ckpt::kMetadataKey);
  if (q == nullptr || !q->is_object()) return Status::Error(StatusCode::kNotFound, "no quantization_config");
  const JsonValue* method = q->get("quant_method");
  if (method == nullptr || !method->is_string() || method->string != ckpt::kQuantMethod) {
    return Status::Error(StatusCode::kUnsupported, "quantization_config.quant_method must be \"webquant\"");
  }
  const JsonValue* version = q->get("version");
  if (version == nullptr || !version->is_number() || version->number != ckpt::kFormatVersion) {
    return Status::Error(StatusCode::kUnsupported, "quantization_config.version must be 1");
  }
  const JsonValue* layers = q->get("layers");
  if (layers == nullptr || !layers->is_object()) return ckpt::corrupt("quantization_config.layers must be an object");

  const JsonValue* tables = q->get("embeddings");  // quantized embedding tables (optional)
  if (tables != nullptr && !tables->is_object()) return ckpt::corrupt("quantization_config.embeddings must be an object");
  std::vector<std::pair<std::string, const std::pair<std::string, JsonValue>*>> entries;
  for (const auto& kv : layers->object) entries.emplace_back("layers", &kv);
  if (tables != nullptr) {
    for (const auto& kv : tables->object) entries.emplace_back("embeddings", &kv);
  }

  // Quantized layers and tables whose qweight is in this shard.
  std::set<std::string> consumed;
  std::vector<OwnedTensor> tensors;
  for (const auto& [where, entry] : entries) {
    const auto& kv = *entry;
    ckpt::LayerEntry e;
    WQ_RETURN_IF_ERROR(ckpt::parse_layer_entry(kv.second, "quantization_config." + where + "[\"" + kv.first + "\"]", &e));
    if (e.scheme == LinearScheme::kF32) continue;  // its .weight is a plain tensor
    if (shard.find(kv.first + ".qweight") == nullptr) continue;  // another shard's layer
    std::vector<float> w;
    WQ_RETURN_IF_ERROR(dequantize_layer(kv.first, e, shard, &w));
    std::vector<int64_t> shape = {e.out_features, e.in_features};
    if (e.transposed) {  // back to Conv1D's [in, out]
      std::vector<float> wt(w.size());
      const int64_t R = e.out_features, C = e.in_features;
      for (int64_t o = 0; o < R; ++o) {
        for (int64_t i = 0; i < C; ++i) wt[i * R + o] = w[o * C + i];
      }
      w.swap(wt);
      shape = {e.in_features, e.out_features};
    } else if (!e.shape.empty()) {
      shape = e.shape;
    }
    const std::string dt = !dtype.empty() ? dtype : !e.source_dtype.empty() ? e.source_dtype : "F32";
    tensors.push_back(float_tensor(kv.first + ".weight", shape, w, dt));
    for (const char* suffix : {".qweight", ".scales", ".zero_points", ".codebook"}) consumed.insert(kv.first + suffix);
  }
  for (const io::TensorView& t : shard.tensors) {
    if (consumed.count(t.name) != 0) continue;
    const bool is_float = t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16";
    if (!is_float || dtype.empty() || t.dtype == dtype) {
      tensors.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
      continue;
    }
    std::vector<float> v(static_cast<size_t>(t.numel()));
    WQ_RETURN_IF_ERROR(io::tensor_to_f32(t, v.data()));
    tensors.push_back(float_tensor(t.name, t.shape, v, dtype));
  }
  std::vector<io::TensorRecord> records;
  for (const OwnedTensor& t : tensors) records.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
  std::map<std::string, std::string> metadata = {{"format", "pt"}};
  WQ_RETURN_IF_ERROR(io::write_safetensors(records, metadata, out));
  if (names != nullptr) {
    names->clear();
    for (const OwnedTensor& t : tensors) names->push_back(t.name);
  }
  return Status::Ok();
}

Status dequantized_config(std::string_view config_json, const std::string& dtype, std::string* out) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "dequantized_config: out is null");
  if (!valid_dtype(dtype)) {
    return Status::Error(StatusCode::kInvalidArgument, "dequantize: dtype must be F32, F16 or BF16 (got '" + dtype + "')");
  }
  JsonValue root;
  WQ_RETURN_IF_ERROR(parse_object(config_json, "config.json", &root));
  ckpt::erase(&root, ckpt::kMetadataKey);
  if (!dtype.empty()) {
    const char* hf = dtype == "F32" ? "float32" : dtype == "F16" ? "float16" : "bfloat16";
    ckpt::put(&root, "torch_dtype", ckpt::jstr(hf));
  }
  *out = io::write_json(root);
  return Status::Ok();
}

}  // namespace webquant
