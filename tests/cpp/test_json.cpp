// The JSON parser and writer under the safetensors, config.json and tokenizer.json readers
// (io/json.h): values and document order, numbers, strings / escapes / UTF-8, the nesting limit and
// trailing garbage, writing round trips.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "io/json.h"

using namespace webquant;
using namespace webquant::io;

namespace {
bool has(const Status& st, const std::string& s) { return st.message.find(s) != std::string::npos; }
Status pj(const std::string& s, JsonValue* v) { return parse_json(s, v); }
bool json_ok(const std::string& s) {
  JsonValue v;
  return parse_json(s, &v).ok();
}
}  // namespace

TEST_CASE("json: values, objects and document order") {
  JsonValue v;
  REQUIRE(pj(" {\"b\": [1, true, false, null, \"s\", {}], \"a\": {\"x\": -2.5}, \"b\": 7 } ", &v).ok());
  REQUIRE(v.is_object());
  REQUIRE(v.object.size() == 3);
  CHECK(v.object[0].first == "b");
  CHECK(v.object[1].first == "a");
  const JsonValue& arr = v.object[0].second;
  REQUIRE(arr.is_array());
  REQUIRE(arr.array.size() == 6);
  CHECK(arr.array[0].number == 1);
  CHECK(arr.array[1].type == JsonValue::Type::kBool);
  CHECK(arr.array[1].boolean);
  CHECK(!arr.array[2].boolean);
  CHECK(arr.array[3].is_null());
  CHECK(arr.array[4].string == "s");
  CHECK(arr.array[5].is_object());
  CHECK(v.get("a")->get("x")->number == -2.5);
  CHECK(v.get("b")->number == 7);  // the last of a repeated key
  CHECK(v.get("zz") == nullptr);
  CHECK(arr.get("x") == nullptr);  // not an object
  REQUIRE(pj("[]", &v).ok());
  CHECK(v.is_array());
  CHECK(v.array.empty());
  REQUIRE(pj("\"\"", &v).ok());
  CHECK(v.is_string());
  CHECK(!json_ok("tru"));
  CHECK(!json_ok("nul"));
  CHECK(!json_ok("True"));
  CHECK(!json_ok("[1,]"));
  CHECK(!json_ok("[,1]"));
  CHECK(!json_ok("{\"a\" 1}"));
  CHECK(!json_ok("{a:1}"));
  CHECK(!json_ok("{'a':1}"));
  CHECK(!json_ok("{\"a\":1,}"));
  CHECK(!json_ok("[1 2]"));
  CHECK(!json_ok("/*c*/1"));
}

TEST_CASE("json: numbers") {
  JsonValue v;
  auto num = [&](const char* s) {
    Status st = pj(s, &v);
    REQUIRE_MESSAGE(st.ok(), s, ": ", st.message);
    REQUIRE(v.is_number());
    return v.number;
  };
  CHECK(num("0") == 0);
  CHECK(std::signbit(num("-0")));
  CHECK(num("123456789") == 123456789);
  CHECK(num("-1.5e3") == -1500);
  CHECK(num("1E-2") == 0.01);
  CHECK(num("2.5E+2") == 250);
  CHECK(num("0.1") == 0.1);
  CHECK(num("9007199254740993") == 9007199254740992.0);  // rounds like every JSON reader
  CHECK(num("1e-400") == 0);                              // underflow is not an error
  CHECK(num("1.7976931348623157e308") == 1.7976931348623157e308);
  for (const char* bad : {"01", "-01", "1.", ".5", "+1", "-", "1e", "1e+", "1.e3", "0x10", "NaN", "Infinity",
                          "-Infinity", "1e400", "-1e400", "1_000", "١"}) {
    Status st = pj(bad, &v);
    CHECK_MESSAGE(st.code == StatusCode::kCorruptData, bad);
  }
  Status st = pj("1e400", &v);
  CHECK(has(st, "out of range"));
}

