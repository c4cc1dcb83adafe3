// quantization_config of webquant's checkpoints: writing and parsing (see checkpoint_config.h).
#include "models/checkpoint_config.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace webquant::ckpt {

using io::JsonValue;

namespace {

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
  MethodRecord m;
  m.method = c.method;
  m.hqq_grid = c.hqq_grid;
  m.range_search = c.range_search;
  put_method(m, o);
  if (c.codebook != Codebook::kNone) put(o, "codebook", jstr(codebook_name(c.codebook)));
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
  if (c.input_scales) put(&o, "input_scales", jbool(true));
  if (c.activation_scale > 0.0f) {  // static int8 activations
    for (auto& kv : o.object)
      if (kv.first == "activations") kv.second = jstr("int8-static");
    put(&o, "activation_scale", jnum(c.activation_scale));
  }
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
                            std::to_string(group) + quant_method_name(c.method) +
                            (c.hqq_grid ? "grid" : "") + std::to_string(c.range_search) +
                            codebook_name(c.codebook);
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

}  // namespace

JsonValue quantization_config_json(const std::vector<CheckpointLayer>& layers,
                                   const std::vector<CheckpointLayer>& tables, const std::string& distillation) {
  JsonValue q = jobj();
  put(&q, "quant_method", jstr(kQuantMethod));
  put(&q, "version", jnum(kFormatVersion));
  put(&q, "packing", jstr(kPackingLsbFirst));
  put(&q, "default", default_json(layers));
  JsonValue by_name = jobj();
  for (const CheckpointLayer& c : layers) by_name.object.emplace_back(c.name, layer_json(c));  // unique
  put(&q, "layers", std::move(by_name));
  if (!tables.empty()) {
    JsonValue emb = jobj();
    for (const CheckpointLayer& c : tables) emb.object.emplace_back(c.name, layer_json(c));
    put(&q, "embeddings", std::move(emb));
  }
  JsonValue record;
  // The record is written by quantize_distilled or read from a checkpoint: it parses.
  if (!distillation.empty() && io::parse_json(distillation, &record).ok() && record.is_object())
    put(&q, "distillation", std::move(record));
  return q;
}

Status parse_qconfig_distillation(const JsonValue& q, std::string* out) {
  out->clear();
  const JsonValue* d = q.get("distillation");
  if (d == nullptr) return Status::Ok();
  if (!d->is_object()) return Status::Error(StatusCode::kCorruptData, "quantization_config.distillation must be an object");
  *out = io::write_json(*d);
  return Status::Ok();
}


namespace {

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
                             "' is not supported (known: f32, w8a16, w4a16, w2a16, w8a8, w4a8, w3a16, lut4a16)");
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
  MethodRecord mr;
  WQ_RETURN_IF_ERROR(parse_method(o, where, c.scheme, c.asymmetric, &mr));
  c.method = mr.method;
  c.hqq_grid = mr.hqq_grid;
  c.range_search = mr.range_search;
  WQ_RETURN_IF_ERROR(parse_codebook(o, where, c.scheme, &c.codebook));
  if (!is_default) {
    const JsonValue* is = o.get("input_scales");
    if (is != nullptr) {
      if (is->type != JsonValue::Type::kBool) return corrupt(where + ".input_scales must be true or false");
      c.input_scales = is->boolean;
    }
  }

  std::string act;
  WQ_RETURN_IF_ERROR(read_string_field(o, "activations", where, &act, &present));
  if (present && act == "int8-static" && (c.scheme == LinearScheme::kW8A8 || c.scheme == LinearScheme::kW4A8) && !is_default) {
    const JsonValue* sv = o.get("activation_scale");
    if (sv == nullptr || !sv->is_number() || !std::isfinite(sv->number) || !(static_cast<float>(sv->number) > 0.0f))
      return corrupt(where + ": activations 'int8-static' need a finite activation_scale > 0");
    c.activation_scale = static_cast<float>(sv->number);
  } else if (present && act != (scheme_a8(c.scheme) ? "int8" : "float")) {
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
        // A layer's own entry whose group_size does not divide in_features is a ragged layer
        // (model_checkpoint.h): ceil(in / group) groups per row, the last one short.
        if (group > li.in_features) {
          return corrupt(where + ": group_size " + std::to_string(group) + " exceeds in_features " +
                         std::to_string(li.in_features));
        }
      } else {
        // As quantize() does: a default that does not divide falls back to per channel.
        c.fallback = std::to_string(li.in_features) + " % " + std::to_string(group) + " != 0";
        group = li.in_features;
      }
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
}  // namespace

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


}  // namespace webquant::ckpt

namespace webquant::ckpt {

Status parse_qconfig_tables(const JsonValue& q, const ModelLayout& model,
                            std::vector<CheckpointLayer>* tables) {
  tables->clear();
  const std::string where = "quantization_config.embeddings";
  const JsonValue* emb = q.get("embeddings");
  if (emb == nullptr) return Status::Ok();
  if (!emb->is_object()) return corrupt(where + " must be an object");
  for (const auto& kv : emb->object) {
    const ParamInfo* table = nullptr;
    for (const ParamInfo& p : model.params) {
      if (p.kind != ParamKind::kEmbedding || p.shape.size() != 2) continue;
      for (const std::string& n : stored_names(model, p.name)) {
        if (n == kv.first + ".weight") table = &p;
      }
    }
    if (table == nullptr) {
      return corrupt(where + " names '" + kv.first + "', which is not an embedding table of this model");
    }
    LinearInfo li;
    li.name = table->name.substr(0, table->name.size() - 7);  // without ".weight"
    li.out_features = static_cast<int>(table->shape[0]);
    li.in_features = static_cast<int>(table->shape[1]);
    CheckpointLayer c;
    WQ_RETURN_IF_ERROR(parse_scheme(kv.second, where + "[\"" + kv.first + "\"]", false, li, &c));
    if (c.scheme == LinearScheme::kF32 || c.has_bias || c.tied || c.transposed) {
      return corrupt(where + "[\"" + kv.first + "\"] must be a quantized scheme without bias");
    }
    tables->push_back(std::move(c));
  }
  return Status::Ok();
}

}  // namespace webquant::ckpt
