// config.json -> LlamaConfig, with transformers' defaults per model_type and strict validation.
#include <cmath>
#include <string>

#include "io/json.h"
#include "models/config_fields.h"
#include "webquant/llama.h"

namespace webquant {
namespace {

using io::JsonValue;

using config::bad;
using config::positive;
using config::read_bool;
using config::read_float;
using config::read_int;

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
  WQ_RETURN_IF_ERROR(config::parse_object(json_text, &root));

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

  WQ_RETURN_IF_ERROR(config::read_special_ids(root, &c.bos_token_id, &c.eos_token_ids));

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

std::string llama_config_to_json(const LlamaConfig& c) {
  using io::JsonValue;
  auto num = [](double v) {
    JsonValue j;
    j.type = JsonValue::Type::kNumber;
    j.number = v;
    return j;
  };
  auto str = [](const std::string& v) {
    JsonValue j;
    j.type = JsonValue::Type::kString;
    j.string = v;
    return j;
  };
  JsonValue root;
  root.type = JsonValue::Type::kObject;
  JsonValue arch;
  arch.type = JsonValue::Type::kArray;
  arch.array.push_back(str("LlamaForCausalLM"));
  root.object.emplace_back("architectures", arch);
  root.object.emplace_back("model_type", str(c.model_type));
  root.object.emplace_back("hidden_size", num(c.hidden_size));
  root.object.emplace_back("intermediate_size", num(c.intermediate_size));
  root.object.emplace_back("num_hidden_layers", num(c.num_hidden_layers));
  root.object.emplace_back("num_attention_heads", num(c.num_attention_heads));
  root.object.emplace_back("num_key_value_heads", num(c.num_key_value_heads));
  root.object.emplace_back("head_dim", num(c.head_dim));
  root.object.emplace_back("vocab_size", num(c.vocab_size));
  root.object.emplace_back("max_position_embeddings", num(c.max_position_embeddings));
  // float -> double keeps the value the core uses exactly.
  root.object.emplace_back("rms_norm_eps", num(c.rms_norm_eps));
  root.object.emplace_back("rope_theta", num(c.rope_theta));
  root.object.emplace_back("hidden_act", str("silu"));
  JsonValue tied;
  tied.type = JsonValue::Type::kBool;
  tied.boolean = c.tie_word_embeddings;
  root.object.emplace_back("tie_word_embeddings", tied);
  if (c.bos_token_id >= 0) root.object.emplace_back("bos_token_id", num(c.bos_token_id));
  if (c.eos_token_ids.size() == 1) {
    root.object.emplace_back("eos_token_id", num(c.eos_token_ids[0]));
  } else if (!c.eos_token_ids.empty()) {
    JsonValue ids;
    ids.type = JsonValue::Type::kArray;
    for (int id : c.eos_token_ids) ids.array.push_back(num(id));
    root.object.emplace_back("eos_token_id", ids);
  }
  root.object.emplace_back("torch_dtype", str("float32"));
  return io::write_json(root);
}

}  // namespace webquant
