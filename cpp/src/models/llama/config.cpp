// config.json -> LlamaConfig, with transformers' defaults per model_type and strict validation.
#include <cmath>
#include <string>

#include "io/json.h"
#include "webquant/llama.h"

namespace webquant {
namespace {

using io::JsonValue;

Status bad(const std::string& msg) {
  return Status::Error(StatusCode::kInvalidArgument, "config.json: " + msg);
}

// Reads an optional integer field. Absent or null leaves *out as is.
Status read_int(const JsonValue& root, const char* key, bool required, int* out) {
  const JsonValue* v = root.get(key);
  if (v == nullptr || v->is_null()) {
    if (required) return bad(std::string("missing required field '") + key + "'");
    return Status::Ok();
  }
  if (!v->is_number() || !std::isfinite(v->number) || std::floor(v->number) != v->number ||
      std::fabs(v->number) > 2147483647.0) {
    return bad(std::string("field '") + key + "' must be an integer");
  }
  *out = static_cast<int>(v->number);
  return Status::Ok();
}

Status read_float(const JsonValue& root, const char* key, float* out) {
  const JsonValue* v = root.get(key);
  if (v == nullptr || v->is_null()) return Status::Ok();
  if (!v->is_number() || !std::isfinite(v->number)) {
    return bad(std::string("field '") + key + "' must be a finite number");
  }
  *out = static_cast<float>(v->number);
  return Status::Ok();
}

Status read_bool(const JsonValue& root, const char* key, bool* out) {
  const JsonValue* v = root.get(key);
  if (v == nullptr || v->is_null()) return Status::Ok();
  if (v->type != JsonValue::Type::kBool) {
    return bad(std::string("field '") + key + "' must be true or false");
  }
  *out = v->boolean;
  return Status::Ok();
}

Status positive(const char* key, int v) {
  if (v <= 0) return bad(std::string("'") + key + "' must be positive, got " + std::to_string(v));
  return Status::Ok();
}

// rope_scaling (or the newer rope_parameters) object; null / absent means plain RoPE.
Status read_rope_scaling(const JsonValue& rs, LlamaConfig* c) {
  if (rs.is_null()) return Status::Ok();
  if (!rs.is_object()) return bad("'rope_scaling' must be an object or null");
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    const JsonValue* t = rs.get(key);
    if (t != nullptr && t->is_string()) {
      type = t->string;
      break;
    }
  }
  if (rs.get("rope_theta") != nullptr) WQ_RETURN_IF_ERROR(read_float(rs, "rope_theta", &c->rope_theta));
  if (type.empty() || type == "default") {
    c->rope_type = "none";
    return Status::Ok();
  }
  if (type != "linear" && type != "llama3") {
    return Status::Error(StatusCode::kUnsupported,
                         "config.json: rope_scaling type '" + type +
                             "' is not supported; supported: null, default, linear, llama3");
  }
  c->rope_type = type;
  const JsonValue* f = rs.get("factor");
  if (f == nullptr || !f->is_number() || !(f->number > 0) || !std::isfinite(f->number)) {
    return bad("rope_scaling '" + type + "' needs a positive 'factor'");
  }
  c->rope_factor = static_cast<float>(f->number);
  if (type == "llama3") {
    WQ_RETURN_IF_ERROR(read_float(rs, "low_freq_factor", &c->rope_low_freq_factor));
    WQ_RETURN_IF_ERROR(read_float(rs, "high_freq_factor", &c->rope_high_freq_factor));
    WQ_RETURN_IF_ERROR(read_int(rs, "original_max_position_embeddings", false,
                                &c->rope_original_max_position_embeddings));
    if (!(c->rope_low_freq_factor > 0) || !(c->rope_high_freq_factor > c->rope_low_freq_factor) ||
        c->rope_original_max_position_embeddings <= 0) {
      return bad("rope_scaling llama3 needs 0 < low_freq_factor < high_freq_factor and a positive "
                 "original_max_position_embeddings");
    }
  }
  return Status::Ok();
}

}  // namespace

