// Helpers of checkpoint_format.h: JSON building and the tensors / entries of one quantized layer.
#include "quant/checkpoint_format.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "webquant/pack.h"

namespace webquant::ckpt {

void put(JsonValue* obj, const std::string& key, JsonValue v) {
  for (auto& kv : obj->object) {
    if (kv.first == key) {
      kv.second = std::move(v);
      return;
    }
  }
  obj->object.emplace_back(key, std::move(v));
}

void erase(JsonValue* obj, const std::string& key) {
  auto& o = obj->object;
  o.erase(std::remove_if(o.begin(), o.end(), [&](const auto& kv) { return kv.first == key; }), o.end());
}

Status corrupt(std::string msg) { return Status::Error(StatusCode::kCorruptData, std::move(msg)); }

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

bool scheme_from_name(const std::string& name, LinearScheme* out) {
  for (LinearScheme s : {LinearScheme::kF32, LinearScheme::kW8A16, LinearScheme::kW4A16,
                         LinearScheme::kW2A16, LinearScheme::kW8A8, LinearScheme::kW4A8,
                         LinearScheme::kW3A16, LinearScheme::kLut4A16}) {
    if (name == linear_scheme_name(s)) {
      *out = s;
      return true;
    }
  }
  return false;
}

namespace {

template <typename T>
std::vector<uint8_t> as_bytes(const T* p, size_t n) {
  std::vector<uint8_t> b(n * sizeof(T));
  if (n != 0) std::memcpy(b.data(), p, b.size());  // little-endian host (x86, wasm)
  return b;
}

}  // namespace

Status encode_quantized(const std::string& module, const LinearQuantizedData& d,
                        std::vector<OwnedTensor>* out) {
  const int64_t R = d.out_features, C = d.in_features, groups = (C + d.group_size - 1) / d.group_size;
  if (d.bits == 8) {
    out->push_back({module + ".qweight", "I8", {R, C}, as_bytes(d.q.data(), d.q.size())});
    if (d.asymmetric) {  // signed zero points, like the codes (model_checkpoint.h)
      std::vector<int8_t> z(d.zero_points.size());
      for (size_t i = 0; i < z.size(); ++i) z[i] = static_cast<int8_t>(d.zero_points[i]);
      out->push_back({module + ".zero_points", "I8", {R, groups}, as_bytes(z.data(), z.size())});
    }
  } else {
    const int32_t offset = 1 << (d.bits - 1);  // u = q - qmin
    const size_t rb = packed_size(static_cast<size_t>(C), d.bits);
    std::vector<uint8_t> packed(static_cast<size_t>(R) * rb), codes(static_cast<size_t>(C));
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t k = 0; k < C; ++k) codes[k] = static_cast<uint8_t>(d.q[r * C + k] + offset);
      WQ_RETURN_IF_ERROR(pack_codes(codes.data(), codes.size(), d.bits, packed.data() + r * rb));
    }
    out->push_back({module + ".qweight", "U8", {R, static_cast<int64_t>(rb)}, std::move(packed)});
    if (d.method == QuantMethod::kHqq) {  // float zero points, signed code domain
      out->push_back({module + ".zero_points", "F32", {R, groups},
                      as_bytes(d.zero_points_f.data(), d.zero_points_f.size())});
    } else if (d.asymmetric) {
      std::vector<uint8_t> z(d.zero_points.size());
      for (size_t i = 0; i < z.size(); ++i) z[i] = static_cast<uint8_t>(d.zero_points[i] + offset);
      out->push_back({module + ".zero_points", "U8", {R, groups}, std::move(z)});
    }
  }
  out->push_back({module + ".scales", "F32", {R, groups}, as_bytes(d.scales.data(), d.scales.size())});
  if (d.scheme == LinearScheme::kLut4A16)
    out->push_back({module + ".codebook", "F32", {16}, as_bytes(d.table.data(), d.table.size())});
  return Status::Ok();
}

