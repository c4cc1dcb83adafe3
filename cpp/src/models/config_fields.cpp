#include "models/config_fields.h"

#include <cmath>

namespace webquant::config {

using io::JsonValue;

Status bad(const std::string& msg) {
  return Status::Error(StatusCode::kInvalidArgument, "config.json: " + msg);
}

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

Status read_string(const JsonValue& root, const char* key, std::string* out) {
  const JsonValue* v = root.get(key);
  if (v == nullptr || v->is_null()) return Status::Ok();
  if (!v->is_string()) return bad(std::string("field '") + key + "' must be a string");
  *out = v->string;
  return Status::Ok();
}

Status read_special_ids(const JsonValue& root, int* bos, std::vector<int>* eos) {
  WQ_RETURN_IF_ERROR(read_int(root, "bos_token_id", false, bos));
  const JsonValue* e = root.get("eos_token_id");
  if (e != nullptr && e->is_array()) {
    eos->clear();
    for (const JsonValue& x : e->array) {
      if (!x.is_number() || std::floor(x.number) != x.number || x.number < 0 || x.number > 2147483647.0) {
        return bad("'eos_token_id' entries must be non-negative integers");
      }
      eos->push_back(static_cast<int>(x.number));
    }
  } else if (e != nullptr && !e->is_null()) {
    int id = -1;
    WQ_RETURN_IF_ERROR(read_int(root, "eos_token_id", false, &id));
    eos->assign(1, id);
  }
  return Status::Ok();
}

Status positive(const char* key, int v) {
  if (v <= 0) return bad(std::string("'") + key + "' must be positive, got " + std::to_string(v));
  return Status::Ok();
}

Status parse_object(std::string_view json_text, JsonValue* root) {
  Status st = io::parse_json(json_text, root);
  if (!st.ok()) return Status::Error(st.code, "config.json: " + st.message);
  if (!root->is_object()) return Status::Error(StatusCode::kCorruptData, "config.json: not an object");
  return Status::Ok();
}

}  // namespace webquant::config
