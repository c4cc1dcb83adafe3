// A small strict JSON parser for safetensors headers, GGUF-free metadata and config.json files.
// Faces untrusted input: depth-limited (64), rejects trailing garbage, invalid escapes and
// control characters, numbers that do not parse. Internal API (not part of the public headers).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webquant/status.h"

namespace webquant::io {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // in document order

  bool is_null() const { return type == Type::kNull; }
  bool is_number() const { return type == Type::kNumber; }
  bool is_string() const { return type == Type::kString; }
  bool is_array() const { return type == Type::kArray; }
  bool is_object() const { return type == Type::kObject; }
  // Member of an object by key (the last one if repeated); nullptr when absent or not an object.
  const JsonValue* get(const std::string& key) const;
};

// kCorruptData with the byte offset of the problem on malformed input.
Status parse_json(std::string_view text, JsonValue* out);

}  // namespace webquant::io