JsonValue quantized_entry(const LinearQuantizedData& d, bool has_bias) {
  JsonValue o = jobj();
  put(&o, "scheme", jstr(linear_scheme_name(d.scheme)));
  put(&o, "bits", jnum(d.bits));
  put(&o, "mode", jstr(d.asymmetric ? "asymmetric" : "symmetric"));
  put(&o, "granularity", jstr(d.group_size == d.in_features ? "per-channel" : "per-group"));
  put(&o, "group_size", jnum(d.group_size));
  put(&o, "activations", jstr(scheme_a8(d.scheme) ? "int8" : "float"));
  put(&o, "packing", jstr(d.bits == 8 ? "none" : "lsb-first"));
  put(&o, "out_features", jnum(d.out_features));
  put(&o, "in_features", jnum(d.in_features));
  put(&o, "bias", jbool(has_bias));
  if (!d.fallback.empty()) put(&o, "fallback", jstr(d.fallback));
  MethodRecord m;
  m.method = d.method;
  m.range_search = d.method == QuantMethod::kHqq ? d.range_search : 0;
  put_method(m, &o);
  if (d.codebook != Codebook::kNone) put(&o, "codebook", jstr(codebook_name(d.codebook)));
  return o;
}

void put_method(const MethodRecord& r, JsonValue* o) {
  if (r.method != QuantMethod::kRtn) put(o, "method", jstr(quant_method_name(r.method)));
  if (r.hqq_grid) put(o, "grid", jstr("hqq"));
  if (r.float_zero() && r.range_search > 0) put(o, "range_search", jnum(r.range_search));
}

Status parse_codebook(const JsonValue& o, const std::string& where, LinearScheme scheme,
                      Codebook* out) {
  *out = Codebook::kNone;
  const JsonValue* c = o.get("codebook");
  const bool lut = scheme == LinearScheme::kLut4A16;
  if (c == nullptr) return lut ? corrupt(where + ": lut4a16 needs a \"codebook\"") : Status::Ok();
  if (!lut) return corrupt(where + ": \"codebook\" belongs to lut4a16 layers only");
  if (!c->is_string()) return corrupt(where + ".codebook must be a string");
  for (Codebook k : {Codebook::kNf4, Codebook::kLog4, Codebook::kKmeans4}) {
    if (c->string == codebook_name(k)) {
      *out = k;
      return Status::Ok();
    }
  }
  return Status::Error(StatusCode::kUnsupported, where + ": codebook '" + c->string +
                                                     "' is not supported (nf4, log4, kmeans4)");
}

Status parse_method(const JsonValue& o, const std::string& where, LinearScheme scheme,
                    bool asymmetric, MethodRecord* out) {
  MethodRecord r;
  const JsonValue* m = o.get("method");
  if (m != nullptr) {
    if (!m->is_string()) return corrupt(where + ".method must be a string");
    if (m->string == "gptq" || m->string == "awq") {
      // Calibrated: stored in the RTN form, or (gptq with "grid": "hqq") in HQQ's; the method is a
      // record of how the codes were chosen.
      r.method = m->string == "gptq" ? QuantMethod::kGptq : QuantMethod::kAwq;
    } else if (m->string == "hqq") {
      r.method = QuantMethod::kHqq;
    } else if (m->string != "rtn") {
      return Status::Error(StatusCode::kUnsupported,
                           where + ": method '" + m->string + "' is not supported (rtn, hqq, gptq, awq)");
    }
  }
  if (const JsonValue* g = o.get("grid")) {
    if (!g->is_string()) return corrupt(where + ".grid must be a string");
    if (r.method != QuantMethod::kGptq) return corrupt(where + ": \"grid\" belongs to method gptq");
    if (g->string != "rtn" && g->string != "hqq")
      return Status::Error(StatusCode::kUnsupported,
                           where + ": grid '" + g->string + "' is not supported (rtn, hqq)");
    r.hqq_grid = g->string == "hqq";
  }
  if (r.float_zero() &&
      ((scheme != LinearScheme::kW4A16 && scheme != LinearScheme::kW3A16 &&
        scheme != LinearScheme::kW2A16) ||
       !asymmetric))
    return corrupt(where + (r.hqq_grid ? ": grid hqq" : ": method hqq") +
                   " needs an asymmetric w4a16, w3a16 or w2a16 layer");
  if (const JsonValue* rs = o.get("range_search")) {
    if (!r.float_zero()) return corrupt(where + ": \"range_search\" belongs to an HQQ grid (method hqq, or gptq with grid hqq)");
    if (!rs->is_number() || rs->number != std::floor(rs->number) || rs->number < 0 || rs->number > 100)
      return corrupt(where + ".range_search must be an integer in [0, 100]");
    r.range_search = static_cast<int>(rs->number);
  }
  *out = r;
  return Status::Ok();
}

namespace {

Status int_field(const JsonValue& o, const char* key, const std::string& where, int* out, bool required) {
  const JsonValue* v = o.get(key);
  if (v == nullptr) return required ? corrupt(where + " has no \"" + key + "\"") : Status::Ok();
  if (!v->is_number() || v->number != std::floor(v->number) || v->number < 0 || v->number > (1 << 30)) {
    return corrupt(where + "." + key + " must be a non-negative integer");
  }
  *out = static_cast<int>(v->number);
  return Status::Ok();
}

}  // namespace

