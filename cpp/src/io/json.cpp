#include "io/json.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace webquant::io {
namespace {

constexpr int kMaxDepth = 64;
// Caps the parsed tree: each value costs ~60-100 bytes, so a 100 MB header of "[0,0,0,..."
// would otherwise ask for gigabytes (and abort a wasm module) instead of returning an error.
constexpr size_t kMaxValues = size_t(1) << 23;

// Length of the well-formed UTF-8 sequence at the start of s (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF), or 0 when it is malformed.
size_t utf8_sequence_length(std::string_view s) {
  auto byte = [&](size_t i) -> unsigned { return static_cast<unsigned char>(s[i]); };
  if (s.empty()) return 0;
  unsigned b0 = byte(0);
  if (b0 < 0x80) return 1;
  size_t n;
  unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 == 0xE0) { n = 3; lo = 0xA0; }
  else if (b0 == 0xED) { n = 3; hi = 0x9F; }
  else if (b0 >= 0xE1 && b0 <= 0xEF) n = 3;
  else if (b0 == 0xF0) { n = 4; lo = 0x90; }
  else if (b0 == 0xF4) { n = 4; hi = 0x8F; }
  else if (b0 >= 0xF1 && b0 <= 0xF3) n = 4;
  else return 0;
  if (s.size() < n) return 0;
  if (byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return n;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Status parse_document(JsonValue* out) {
    skip_ws();
    WQ_RETURN_IF_ERROR(parse_value(out, 0));
    skip_ws();
    if (pos_ != s_.size()) return fail("unexpected trailing characters after the JSON value");
    return Status::Ok();
  }

 private:
  Status fail(const std::string& what) const {
    return Status::Error(StatusCode::kCorruptData,
                         "invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }

  void skip_ws() {
    while (!at_end()) {
      char c = peek();
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  bool consume_literal(const char* lit) {
    size_t n = std::strlen(lit);
    if (s_.size() - pos_ < n || s_.compare(pos_, n, lit) != 0) return false;
    pos_ += n;
    return true;
  }

  Status parse_value(JsonValue* out, int depth) {
    if (++values_ > kMaxValues)
      return fail("document too large: more than " + std::to_string(kMaxValues) + " values");
    if (at_end()) return fail("unexpected end of input, expected a value");
    char c = peek();
    switch (c) {
      case '{': return parse_object(out, depth + 1);
      case '[': return parse_array(out, depth + 1);
      case '"': out->type = JsonValue::Type::kString; return parse_string(&out->string);
      case 't':
        if (!consume_literal("true")) return fail("invalid literal");
        out->type = JsonValue::Type::kBool;
        out->boolean = true;
        return Status::Ok();
      case 'f':
        if (!consume_literal("false")) return fail("invalid literal");
        out->type = JsonValue::Type::kBool;
        out->boolean = false;
        return Status::Ok();
      case 'n':
        if (!consume_literal("null")) return fail("invalid literal");
        out->type = JsonValue::Type::kNull;
        return Status::Ok();
      default:
        if (c == '-' || (c >= '0' && c <= '9')) return parse_number(out);
        return fail(std::string("unexpected character '") + printable(c) + "'");
    }
  }

  static std::string printable(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", u);
    return buf;
  }

  Status parse_object(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than " + std::to_string(kMaxDepth));
    out->type = JsonValue::Type::kObject;
    ++pos_;  // '{'
    skip_ws();
    if (!at_end() && peek() == '}') { ++pos_; return Status::Ok(); }
    while (true) {
      skip_ws();
      if (at_end() || peek() != '"') return fail("expected a string key in object");
      std::string key;
      WQ_RETURN_IF_ERROR(parse_string(&key));
      skip_ws();
      if (at_end() || peek() != ':') return fail("expected ':' after object key");
      ++pos_;
      skip_ws();
      out->object.emplace_back(std::move(key), JsonValue{});
      WQ_RETURN_IF_ERROR(parse_value(&out->object.back().second, depth));
      skip_ws();
      if (at_end()) return fail("unexpected end of input in object");
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == '}') { ++pos_; return Status::Ok(); }
      return fail("expected ',' or '}' in object");
    }
  }

  Status parse_array(JsonValue* out, int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than " + std::to_string(kMaxDepth));
    out->type = JsonValue::Type::kArray;
    ++pos_;  // '['
    skip_ws();
    if (!at_end() && peek() == ']') { ++pos_; return Status::Ok(); }
    while (true) {
      skip_ws();
      out->array.emplace_back();
      WQ_RETURN_IF_ERROR(parse_value(&out->array.back(), depth));
      skip_ws();
      if (at_end()) return fail("unexpected end of input in array");
      if (peek() == ',') { ++pos_; continue; }
      if (peek() == ']') { ++pos_; return Status::Ok(); }
      return fail("expected ',' or ']' in array");
    }
  }

  // RFC 8259 grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Status parse_number(JsonValue* out) {
    size_t start = pos_;
    auto digits = [&]() {
      size_t d = pos_;
      while (!at_end() && peek() >= '0' && peek() <= '9') ++pos_;
      return pos_ - d;
    };
    if (peek() == '-') ++pos_;
    if (at_end()) return fail("truncated number");
    if (peek() == '0') {
      ++pos_;
      if (!at_end() && peek() >= '0' && peek() <= '9') return fail("leading zero in number");
    } else if (digits() == 0) {
      return fail("expected a digit in number");
    }
    if (!at_end() && peek() == '.') {
      ++pos_;
      if (digits() == 0) return fail("expected a digit after '.' in number");
    }
    if (!at_end() && (peek() == 'e' || peek() == 'E')) {
      ++pos_;
      if (!at_end() && (peek() == '+' || peek() == '-')) ++pos_;
      if (digits() == 0) return fail("expected a digit in exponent");
    }
    // The grammar above is a subset of what strtod accepts, so strtod consumes it all.
    // strtod needs a terminated string; JSON numbers have no locale-dependent characters
    // except '.', and nothing in this library calls setlocale.
    std::string lit(s_.substr(start, pos_ - start));
    errno = 0;
    char* end = nullptr;
    double v = std::strtod(lit.c_str(), &end);
    if (end != lit.c_str() + lit.size()) { pos_ = start; return fail("malformed number"); }
    if (std::isinf(v)) { pos_ = start; return fail("number out of range: " + lit); }
    out->type = JsonValue::Type::kNumber;
    out->number = v;
    return Status::Ok();
  }

  Status parse_hex4(uint32_t* cp) {
    if (s_.size() - pos_ < 4) return fail("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= uint32_t(c - '0');
      else if (c >= 'a' && c <= 'f') v |= uint32_t(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= uint32_t(c - 'A' + 10);
      else return fail("invalid hex digit in \\u escape");
    }
    pos_ += 4;
    *cp = v;
    return Status::Ok();
  }

  static void append_utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(char(cp));
    } else if (cp < 0x800) {
      out->push_back(char(0xC0 | (cp >> 6)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(char(0xE0 | (cp >> 12)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(char(0xF0 | (cp >> 18)));
      out->push_back(char(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(char(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(char(0x80 | (cp & 0x3F)));
    }
  }

  Status parse_string(std::string* out) {
    ++pos_;  // opening quote
    while (true) {
      if (at_end()) return fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(peek());
      if (c == '"') { ++pos_; return Status::Ok(); }
      if (c < 0x20) return fail("unescaped control character in string");
      if (c >= 0x80) {
        size_t n = utf8_sequence_length(s_.substr(pos_));
        if (n == 0) return fail("invalid UTF-8 in string");
        out->append(s_.data() + pos_, n);
        pos_ += n;
        continue;
      }
      if (c != '\\') { out->push_back(char(c)); ++pos_; continue; }
      ++pos_;
      if (at_end()) return fail("unterminated escape in string");
      char e = peek();
      ++pos_;
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t cp = 0;
          WQ_RETURN_IF_ERROR(parse_hex4(&cp));
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            // A high surrogate must be followed by an escaped low surrogate.
            if (s_.size() - pos_ < 2 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u')
              return fail("lone high surrogate in \\u escape");
            pos_ += 2;
            uint32_t lo = 0;
            WQ_RETURN_IF_ERROR(parse_hex4(&lo));
            if (lo < 0xDC00 || lo > 0xDFFF) return fail("high surrogate not followed by a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          return fail(std::string("invalid escape '\\") + printable(e) + "' in string");
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  size_t values_ = 0;
};

void write_value(const JsonValue& v, std::string* out) {
  switch (v.type) {
    case JsonValue::Type::kNull: *out += "null"; break;
    case JsonValue::Type::kBool: *out += v.boolean ? "true" : "false"; break;
    case JsonValue::Type::kNumber: append_json_number(v.number, out); break;
    case JsonValue::Type::kString: append_json_string(v.string, out); break;
    case JsonValue::Type::kArray: {
      out->push_back('[');
      for (size_t i = 0; i < v.array.size(); ++i) {
        if (i) out->push_back(',');
        write_value(v.array[i], out);
      }
      out->push_back(']');
      break;
    }
    case JsonValue::Type::kObject: {
      out->push_back('{');
      for (size_t i = 0; i < v.object.size(); ++i) {
        if (i) out->push_back(',');
        append_json_string(v.object[i].first, out);
        out->push_back(':');
        write_value(v.object[i].second, out);
      }
      out->push_back('}');
      break;
    }
  }
}

}  // namespace

const JsonValue* JsonValue::get(const std::string& key) const {
  if (type != Type::kObject) return nullptr;
  for (auto it = object.rbegin(); it != object.rend(); ++it)
    if (it->first == key) return &it->second;
  return nullptr;
}

Status parse_json(std::string_view text, JsonValue* out) {
  JsonValue v;
  Parser p(text);
  WQ_RETURN_IF_ERROR(p.parse_document(&v));
  *out = std::move(v);
  return Status::Ok();
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s.substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void append_json_string(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default:
        if (c < 0x20) {
          *out += "\\u00";
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

void append_json_number(double x, std::string* out) {
  if (!std::isfinite(x)) { *out += "null"; return; }
  char buf[32];
  if (x == std::floor(x) && std::fabs(x) < 9007199254740992.0) {
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(x));
    if (x == 0 && std::signbit(x)) std::snprintf(buf, sizeof buf, "-0");
  } else {
    // Shortest of %.15g..%.17g that reads back to the same double.
    for (int prec = 15; prec <= 17; ++prec) {
      std::snprintf(buf, sizeof buf, "%.*g", prec, x);
      if (std::strtod(buf, nullptr) == x) break;
    }
  }
  *out += buf;
}

std::string write_json(const JsonValue& v) {
  std::string out;
  write_value(v, &out);
  return out;
}

}  // namespace webquant::io
