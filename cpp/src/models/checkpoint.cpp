// webquant's quantized checkpoints, for every architecture: saving, the quantization_config
// schema, loading from the stored integers. Format and error contract in webquant/model_checkpoint.h.
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

namespace webquant {
namespace {

using io::JsonValue;

constexpr int kFormatVersion = 1;
constexpr const char* kQuantMethod = "webquant";
constexpr const char* kPackingLsbFirst = "lsb-first";
constexpr const char* kPackingNone = "none";
constexpr const char* kMetadataKey = "quantization_config";

// ---------------------------------------------------------------------------------------------
// Small helpers.

Status corrupt(std::string msg) { return Status::Error(StatusCode::kCorruptData, std::move(msg)); }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

JsonValue jstr(std::string s) {
  JsonValue v;
  v.type = JsonValue::Type::kString;
  v.string = std::move(s);
  return v;
}
JsonValue jnum(double x) {
  JsonValue v;
  v.type = JsonValue::Type::kNumber;
  v.number = x;
  return v;
}
JsonValue jbool(bool b) {
  JsonValue v;
  v.type = JsonValue::Type::kBool;
  v.boolean = b;
  return v;
}
JsonValue jobj() {
  JsonValue v;
  v.type = JsonValue::Type::kObject;
  return v;
}
void put(JsonValue* obj, std::string key, JsonValue v) {
  for (auto& kv : obj->object) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  }
  obj->object.emplace_back(std::move(key), std::move(v));
}

int scheme_bits(LinearScheme s) {
  switch (s) {
    case LinearScheme::kW8A16:
    case LinearScheme::kW8A8: return 8;
    case LinearScheme::kW4A16:
    case LinearScheme::kW4A8: return 4;
    case LinearScheme::kW2A16: return 2;
    default: return 32;
  }
}
bool scheme_a8(LinearScheme s) { return s == LinearScheme::kW8A8 || s == LinearScheme::kW4A8; }

const LinearScheme kAllSchemes[] = {LinearScheme::kF32,  LinearScheme::kW8A16, LinearScheme::kW4A16,
                                    LinearScheme::kW2A16, LinearScheme::kW8A8,  LinearScheme::kW4A8};

bool scheme_from_name(const std::string& name, LinearScheme* out) {
  for (LinearScheme s : kAllSchemes) {
    if (name == linear_scheme_name(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

// Bytes of one packed row of C codes of `bits` bits (8-bit rows are not packed).
size_t row_bytes(int in_features, int bits) { return packed_size(static_cast<size_t>(in_features), bits); }

// ---------------------------------------------------------------------------------------------
// Describing the model's layers.

// The layer as saved, plus its integer form when quantized.
Status describe_layer(const LinearInfo& li, const LinearLayer* layer, CheckpointLayer* out,
                      LinearQuantizedData* data) {
  CheckpointLayer c;
  c.name = li.name;
  c.out_features = li.out_features;
  c.in_features = li.in_features;
  c.has_bias = li.has_bias;
  c.transposed = li.conv1d;
  if (layer == nullptr) {
    c.tied = true;  // a tied lm_head reading the embedding
  } else if (layer->scheme() != LinearScheme::kF32) {
    LinearQuantizedData d;
    Status st = layer->export_quantized(&d);
    if (!st.ok()) return Status::Error(st.code, li.name + ": " + st.message);
    c.scheme = d.scheme;
    c.bits = d.bits;
    c.asymmetric = d.asymmetric;
    c.group_size = d.group_size;
    c.fallback = d.fallback;
    if (data != nullptr) *data = std::move(d);
  }
  *out = std::move(c);
  return Status::Ok();
}

// Scheme fields shared by "default" and the per-layer entries; group_size < 0 leaves it out.
void put_scheme_fields(const CheckpointLayer& c, bool per_channel, int group_size, JsonValue* o) {
  put(o, "scheme", jstr(linear_scheme_name(c.scheme)));
  if (c.scheme == LinearScheme::kF32) return;
  put(o, "bits", jnum(c.bits));
  put(o, "mode", jstr(c.asymmetric ? "asymmetric" : "symmetric"));
  put(o, "granularity", jstr(per_channel ? "per-channel" : "per-group"));
  if (group_size >= 0) put(o, "group_size", jnum(group_size));
  put(o, "activations", jstr(scheme_a8(c.scheme) ? "int8" : "float"));
  put(o, "packing", jstr(c.bits == 8 ? kPackingNone : kPackingLsbFirst));
}

JsonValue layer_json(const CheckpointLayer& c) {
  JsonValue o = jobj();
  put_scheme_fields(c, c.group_size == c.in_features, c.group_size, &o);
  put(&o, "out_features", jnum(c.out_features));
  put(&o, "in_features", jnum(c.in_features));
  put(&o, "bias", jbool(c.has_bias));
  if (!c.fallback.empty()) put(&o, "fallback", jstr(c.fallback));
  if (c.tied) put(&o, "tied", jbool(true));
  if (c.transposed) put(&o, "transposed", jbool(true));
  return o;
}

// The requested per-group size behind a fallback "172 % 32 != 0" (0 if it cannot be read).
int requested_group(const std::string& fallback) {
  const size_t pct = fallback.find('%');
  if (pct == std::string::npos) return 0;
  return std::atoi(fallback.c_str() + pct + 1);
}

// "default": the most common quantized scheme (a fallback layer counts as its requested group
// size), ties to the first seen; f32 when nothing is quantized.
JsonValue default_json(const std::vector<CheckpointLayer>& layers) {
  std::vector<std::pair<std::string, int>> counts;
  std::vector<CheckpointLayer> reps;
  for (const CheckpointLayer& c : layers) {
    if (c.scheme == LinearScheme::kF32) continue;
    CheckpointLayer r = c;
    int group = 0;  // 0 = per channel
    if (!c.fallback.empty()) {
      group = requested_group(c.fallback);
    } else if (c.group_size != c.in_features) {
      group = c.group_size;
    }
    r.group_size = group;
    const std::string key = std::string(linear_scheme_name(c.scheme)) + (c.asymmetric ? "a" : "s") +
                            std::to_string(group);
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& p) { return p.first == key; });
    if (it == counts.end()) {
      counts.emplace_back(key, 1);
      reps.push_back(r);
    } else {
      ++it->second;
    }
  }
  JsonValue o = jobj();
  if (reps.empty()) {
    put(&o, "scheme", jstr("f32"));
    return o;
  }
  size_t best = 0;
  for (size_t i = 1; i < counts.size(); ++i) {
    if (counts[i].second > counts[best].second) best = i;
  }
  const CheckpointLayer& r = reps[best];
  put_scheme_fields(r, r.group_size == 0, r.group_size == 0 ? -1 : r.group_size, &o);
  return o;
}

JsonValue quantization_config_json(const std::vector<CheckpointLayer>& layers) {
  JsonValue q = jobj();
  put(&q, "quant_method", jstr(kQuantMethod));
  put(&q, "version", jnum(kFormatVersion));
  put(&q, "packing", jstr(kPackingLsbFirst));
  put(&q, "default", default_json(layers));
  JsonValue by_name = jobj();
  for (const CheckpointLayer& c : layers) by_name.object.emplace_back(c.name, layer_json(c));  // unique
  put(&q, "layers", std::move(by_name));
  return q;
}

Status describe_model(const Weights& model, std::vector<CheckpointLayer>* out) {
  out->clear();
  for (const LinearInfo& li : model.layout().linears) {
    CheckpointLayer c;
    WQ_RETURN_IF_ERROR(describe_layer(li, model.linear(li.name), &c, nullptr));
    out->push_back(std::move(c));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Writing tensors.

// A tensor with its own bytes, ready for write_safetensors.
struct OwnedTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

template <typename T>
std::vector<uint8_t> as_bytes(const T* p, size_t n) {
  std::vector<uint8_t> b(n * sizeof(T));
  if (n != 0) std::memcpy(b.data(), p, b.size());  // little-endian host (x86, wasm)
  return b;
}

// Float values in the narrowest of BF16, F16, F32 that reproduces every bit.
OwnedTensor float_tensor(std::string name, std::vector<int64_t> shape, const float* v, size_t n) {
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
Status linear_tensors(const LinearInfo& li, const LinearLayer* layer, std::vector<OwnedTensor>* out) {
  if (layer == nullptr) return Status::Ok();  // tied lm_head: nothing stored
  const int64_t R = li.out_features, C = li.in_features;
  if (layer->scheme() == LinearScheme::kF32) {
    std::vector<float> w(static_cast<size_t>(R * C));
    layer->dequantize_weight(w.data());
    if (li.conv1d) {  // back to HF Conv1D storage [in, out]
      std::vector<float> t(w.size());
      for (int64_t r = 0; r < R; ++r) {
        for (int64_t k = 0; k < C; ++k) t[static_cast<size_t>(k * R + r)] = w[static_cast<size_t>(r * C + k)];
      }
      out->push_back(float_tensor(li.name + ".weight", {C, R}, t.data(), t.size()));
    } else {
      out->push_back(float_tensor(li.name + ".weight", {R, C}, w.data(), w.size()));
    }
    const std::vector<float> b = layer->bias();
    if (!b.empty()) out->push_back({li.name + ".bias", "F32", {R}, as_bytes(b.data(), b.size())});
    return Status::Ok();
  }
  CheckpointLayer c;
  LinearQuantizedData d;
  WQ_RETURN_IF_ERROR(describe_layer(li, layer, &c, &d));
  const int64_t groups = C / d.group_size;
  if (d.bits == 8) {
    out->push_back({li.name + ".qweight", "I8", {R, C}, as_bytes(d.q.data(), d.q.size())});
    if (d.asymmetric) {  // signed zero points, like the codes (see the header)
      std::vector<int8_t> z(d.zero_points.size());
      for (size_t i = 0; i < z.size(); ++i) z[i] = static_cast<int8_t>(d.zero_points[i]);
      out->push_back({li.name + ".zero_points", "I8", {R, groups}, as_bytes(z.data(), z.size())});
    }
  } else {
    const int32_t offset = 1 << (d.bits - 1);  // u = q - qmin
    const size_t rb = row_bytes(d.in_features, d.bits);
    std::vector<uint8_t> packed(static_cast<size_t>(R) * rb), codes(static_cast<size_t>(C));
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t k = 0; k < C; ++k) codes[k] = static_cast<uint8_t>(d.q[r * C + k] + offset);
      WQ_RETURN_IF_ERROR(pack_codes(codes.data(), codes.size(), d.bits, packed.data() + r * rb));
    }
    out->push_back({li.name + ".qweight", "U8", {R, static_cast<int64_t>(rb)}, std::move(packed)});
    if (d.asymmetric) {
      std::vector<uint8_t> z(d.zero_points.size());
      for (size_t i = 0; i < z.size(); ++i) z[i] = static_cast<uint8_t>(d.zero_points[i] + offset);
      out->push_back({li.name + ".zero_points", "U8", {R, groups}, std::move(z)});
    }
  }
  out->push_back({li.name + ".scales", "F32", {R, groups}, as_bytes(d.scales.data(), d.scales.size())});
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
// Parsing quantization_config.

Status read_int_field(const JsonValue& o, const std::string& key, const std::string& where, int* out,
                      bool* present) {
  const JsonValue* v = o.get(key);
  *present = v != nullptr;
  if (v == nullptr) return Status::Ok();
  if (!v->is_number() || v->number != std::floor(v->number) || v->number < 0 || v->number > (1 << 30)) {
    return corrupt(where + "." + key + " must be a non-negative integer");
  }
  *out = static_cast<int>(v->number);
  return Status::Ok();
}

Status read_string_field(const JsonValue& o, const std::string& key, const std::string& where,
                         std::string* out, bool* present) {
  const JsonValue* v = o.get(key);
  *present = v != nullptr;
  if (v == nullptr) return Status::Ok();
  if (!v->is_string()) return corrupt(where + "." + key + " must be a string");
  *out = v->string;
  return Status::Ok();
}

// One scheme object ("default" when is_default) for the linear `li`.
Status parse_scheme(const JsonValue& o, const std::string& where, bool is_default,
                    const LinearInfo& li, CheckpointLayer* out) {
  if (!o.is_object()) return corrupt(where + " must be an object");
  CheckpointLayer c;
  c.name = li.name;
  c.out_features = li.out_features;
  c.in_features = li.in_features;
  c.has_bias = li.has_bias;
  c.transposed = li.conv1d;
  bool present = false;
  std::string name;
  WQ_RETURN_IF_ERROR(read_string_field(o, "scheme", where, &name, &present));
  if (!present) return corrupt(where + " has no \"scheme\"");
  if (!scheme_from_name(name, &c.scheme)) {
    return Status::Error(StatusCode::kUnsupported,
                         where + ": scheme '" + name +
                             "' is not supported (known: f32, w8a16, w4a16, w2a16, w8a8, w4a8)");
  }

  if (!is_default) {
    int outf = 0, inf = 0;
    bool has_out = false, has_in = false;
    WQ_RETURN_IF_ERROR(read_int_field(o, "out_features", where, &outf, &has_out));
    WQ_RETURN_IF_ERROR(read_int_field(o, "in_features", where, &inf, &has_in));
    if (!has_out || !has_in) return corrupt(where + " needs \"out_features\" and \"in_features\"");
    if (outf != li.out_features || inf != li.in_features) {
      return Status::Error(StatusCode::kShapeMismatch,
                           where + " is [" + std::to_string(outf) + ", " + std::to_string(inf) +
                               "] but config.json implies [" + std::to_string(li.out_features) +
                               ", " + std::to_string(li.in_features) + "]");
    }
    const JsonValue* bias = o.get("bias");
    if (bias != nullptr && (bias->type != JsonValue::Type::kBool || bias->boolean != li.has_bias)) {
      return corrupt(where + ".bias must be " + (li.has_bias ? "true" : "false") +
                     " (config.json " + (li.has_bias ? "asks for" : "has no") + " biases here)");
    }
    const JsonValue* fb = o.get("fallback");
    if (fb != nullptr) {
      if (!fb->is_string()) return corrupt(where + ".fallback must be a string");
      c.fallback = fb->string;
    }
  }
  const JsonValue* tied = o.get("tied");
  if (tied != nullptr) {
    if (tied->type != JsonValue::Type::kBool) return corrupt(where + ".tied must be true or false");
    c.tied = tied->boolean;
    if (c.tied && (is_default || li.tied_to.empty() || c.scheme != LinearScheme::kF32)) {
      return corrupt(where + ": \"tied\" is only valid for an f32 output head that the config ties "
                             "to the embedding");
    }
  }
  if (c.scheme == LinearScheme::kF32) {
    c.bits = 32;
    *out = std::move(c);
    return Status::Ok();
  }

  const int want_bits = scheme_bits(c.scheme);
  c.bits = want_bits;
  int bits = 0;
  WQ_RETURN_IF_ERROR(read_int_field(o, "bits", where, &bits, &present));
  if (present && bits != want_bits) {
    return corrupt(where + ": bits " + std::to_string(bits) + " does not match scheme " + name +
                   " (" + std::to_string(want_bits) + "-bit)");
  }
  std::string mode;
  WQ_RETURN_IF_ERROR(read_string_field(o, "mode", where, &mode, &present));
  if (!present) mode = "symmetric";
  if (mode != "symmetric" && mode != "asymmetric") {
    return Status::Error(StatusCode::kUnsupported, where + ": mode '" + mode +
                                                       "' is not supported (symmetric, asymmetric)");
  }
  c.asymmetric = mode == "asymmetric";

  std::string act;
  WQ_RETURN_IF_ERROR(read_string_field(o, "activations", where, &act, &present));
  if (present && act != (scheme_a8(c.scheme) ? "int8" : "float")) {
    return corrupt(where + ": activations '" + act + "' do not match scheme " + name);
  }
  std::string packing;
  WQ_RETURN_IF_ERROR(read_string_field(o, "packing", where, &packing, &present));
  if (present) {
    if (packing != kPackingNone && packing != kPackingLsbFirst) {
      return Status::Error(StatusCode::kUnsupported,
                           where + ": packing '" + packing + "' is not supported (lsb-first, none)");
    }
    if (packing != (want_bits == 8 ? kPackingNone : kPackingLsbFirst)) {
      return corrupt(where + ": packing '" + packing + "' does not fit " + std::to_string(want_bits) +
                     "-bit codes");
    }
  }

  std::string gran;
  WQ_RETURN_IF_ERROR(read_string_field(o, "granularity", where, &gran, &present));
  if (!present) gran = want_bits == 8 ? "per-channel" : "per-group";
  int group = 0;
  bool has_group = false;
  WQ_RETURN_IF_ERROR(read_int_field(o, "group_size", where, &group, &has_group));
  if (gran == "per-channel") {
    if (has_group && !is_default && group != li.in_features) {
      return corrupt(where + ": per-channel group_size " + std::to_string(group) +
                     " must equal in_features " + std::to_string(li.in_features));
    }
    c.group_size = li.in_features;
  } else if (gran == "per-group") {
    if (!has_group || group < 1) return corrupt(where + ": per-group needs group_size >= 1");
    if (li.in_features % group != 0) {
      if (!is_default) {
        return corrupt(where + ": group_size " + std::to_string(group) + " does not divide in_features " +
                       std::to_string(li.in_features));
      }
      // As quantize() does: a default that does not divide falls back to per channel.
      c.fallback = std::to_string(li.in_features) + " % " + std::to_string(group) + " != 0";
      group = li.in_features;
    }
    c.group_size = group;
  } else {
    return Status::Error(StatusCode::kUnsupported,
                         where + ": granularity '" + gran + "' is not supported (per-channel, per-group)");
  }
  *out = std::move(c);
  return Status::Ok();
}

// The quantization_config object inside `root`: root itself when it has quant_method, else its
// "quantization_config" member (nullptr when absent).
const JsonValue* qconfig_of(const JsonValue& root) {
  if (root.get("quant_method") != nullptr) return &root;
  return root.get(kMetadataKey);
}

Status parse_qconfig_value(const JsonValue& q, const ModelLayout& model, std::vector<CheckpointLayer>* layers) {
  const std::string where = "quantization_config";
  if (!q.is_object()) return corrupt(where + " must be an object");
  const JsonValue* method = q.get("quant_method");
  if (method == nullptr || !method->is_string()) return corrupt(where + " has no \"quant_method\"");
  if (method->string != kQuantMethod) {
    return Status::Error(StatusCode::kUnsupported,
                         where + ".quant_method '" + method->string +
                             "' is not supported; webquant loads its own format ('webquant')");
  }
  const JsonValue* version = q.get("version");
  if (version == nullptr || !version->is_number()) return corrupt(where + " has no \"version\"");
  if (version->number != kFormatVersion) {
    return Status::Error(StatusCode::kUnsupported, where + ".version " + write_json(*version) +
                                                       " is not supported (this build reads version " +
                                                       std::to_string(kFormatVersion) + ")");
  }
  const JsonValue* packing = q.get("packing");
  if (packing != nullptr && (!packing->is_string() || packing->string != kPackingLsbFirst)) {
    return Status::Error(StatusCode::kUnsupported,
                         where + ".packing " + write_json(*packing) + " is not supported (lsb-first)");
  }
  const JsonValue* def = q.get("default");
  const JsonValue* by_name = q.get("layers");
  if (by_name != nullptr && !by_name->is_object()) return corrupt(where + ".layers must be an object");
  if (def == nullptr && by_name == nullptr) return corrupt(where + " needs \"layers\" or \"default\"");

  const std::vector<LinearInfo>& layout = model.linears;
  auto entry_of = [&](const std::string& name) -> const JsonValue* {
    if (by_name == nullptr) return nullptr;
    for (const std::string& n : stored_names(model, name)) {
      if (const JsonValue* e = by_name->get(n)) return e;
    }
    return nullptr;
  };
  if (by_name != nullptr) {
    for (const auto& kv : by_name->object) {
      const bool known = std::any_of(layout.begin(), layout.end(), [&](const LinearInfo& li) {
        const std::vector<std::string> names = stored_names(model, li.name);
        return std::find(names.begin(), names.end(), kv.first) != names.end();
      });
      if (!known) {
        return corrupt(where + ".layers names '" + kv.first +
                       "', which is not a linear layer of this model");
      }
    }
  }
  layers->clear();
  for (const LinearInfo& li : layout) {
    const JsonValue* entry = entry_of(li.name);
    CheckpointLayer c;
    if (entry != nullptr) {
      WQ_RETURN_IF_ERROR(parse_scheme(*entry, where + ".layers[\"" + li.name + "\"]", false, li, &c));
    } else if (def != nullptr) {
      WQ_RETURN_IF_ERROR(parse_scheme(*def, where + ".default", true, li, &c));
    } else {
      return corrupt(where + ".layers has no entry for '" + li.name + "' and there is no \"default\"");
    }
    layers->push_back(std::move(c));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Loading.

// The shards of a checkpoint, and the prefix their names may leave out (ModelLayout).
struct Shards {
  const std::vector<const io::SafetensorsFile*>& files;
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
  const int64_t groups = C / c.group_size;
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
    if (c.asymmetric) {
      WQ_RETURN_IF_ERROR(need(shards, c.name + ".zero_points", {R, groups}, {"U8"}, &t));
      d.zero_points.resize(static_cast<size_t>(R * groups));
      for (size_t i = 0; i < d.zero_points.size(); ++i) d.zero_points[i] = int32_t(t->data[i]) - offset;
    }
  }
  if (!c.asymmetric) d.zero_points.assign(static_cast<size_t>(R * groups), 0);
  WQ_RETURN_IF_ERROR(need(shards, c.name + ".scales", {R, groups}, {"F32"}, &t));
  d.scales.resize(static_cast<size_t>(R * groups));
  std::memcpy(d.scales.data(), t->data, d.scales.size() * sizeof(float));
  d.bias = std::move(bias);
  if (c.group_size == c.in_features) d.fallback = c.fallback;
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
  CheckpointSource(const Shards& shards, const std::vector<CheckpointLayer>& layers)
      : shards_(shards), layers_(layers) {}
  Status tensor(const ParamInfo& info, std::vector<float>* out) override {
    return read_floats(shards_, info.name, info.shape, out);
  }
  Status linear(const LinearInfo& info, std::unique_ptr<LinearLayer>* out) override {
    for (const CheckpointLayer& c : layers_) {
      if (c.name == info.name) return load_linear(c, shards_, out);
    }
    return corrupt("quantization_config has no entry for '" + info.name + "'");
  }

 private:
  const Shards& shards_;
  const std::vector<CheckpointLayer>& layers_;
};

}  // namespace

std::string model_quantization_config(const Weights& model) {
  std::vector<CheckpointLayer> layers;
  Status st = describe_model(model, &layers);
  if (!st.ok()) return "";
  return io::write_json(quantization_config_json(layers));
}

Status save_checkpoint(const Weights& model, std::string_view source_config_json,
                             const CheckpointSaveOptions& options, std::vector<CheckpointFile>* files) {
  if (files == nullptr) return Status::Error(StatusCode::kInvalidArgument, "save: files is null");
  files->clear();
  JsonValue config;
  WQ_RETURN_IF_ERROR(parse_object(source_config_json, "config.json", &config));

  std::vector<CheckpointLayer> layers;
  WQ_RETURN_IF_ERROR(describe_model(model, &layers));
  JsonValue qconfig = quantization_config_json(layers);
  const std::string qtext = io::write_json(qconfig);
  put(&config, kMetadataKey, std::move(qconfig));
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
      WQ_RETURN_IF_ERROR(linear_tensors(li, model.linear(li.name), &unit));
    } else {
      const Weights::Param& p = model.param(e.index);
      unit.push_back(float_tensor(p.info.name, p.info.shape, p.data.data(), p.data.size()));
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

Status load_checkpoint(std::string_view config_json,
                       const std::vector<const io::SafetensorsFile*>& shards,
                       std::unique_ptr<CausalLM>* out, const LoadOptions& options) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "load: out is null");
  out->reset();
  ModelLayout layout;
  WQ_RETURN_IF_ERROR(CausalLM::layout(config_json, &layout));
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
  if (canonical.empty()) return CausalLM::load(config_json, shards, out, options);
  const JsonValue& q = from_config != nullptr ? *from_config : from_meta;

  std::vector<CheckpointLayer> layers;
  WQ_RETURN_IF_ERROR(parse_qconfig_value(q, layout, &layers));
  const Shards set{shards, layout.optional_prefix};
  CheckpointSource src(set, layers);
  return CausalLM::load(config_json, src, out, options);
}

}  // namespace webquant