Status parse_llama_config(std::string_view json_text, LlamaConfig* out) {
  JsonValue root;
  Status st = io::parse_json(json_text, &root);
  if (!st.ok()) return Status::Error(st.code, "config.json: " + st.message);
  if (!root.is_object()) return Status::Error(StatusCode::kCorruptData, "config.json: not an object");

  LlamaConfig c;
  const JsonValue* mt = root.get("model_type");
  if (mt == nullptr || !mt->is_string()) return bad("missing 'model_type'");
  c.model_type = mt->string;
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2") {
    return Status::Error(StatusCode::kUnsupported, "model_type '" + c.model_type +
                                                       "' is not supported; supported: llama, "
                                                       "mistral, qwen2");
  }
  const JsonValue* act = root.get("hidden_act");
  if (act != nullptr && !act->is_null()) {
    if (!act->is_string() || (act->string != "silu" && act->string != "swish")) {
      return Status::Error(StatusCode::kUnsupported,
                           "config.json: hidden_act '" + (act->is_string() ? act->string : "?") +
                               "' is not supported; supported: silu");
    }
  }

  WQ_RETURN_IF_ERROR(read_int(root, "hidden_size", true, &c.hidden_size));
  WQ_RETURN_IF_ERROR(read_int(root, "intermediate_size", true, &c.intermediate_size));
  WQ_RETURN_IF_ERROR(read_int(root, "num_hidden_layers", true, &c.num_hidden_layers));
  WQ_RETURN_IF_ERROR(read_int(root, "num_attention_heads", true, &c.num_attention_heads));
  WQ_RETURN_IF_ERROR(read_int(root, "vocab_size", true, &c.vocab_size));
  WQ_RETURN_IF_ERROR(read_int(root, "max_position_embeddings", true, &c.max_position_embeddings));
  c.num_key_value_heads = c.num_attention_heads;
  WQ_RETURN_IF_ERROR(read_int(root, "num_key_value_heads", false, &c.num_key_value_heads));
  WQ_RETURN_IF_ERROR(read_int(root, "head_dim", false, &c.head_dim));
  WQ_RETURN_IF_ERROR(read_float(root, "rms_norm_eps", &c.rms_norm_eps));
  WQ_RETURN_IF_ERROR(read_float(root, "rope_theta", &c.rope_theta));
  WQ_RETURN_IF_ERROR(read_bool(root, "tie_word_embeddings", &c.tie_word_embeddings));

  if (c.model_type == "qwen2") {
    // Qwen2Attention: q/k/v always carry biases, o_proj never.
    c.qkv_bias = true;
    bool sliding = false;
    WQ_RETURN_IF_ERROR(read_bool(root, "use_sliding_window", &sliding));
    if (sliding) {
      return Status::Error(StatusCode::kUnsupported,
                           "config.json: qwen2 use_sliding_window=true is not supported");
    }
  } else if (c.model_type == "llama") {
    bool attention_bias = false;
    WQ_RETURN_IF_ERROR(read_bool(root, "attention_bias", &attention_bias));
    c.qkv_bias = c.o_bias = attention_bias;
    WQ_RETURN_IF_ERROR(read_bool(root, "mlp_bias", &c.mlp_bias));
  } else {  // mistral: no biases; optional sliding window
    WQ_RETURN_IF_ERROR(read_int(root, "sliding_window", false, &c.sliding_window));
    if (c.sliding_window < 0) return bad("'sliding_window' must be positive or null");
  }

  const JsonValue* bos = root.get("bos_token_id");
  if (bos != nullptr && !bos->is_null()) WQ_RETURN_IF_ERROR(read_int(root, "bos_token_id", false, &c.bos_token_id));
  const JsonValue* eos = root.get("eos_token_id");
  if (eos != nullptr && eos->is_array()) {
    for (const JsonValue& e : eos->array) {
      if (!e.is_number() || std::floor(e.number) != e.number || e.number < 0 || e.number > 2147483647.0) {
        return bad("'eos_token_id' entries must be non-negative integers");
      }
      c.eos_token_ids.push_back(static_cast<int>(e.number));
    }
  } else if (eos != nullptr && !eos->is_null()) {
    int id = -1;
    WQ_RETURN_IF_ERROR(read_int(root, "eos_token_id", false, &id));
    c.eos_token_ids.push_back(id);
  }

  const JsonValue* rs = root.get("rope_scaling");
  if (rs != nullptr) WQ_RETURN_IF_ERROR(read_rope_scaling(*rs, &c));
  const JsonValue* rp = root.get("rope_parameters");  // transformers >= 4.57 spelling
  if (rp != nullptr && (rs == nullptr || rs->is_null())) WQ_RETURN_IF_ERROR(read_rope_scaling(*rp, &c));

  // Validation.
  WQ_RETURN_IF_ERROR(positive("hidden_size", c.hidden_size));
  WQ_RETURN_IF_ERROR(positive("intermediate_size", c.intermediate_size));
  WQ_RETURN_IF_ERROR(positive("num_hidden_layers", c.num_hidden_layers));
  WQ_RETURN_IF_ERROR(positive("num_attention_heads", c.num_attention_heads));
  WQ_RETURN_IF_ERROR(positive("num_key_value_heads", c.num_key_value_heads));
  WQ_RETURN_IF_ERROR(positive("vocab_size", c.vocab_size));
  WQ_RETURN_IF_ERROR(positive("max_position_embeddings", c.max_position_embeddings));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    return bad("num_key_value_heads (" + std::to_string(c.num_key_value_heads) +
               ") must divide num_attention_heads (" + std::to_string(c.num_attention_heads) + ")");
  }
  if (c.head_dim == 0) {
    if (c.hidden_size % c.num_attention_heads != 0) {
      return bad("num_attention_heads (" + std::to_string(c.num_attention_heads) +
                 ") must divide hidden_size (" + std::to_string(c.hidden_size) +
                 ") when head_dim is not given");
    }
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  WQ_RETURN_IF_ERROR(positive("head_dim", c.head_dim));
  if (c.head_dim % 2 != 0) {
    return bad("head_dim must be even for rotary embeddings, got " + std::to_string(c.head_dim));
  }
  if (!(c.rms_norm_eps >= 0)) return bad("'rms_norm_eps' must be >= 0");
  if (!(c.rope_theta > 0)) return bad("'rope_theta' must be positive");
  // Sizes whose products must fit comfortably in size_t arithmetic on wasm32.
  if (static_cast<double>(c.vocab_size) * c.hidden_size > 2e9 ||
      static_cast<double>(c.intermediate_size) * c.hidden_size > 2e9 ||
      static_cast<double>(c.q_dim()) * c.hidden_size > 2e9) {
    return bad("model dimensions are too large");
  }
  *out = std::move(c);
  return Status::Ok();
}

}  // namespace webquant