TEST_CASE("json: strings, escapes and UTF-8") {
  JsonValue v;
  REQUIRE(pj(R"("a\"b\\c\/d\be\ff\ng\rh\ti")", &v).ok());
  CHECK(v.string == "a\"b\\c/d\be\ff\ng\rh\ti");
  REQUIRE(pj(R"("\u0041\u00e9\u20AC\u0000z")", &v).ok());
  CHECK(v.string == std::string("A\xc3\xa9\xe2\x82\xac\0z", 8));
  REQUIRE(pj(R"("\ud83d\ude00")", &v).ok());  // U+1F600 from a surrogate pair
  CHECK(v.string == "\xf0\x9f\x98\x80");
  REQUIRE(pj(R"("\uDBFF\uDFFF")", &v).ok());  // U+10FFFF
  CHECK(v.string == "\xf4\x8f\xbf\xbf");
  REQUIRE(pj("\"\xe2\x96\x81raw \xf0\x9f\x98\x80\"", &v).ok());  // raw UTF-8 passes through
  CHECK(v.string == "\xe2\x96\x81raw \xf0\x9f\x98\x80");

  for (const char* bad : {R"("\ud83d")", R"("\ud83dx")", R"("\ud83d\u0041")", R"("\ude00")",
                          R"("\ud83d\n")", R"("\u12")", R"("\u12g4")", R"("\x41")", R"("\a")", R"("\')",
                          "\"abc", "\"abc\\", "\"a\nb\"", "\"a\tb\"", "\"\x01\"",
                          "\"\xc0\x80\"",          // overlong NUL
                          "\"\xed\xa0\x80\"",      // encoded surrogate
                          "\"\xf4\x90\x80\x80\"",  // above U+10FFFF
                          "\"\xe2\x82\"",          // cut sequence
                          "\"\x80\"", "\"\xff\""}) {
    Status st = pj(bad, &v);
    CHECK_MESSAGE(st.code == StatusCode::kCorruptData, bad);
  }
  Status st = pj(R"("\ud83d")", &v);
  CHECK(has(st, "surrogate"));
  st = pj("\"\xff\"", &v);
  CHECK(has(st, "UTF-8"));
  CHECK(is_valid_utf8("plain \xc3\xa9\xf0\x9f\x98\x80"));
  CHECK(!is_valid_utf8("\xc3"));
  CHECK(!is_valid_utf8("\xe0\x80\x80"));
}

TEST_CASE("json: nesting limit and trailing garbage") {
  JsonValue v;
  std::string ok64 = std::string(64, '[') + std::string(64, ']');
  Status st = pj(ok64, &v);
  CHECK_MESSAGE(st.ok(), st.message);
  CHECK(!json_ok(std::string(65, '[') + std::string(65, ']')));
  st = pj(std::string(65, '[') + std::string(65, ']'), &v);
  CHECK(has(st, "nesting"));
  std::string objs;
  for (int i = 0; i < 65; ++i) objs += "{\"a\":";
  objs += "1" + std::string(65, '}');
  CHECK(!json_ok(objs));
  // A hostile depth must fail fast, not overflow the stack.
  CHECK(!json_ok(std::string(1000000, '[')));

  for (const char* bad : {"{} x", "1 2", "[]]", "{}}", "\"a\"\"b\"", "null,", "", "   "}) {
    CHECK_MESSAGE(!json_ok(bad), bad);
  }
  CHECK(!json_ok(std::string("{}\0", 3)));
  CHECK(json_ok(" \t\r\n{} \t\r\n"));
  st = pj("{\"a\":1} x", &v);
  CHECK(st.code == StatusCode::kCorruptData);
  CHECK(has(st, "byte 8"));
  CHECK(has(st, "trailing"));
  // A failed parse leaves the output untouched.
  v = JsonValue{};
  v.type = JsonValue::Type::kNumber;
  v.number = 42;
  CHECK(!pj("[1,2", &v).ok());
  CHECK(v.number == 42);
}

TEST_CASE("json: writing round trips") {
  const std::string text =
      R"({"s":"q\"b\\n\n\t\u0001 é","n":[0,-5,0.1,1e+300,-2.5e-08,9007199254740993,1.5],"o":{"t":true,"f":false,"z":null},"e":[],"eo":{}})";
  JsonValue v;
  REQUIRE(pj(text, &v).ok());
  std::string w = write_json(v);
  JsonValue back;
  Status st = pj(w, &back);
  REQUIRE_MESSAGE(st.ok(), st.message, " in ", w);
  CHECK(write_json(back) == w);
  CHECK(back.get("s")->string == v.get("s")->string);
  for (size_t i = 0; i < v.get("n")->array.size(); ++i)
    CHECK(back.get("n")->array[i].number == v.get("n")->array[i].number);
  CHECK(w.find("\"n\":[0,-5,0.1,") != std::string::npos);  // integers stay integers, 0.1 is short
  CHECK(w.find("\\u0001") != std::string::npos);

  std::string out;
  append_json_number(std::nan(""), &out);
  CHECK(out == "null");
}
