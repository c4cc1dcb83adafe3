// Reading transformers config.json fields with their defaults and strict checks (internal),
// shared by every architecture's config parser. Errors name the field: kInvalidArgument
// "config.json: field 'n_head' must be an integer".
#pragma once

#include <string>
#include <vector>

#include "io/json.h"
#include "webquant/status.h"

namespace webquant::config {

Status bad(const std::string& msg);  // kInvalidArgument "config.json: msg"

// Absent or null leaves *out as is (or is an error when required).
Status read_int(const io::JsonValue& root, const char* key, bool required, int* out);
Status read_float(const io::JsonValue& root, const char* key, float* out);
Status read_bool(const io::JsonValue& root, const char* key, bool* out);
Status read_string(const io::JsonValue& root, const char* key, std::string* out);
// "bos_token_id" (int) and "eos_token_id" (int or list of ints); absent leaves them as they are.
Status read_special_ids(const io::JsonValue& root, int* bos, std::vector<int>* eos);
Status positive(const char* key, int v);

// Parses config.json text into an object (kCorruptData when it is not a JSON object).
Status parse_object(std::string_view json_text, io::JsonValue* root);

}  // namespace webquant::config
