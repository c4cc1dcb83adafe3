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

// kCorruptData with the byte offset of the problem on malformed input, and for documents of
// more than 2^23 values (bounds memory on hostile input; real headers hold far fewer).
Status parse_json(std::string_view text, JsonValue* out);

// Writing (compact, no whitespace). Strings are copied byte for byte except '"', '\\' and
// control characters, which are escaped; the caller supplies valid UTF-8. Numbers: integral
// values below 2^53 in magnitude print as integers, others with the fewest of 15..17
// significant digits that read back exactly; NaN and Inf (not representable) print as null.
void append_json_string(std::string_view s, std::string* out);
// True when s is well-formed UTF-8 (RFC 3629), the same rule the parser applies to strings.
bool is_valid_utf8(std::string_view s);
void append_json_number(double x, std::string* out);
std::string write_json(const JsonValue& v);

}  // namespace webquant::io