Status parse_layer_entry(const JsonValue& o, const std::string& where, LayerEntry* out) {
  if (!o.is_object()) return corrupt(where + " must be an object");
  LayerEntry e;
  const JsonValue* scheme = o.get("scheme");
  if (scheme == nullptr || !scheme->is_string()) return corrupt(where + ".scheme must be a string");
  if (!scheme_from_name(scheme->string, &e.scheme)) {
    return Status::Error(StatusCode::kUnsupported, where + ": scheme '" + scheme->string +
                                                       "' is not supported (known: f32, w8a16, w4a16, w2a16, w8a8, w4a8, w3a16, lut4a16)");
  }
  const JsonValue* dt = o.get("source_dtype");
  if (dt != nullptr) {
    if (!dt->is_string() || (dt->string != "F32" && dt->string != "F16" && dt->string != "BF16")) {
      return corrupt(where + ".source_dtype must be \"F32\", \"F16\" or \"BF16\"");
    }
    e.source_dtype = dt->string;
  }
  if (e.scheme == LinearScheme::kF32) {
    *out = std::move(e);
    return Status::Ok();
  }
  e.bits = scheme_bits(e.scheme);
  int bits = e.bits;
  WQ_RETURN_IF_ERROR(int_field(o, "bits", where, &bits, false));
  if (bits != e.bits) return corrupt(where + ": bits " + std::to_string(bits) + " does not match scheme " + scheme->string);
  const JsonValue* mode = o.get("mode");
  if (mode != nullptr) {
    if (!mode->is_string() || (mode->string != "symmetric" && mode->string != "asymmetric")) {
      return Status::Error(StatusCode::kUnsupported, where + ".mode must be 'symmetric' or 'asymmetric'");
    }
    e.asymmetric = mode->string == "asymmetric";
  }
  if (e.asymmetric && e.bits == 8) return corrupt(where + ": " + scheme->string + " is symmetric only");
  MethodRecord mr;
  WQ_RETURN_IF_ERROR(parse_method(o, where, e.scheme, e.asymmetric, &mr));
  e.method = mr.method;
  e.hqq_grid = mr.hqq_grid;
  e.range_search = mr.range_search;
  WQ_RETURN_IF_ERROR(parse_codebook(o, where, e.scheme, &e.codebook));
  WQ_RETURN_IF_ERROR(int_field(o, "out_features", where, &e.out_features, true));
  WQ_RETURN_IF_ERROR(int_field(o, "in_features", where, &e.in_features, true));
  if (e.out_features < 1 || e.in_features < 1) return corrupt(where + ": out_features and in_features must be >= 1");
  e.group_size = e.in_features;
  WQ_RETURN_IF_ERROR(int_field(o, "group_size", where, &e.group_size, false));
  // A group_size that does not divide in_features is a ragged layer (the last group of each row
  // short, model_checkpoint.h); it cannot exceed in_features.
  if (e.group_size < 1 || e.group_size > e.in_features) {
    return corrupt(where + ": group_size " + std::to_string(e.group_size) + " is not in [1, in_features " +
                   std::to_string(e.in_features) + "]");
  }
  const JsonValue* tr = o.get("transposed");
  if (tr != nullptr) {
    if (tr->type != JsonValue::Type::kBool) return corrupt(where + ".transposed must be true or false");
    e.transposed = tr->boolean;
  }
  const JsonValue* shape = o.get("shape");
  if (shape != nullptr) {
    if (!shape->is_array() || shape->array.size() != 4) return corrupt(where + ".shape must be a 4-D shape");
    int64_t inner = 1;
    for (const JsonValue& d : shape->array) {
      if (!d.is_number() || d.number != std::floor(d.number) || d.number < 1 || d.number > (1 << 30)) {
        return corrupt(where + ".shape must hold positive integers");
      }
      e.shape.push_back(static_cast<int64_t>(d.number));
    }
    inner = e.shape[1] * e.shape[2] * e.shape[3];
    if (e.shape[0] != e.out_features || inner != e.in_features || e.transposed) {
      return corrupt(where + ".shape " + shape_str(e.shape) + " does not fit [" + std::to_string(e.out_features) +
                     ", " + std::to_string(e.in_features) + "]");
    }
  }
  *out = std::move(e);
  return Status::Ok();
}

}  // namespace webquant::ckpt
