// safetensors reader/writer: the real stories260K checkpoint, round trips of every dtype, every
// rejection (crafted bytes), every truncation. The JSON parser under it: test_json.cpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "io/json.h"
#include "webquant/convert.h"
#include "webquant/safetensors.h"

using namespace webquant;
using namespace webquant::io;

namespace {

const char* const kAllDTypes[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                                  "BF16", "I32", "U32", "F32", "F64",     "I64",     "U64"};

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open ", path);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// 8-byte little-endian length | header | data, exactly as a file would hold them.
std::vector<uint8_t> make_file(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> b;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b.push_back(uint8_t(n >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Status parse(const std::vector<uint8_t>& b, SafetensorsFile* f) {
  return parse_safetensors(b.data(), b.size(), f);
}

bool has(const Status& st, const std::string& s) { return st.message.find(s) != std::string::npos; }

// Expects `header` (with `data_len` zero bytes of data) to fail with `code` and a message that
// contains every string in `needles`.
void expect_reject(const std::string& header, size_t data_len, StatusCode code,
                   std::initializer_list<const char*> needles) {
  auto b = make_file(header, std::vector<uint8_t>(data_len, 0));
  SafetensorsFile f;
  Status st = parse(b, &f);
  INFO("header: ", header);
  INFO("message: ", st.message);
  CHECK(st.code == code);
  for (const char* n : needles) CHECK(has(st, n));
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  uint64_t begin, uint64_t end) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

// A small file holding several dtypes with non-empty data, written by our writer.
std::vector<uint8_t> small_valid_file() {
  std::vector<float> f32 = {1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 100.0f};
  std::vector<uint16_t> f16 = {fp32_to_fp16(1.5f), fp32_to_fp16(-4.0f), fp32_to_fp16(0.25f)};
  std::vector<uint16_t> bf16 = {fp32_to_bf16(2.0f), fp32_to_bf16(-0.5f)};
  std::vector<int8_t> i8 = {-128, 0, 127, 5, 6};
  std::vector<TensorRecord> t = {
      {"w.f32", "F32", {2, 3}, reinterpret_cast<const uint8_t*>(f32.data()), 24},
      {"w.f16", "F16", {3}, reinterpret_cast<const uint8_t*>(f16.data()), 6},
      {"w.bf16", "BF16", {1, 2}, reinterpret_cast<const uint8_t*>(bf16.data()), 4},
      {"w.i8", "I8", {5}, reinterpret_cast<const uint8_t*>(i8.data()), 5},
  };
  std::vector<uint8_t> out;
  REQUIRE(write_safetensors(t, {{"format", "pt"}}, &out).ok());
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The real checkpoint

TEST_CASE("safetensors: stories260K parses and matches config.json") {
  const std::string dir = WQ_SHARED_DIR "/hub/karpathy/stories260K/";
  auto cfg_bytes = read_file(dir + "config.json");
  JsonValue cfg;
  Status st = parse_json(std::string_view(reinterpret_cast<const char*>(cfg_bytes.data()), cfg_bytes.size()), &cfg);
  REQUIRE_MESSAGE(st.ok(), st.message);
  const int64_t hidden = int64_t(cfg.get("hidden_size")->number);
  const int64_t inter = int64_t(cfg.get("intermediate_size")->number);
  const int64_t layers = int64_t(cfg.get("num_hidden_layers")->number);
  const int64_t heads = int64_t(cfg.get("num_attention_heads")->number);
  const int64_t kv_heads = int64_t(cfg.get("num_key_value_heads")->number);
  const int64_t vocab = int64_t(cfg.get("vocab_size")->number);
  const int64_t head_dim = hidden / heads;
  CHECK(hidden == 64);
  CHECK(layers == 5);
  CHECK(cfg.get("tie_word_embeddings")->boolean == true);

  auto bytes = read_file(dir + "model.safetensors");
  SafetensorsFile f;
  st = parse(bytes, &f);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(f.metadata.at("format") == "pt");

  using Shape = std::vector<int64_t>;
  std::vector<std::pair<std::string, Shape>> expected = {{"model.embed_tokens.weight", {vocab, hidden}},
                                                         {"model.norm.weight", {hidden}}};
  for (int64_t l = 0; l < layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    expected.push_back({p + "input_layernorm.weight", {hidden}});
    expected.push_back({p + "post_attention_layernorm.weight", {hidden}});
    expected.push_back({p + "self_attn.q_proj.weight", {heads * head_dim, hidden}});
    expected.push_back({p + "self_attn.k_proj.weight", {kv_heads * head_dim, hidden}});
    expected.push_back({p + "self_attn.v_proj.weight", {kv_heads * head_dim, hidden}});
    expected.push_back({p + "self_attn.o_proj.weight", {hidden, heads * head_dim}});
    expected.push_back({p + "mlp.gate_proj.weight", {inter, hidden}});
    expected.push_back({p + "mlp.up_proj.weight", {inter, hidden}});
    expected.push_back({p + "mlp.down_proj.weight", {hidden, inter}});
  }
  CHECK(f.tensors.size() == expected.size());  // tied embeddings: no lm_head
  CHECK(f.find("lm_head.weight") == nullptr);
  const TensorView* emb = f.find("model.embed_tokens.weight");
  REQUIRE(emb);
  CHECK(emb->shape == Shape{512, 64});

  size_t covered = 0;
  for (const auto& e : expected) {  // (clang cannot capture structured bindings in doctest's lambdas)
    const TensorView* t = f.find(e.first);
    REQUIRE_MESSAGE(t, e.first);
    CHECK_MESSAGE(t->shape == e.second, e.first);
    CHECK(t->dtype == "F32");
    CHECK(t->nbytes == size_t(t->numel()) * 4);
    CHECK(t->data >= bytes.data() + 8);
    CHECK(t->data + t->nbytes <= bytes.data() + bytes.size());
    covered += t->nbytes;
  }
  // The Python writer leaves no gaps: header + tensors are the whole file.
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  CHECK(8 + n + covered == bytes.size());

  // Conversion of an F32 tensor is a copy of its bytes; RMSNorm weights are finite and non-zero.
  const TensorView* norm = f.find("model.norm.weight");
  std::vector<float> v(64);
  REQUIRE(tensor_to_f32(*norm, v.data()).ok());
  for (int i = 0; i < 64; ++i) {
    float raw;
    std::memcpy(&raw, norm->data + 4 * i, 4);
    CHECK(v[i] == raw);
    CHECK(std::isfinite(v[i]));
  }
  CHECK(std::any_of(v.begin(), v.end(), [](float x) { return x != 0; }));
}

// ---------------------------------------------------------------------------------------------
// Writing and round trips

TEST_CASE("safetensors: every dtype, scalars, empty tensors and metadata round trip") {
  std::mt19937 rng(1234);
  std::vector<std::vector<uint8_t>> payloads;
  std::vector<TensorRecord> recs;
  // Names not in sorted order, so the writer's sort is visible.
  int k = 100;
  for (const char* dt : kAllDTypes) {
    size_t es = safetensors_dtype_size(dt);
    REQUIRE(es > 0);
    for (const auto& shape : std::vector<std::vector<int64_t>>{{2, 3}, {}, {0, 4}, {7}}) {
      size_t numel = 1;
      for (auto d : shape) numel *= size_t(d);
      std::vector<uint8_t> p(numel * es);
      for (auto& x : p) x = uint8_t(rng());
      payloads.push_back(std::move(p));
      recs.push_back({"t" + std::to_string(k--) + "." + dt, dt, shape, payloads.back().data(),
                      payloads.back().size()});
    }
  }
  // The data pointers above were taken while `payloads` grew: take them again.
  for (size_t i = 0; i < recs.size(); ++i) recs[i].data = payloads[i].data();

  std::map<std::string, std::string> meta = {{"format", "pt"},
                                             {"quote\"back\\slash", "line\nbreak\ttab \x01"},
                                             {"unicode", "\xc3\xa9\xe2\x96\x81\xf0\x9f\x98\x80"},
                                             {"empty", ""}};
  std::vector<uint8_t> out;
  Status st = write_safetensors(recs, meta, &out);
  REQUIRE_MESSAGE(st.ok(), st.message);

  uint64_t n = 0;
  std::memcpy(&n, out.data(), 8);
  CHECK(n % 8 == 0);
  const std::string header(reinterpret_cast<const char*>(out.data() + 8), size_t(n));
  CHECK(header.rfind("{\"__metadata__\":{", 0) == 0);
  CHECK(header[header.find_last_not_of(' ')] == '}');
  CHECK(header.size() - header.find_last_not_of(' ') - 1 < 8);  // at most 7 pad spaces

  SafetensorsFile f;
  st = parse(out, &f);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(f.metadata == meta);
  REQUIRE(f.tensors.size() == recs.size());
  // Header order is name order, and the data is contiguous in that order.
  const uint8_t* expect_data = out.data() + 8 + n;
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    if (i) CHECK(f.tensors[i - 1].name < f.tensors[i].name);
    CHECK(f.tensors[i].data == expect_data);
    expect_data += f.tensors[i].nbytes;
  }
  CHECK(expect_data == out.data() + out.size());
  for (size_t i = 0; i < recs.size(); ++i) {
    const TensorView* t = f.find(recs[i].name);
    REQUIRE_MESSAGE(t, recs[i].name);
    CHECK(t->dtype == recs[i].dtype);
    CHECK(t->shape == recs[i].shape);
    REQUIRE(t->nbytes == recs[i].nbytes);
    CHECK(std::equal(t->data, t->data + t->nbytes, payloads[i].begin()));
  }
  // Writing what was parsed gives the same bytes back.
  std::vector<TensorRecord> again;
  for (const auto& t : f.tensors) again.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
  std::vector<uint8_t> out2;
  REQUIRE(write_safetensors(again, f.metadata, &out2).ok());
  CHECK(out2 == out);
}

TEST_CASE("safetensors: writer produces the Python library's layout") {
  const float v[2] = {1.0f, 2.0f};
  std::vector<uint8_t> out;
  REQUIRE(write_safetensors({{"a", "F32", {2}, reinterpret_cast<const uint8_t*>(v), 8}}, {{"format", "pt"}}, &out).ok());
  const std::string json = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  const std::string padded = json + std::string((8 - json.size() % 8) % 8, ' ');
  auto expected = make_file(padded);
  expected.insert(expected.end(), reinterpret_cast<const uint8_t*>(v), reinterpret_cast<const uint8_t*>(v) + 8);
  CHECK(out == expected);

  // No metadata: no "__metadata__" key at all.
  REQUIRE(write_safetensors({{"a", "F32", {2}, reinterpret_cast<const uint8_t*>(v), 8}}, {}, &out).ok());
  CHECK(std::string(out.begin() + 8, out.begin() + 8 + 9) == "{\"a\":{\"dt");
  // An empty file: just "{}" padded.
  REQUIRE(write_safetensors({}, {}, &out).ok());
  CHECK(out == make_file("{}      "));
  SafetensorsFile f;
  REQUIRE(parse(out, &f).ok());
  CHECK(f.tensors.empty());
}

TEST_CASE("safetensors: writer rejects bad records") {
  const uint8_t d[8] = {0};
  std::vector<uint8_t> out;
  Status st = write_safetensors({{"a", "F128", {2}, d, 8}}, {}, &out);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(has(st, "F128"));
  st = write_safetensors({{"a", "F32", {3}, d, 8}}, {}, &out);
  CHECK(st.code == StatusCode::kShapeMismatch);
  CHECK(has(st, "8"));
  CHECK(has(st, "12"));
  st = write_safetensors({{"a", "F32", {-2}, d, 8}}, {}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  st = write_safetensors({{"a", "U8", {8}, d, 8}, {"a", "U8", {8}, d, 8}}, {}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(has(st, "twice"));
  st = write_safetensors({{"__metadata__", "U8", {8}, d, 8}}, {}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  st = write_safetensors({{"a", "U8", {8}, nullptr, 8}}, {}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  st = write_safetensors({{"bad\xff", "U8", {8}, d, 8}}, {}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(has(st, "UTF-8"));
  st = write_safetensors({}, {{"k", "\xc0\x80"}}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  st = write_safetensors({{"a", "U8", {int64_t(1) << 40, int64_t(1) << 40}, d, 8}}, {}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Conversion to float32

TEST_CASE("safetensors: tensor_to_f32 converts F32, F16 and BF16, aligned or not") {
  SafetensorsFile f;
  auto b = small_valid_file();
  REQUIRE(parse(b, &f).ok());
  std::vector<float> v(6);
  REQUIRE(tensor_to_f32(*f.find("w.f32"), v.data()).ok());
  CHECK(v == std::vector<float>{1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 100.0f});
  CHECK(std::signbit(v[4]));
  REQUIRE(tensor_to_f32(*f.find("w.f16"), v.data()).ok());
  CHECK(v[0] == 1.5f);
  CHECK(v[1] == -4.0f);
  CHECK(v[2] == 0.25f);
  REQUIRE(tensor_to_f32(*f.find("w.bf16"), v.data()).ok());
  CHECK(v[0] == 2.0f);
  CHECK(v[1] == -0.5f);
  Status st = tensor_to_f32(*f.find("w.i8"), v.data());
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(has(st, "I8"));
  CHECK(has(st, "w.i8"));

  // Hand-made header of odd length puts the data at an odd address: 2500 elements exercise the
  // staging loop (chunks of 1024) including a tail.
  const size_t count = 2500;
  std::vector<uint8_t> data;
  for (size_t i = 0; i < count; ++i) {
    uint16_t h = fp32_to_fp16(float(i) * 0.25f - 300.0f);
    data.push_back(uint8_t(h));
    data.push_back(uint8_t(h >> 8));
  }
  for (size_t i = 0; i < count; ++i) {
    uint16_t h = fp32_to_bf16(float(i) - 1000.0f);
    data.push_back(uint8_t(h));
    data.push_back(uint8_t(h >> 8));
  }
  std::string h = "{" + entry("h", "F16", "[2500]", 0, 2 * count) + "," +
                  entry("g", "BF16", "[50,50]", 2 * count, 4 * count) + "}";
  if ((8 + h.size()) % 2 == 0) h += " ";
  auto odd = make_file(h, data);
  REQUIRE(parse(odd, &f).ok());
  REQUIRE(reinterpret_cast<uintptr_t>(f.find("h")->data) % 2 == 1);
  std::vector<float> w(count);
  REQUIRE(tensor_to_f32(*f.find("h"), w.data()).ok());
  for (size_t i = 0; i < count; ++i) REQUIRE(w[i] == float(i) * 0.25f - 300.0f);
  REQUIRE(tensor_to_f32(*f.find("g"), w.data()).ok());
  for (size_t i = 0; i < count; ++i) REQUIRE(w[i] == bf16_to_fp32(fp32_to_bf16(float(i) - 1000.0f)));

  // A view whose byte count disagrees with its shape is refused.
  TensorView bad = *f.find("h");
  bad.nbytes -= 2;
  CHECK(tensor_to_f32(bad, w.data()).code == StatusCode::kShapeMismatch);
}

// ---------------------------------------------------------------------------------------------
// Rejections

TEST_CASE("safetensors: file-level rejections") {
  SafetensorsFile f;
  for (size_t len = 0; len < 8; ++len) {
    std::vector<uint8_t> b(len, 0);
    Status st = parse_safetensors(b.data(), b.size(), &f);
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(has(st, "truncated"));
  }
  auto b = make_file("{}");
  b[0] = 100;  // header says 100 bytes, only 2 follow
  Status st = parse(b, &f);
  CHECK(st.code == StatusCode::kCorruptData);
  CHECK(has(st, "truncated: header says 100 bytes, file has 2"));

  b = make_file("{}");
  const uint64_t huge = 100'000'001;
  std::memcpy(b.data(), &huge, 8);
  st = parse(b, &f);
  CHECK(st.code == StatusCode::kCorruptData);
  CHECK(has(st, "100000001"));
  CHECK(has(st, "limit"));
  b = make_file("{}");
  std::memset(b.data(), 0xff, 8);  // 2^64-1: must not wrap around in any size arithmetic
  CHECK(parse(b, &f).code == StatusCode::kCorruptData);

  expect_reject("", 0, StatusCode::kCorruptData, {"invalid JSON"});
  expect_reject("{", 0, StatusCode::kCorruptData, {"invalid JSON"});
  expect_reject("{\"a\":1,}", 0, StatusCode::kCorruptData, {"invalid JSON"});
  expect_reject("{} x", 0, StatusCode::kCorruptData, {"trailing"});
  expect_reject("[]", 0, StatusCode::kCorruptData, {"not a JSON object"});
  expect_reject("\"x\"", 0, StatusCode::kCorruptData, {"not a JSON object"});
  // The header is text: a NUL inside it is not allowed (a zero-filled download is not a file).
  expect_reject(std::string("{}\0\0\0\0\0\0", 8), 0, StatusCode::kCorruptData, {"invalid JSON"});
}

TEST_CASE("safetensors: entry-level rejections") {
  using SC = StatusCode;
  expect_reject("{\"a\":1}", 0, SC::kCorruptData, {"\"a\"", "not an object"});
  expect_reject("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SC::kCorruptData, {"no \"dtype\""});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, SC::kCorruptData, {"no \"shape\""});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, SC::kCorruptData, {"no \"data_offsets\""});
  expect_reject("{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SC::kCorruptData,
                {"\"dtype\" is not a string"});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}}", 4, SC::kCorruptData,
                {"\"shape\" is not an array"});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}}}", 4, SC::kCorruptData,
                {"\"data_offsets\" is not an array"});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, SC::kCorruptData,
                {"2 numbers"});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4, SC::kCorruptData,
                {"shape[0]", "not a number"});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                SC::kCorruptData, {"twice"});
  // Numbers: negative, fractional, beyond 2^53.
  expect_reject("{" + entry("a", "F32", "[-1]", 0, 4) + "}", 4, SC::kCorruptData, {"shape[0]", "negative"});
  expect_reject("{" + entry("a", "F32", "[1.5]", 0, 4) + "}", 4, SC::kCorruptData, {"not an integer"});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, SC::kCorruptData,
                {"data_offsets[0]", "negative"});
  expect_reject("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.25]}}", 4, SC::kCorruptData,
                {"not an integer"});
  expect_reject("{" + entry("a", "U8", "[9007199254740992]", 0, 4) + "}", 4, SC::kCorruptData, {"2^53"});
  expect_reject("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4, SC::kCorruptData,
                {"2^53"});
  // Unknown dtype names itself.
  expect_reject("{" + entry("a", "F128", "[1]", 0, 16) + "}", 16, SC::kUnsupported, {"F128", "\"a\""});
  expect_reject("{" + entry("a", "f32", "[1]", 0, 4) + "}", 4, SC::kUnsupported, {"f32"});
  // Shape product overflow (each dimension is a valid integer).
  expect_reject("{" + entry("a", "U8", "[4294967296,4294967296]", 0, 4) + "}", 4, SC::kCorruptData,
                {"overflow"});
  expect_reject("{" + entry("a", "F64", "[4294967296,536870912]", 0, 4) + "}", 4, SC::kCorruptData,
                {"overflow"});
  // Byte length against shape: both numbers in the message.
  expect_reject("{" + entry("a", "F32", "[2,3]", 0, 20) + "}", 20, SC::kShapeMismatch, {"20", "24"});
  expect_reject("{" + entry("a", "BF16", "[]", 0, 4) + "}", 4, SC::kShapeMismatch, {"4", "2"});
  expect_reject("{" + entry("a", "U8", "[0]", 4, 0) + "}", 4, SC::kCorruptData, {"begin 4 is after end 0"});
  // Truncated data, as a cut download looks.
  expect_reject("{" + entry("a", "F32", "[4]", 0, 16) + "}", 8, SC::kCorruptData,
                {"truncated: tensor \"a\" needs bytes up to 16 but the data section has 8 bytes"});
  // Overlaps, in any header order.
  expect_reject("{" + entry("a", "U8", "[8]", 0, 8) + "," + entry("b", "U8", "[4]", 6, 10) + "}", 10,
                SC::kCorruptData, {"overlap", "\"a\"", "\"b\""});
  expect_reject("{" + entry("b", "U8", "[4]", 6, 10) + "," + entry("a", "U8", "[8]", 0, 8) + "}", 10,
                SC::kCorruptData, {"overlap"});
  expect_reject("{" + entry("a", "U8", "[8]", 0, 8) + "," + entry("b", "U8", "[8]", 0, 8) + "}", 8,
                SC::kCorruptData, {"overlap"});
  expect_reject("{" + entry("a", "U8", "[8]", 0, 8) + "," + entry("e", "U8", "[0]", 4, 4) + "}", 8,
                SC::kCorruptData, {"overlap"});
  // Duplicates.
  expect_reject("{" + entry("a", "U8", "[4]", 0, 4) + "," + entry("a", "U8", "[4]", 4, 8) + "}", 8,
                SC::kCorruptData, {"\"a\" appears twice"});
  expect_reject("{\"__metadata__\":{},\"__metadata__\":{}}", 0, SC::kCorruptData, {"__metadata__ appears twice"});
  // Metadata must be a string -> string map.
  expect_reject("{\"__metadata__\":[]}", 0, SC::kCorruptData, {"__metadata__ is not an object"});
  expect_reject("{\"__metadata__\":{\"k\":1}}", 0, SC::kCorruptData, {"\"k\"", "not a string"});
  expect_reject("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, SC::kCorruptData, {"twice"});
}

TEST_CASE("safetensors: gaps, leftovers, empty tensors and extra keys are accepted") {
  // The Rust library insists on full coverage; we only forbid overlap.
  std::vector<uint8_t> data(32);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i);
  auto b = make_file("{" + entry("a", "U8", "[4]", 8, 12) + "," + entry("e", "F32", "[0,3]", 12, 12) + "," +
                         entry("z", "F32", "[0]", 12, 12) + "," +
                         "\"x\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[20,22],\"extra\":[1,{}]}}",
                     data);
  SafetensorsFile f;
  Status st = parse(b, &f);
  REQUIRE_MESSAGE(st.ok(), st.message);
  REQUIRE(f.tensors.size() == 4);
  CHECK(f.tensors[0].name == "a");  // header order
  CHECK(f.tensors[0].data[0] == 8);
  CHECK(f.find("e")->nbytes == 0);
  CHECK(f.find("e")->numel() == 0);
  CHECK(f.find("x")->data[1] == 21);
  CHECK(f.metadata.empty());
  std::vector<float> none;
  CHECK(tensor_to_f32(*f.find("e"), none.data()).ok());

  // Scalars: shape [] holds one element.
  b = make_file("{" + entry("s", "I64", "[]", 0, 8) + "}", std::vector<uint8_t>(8, 1));
  REQUIRE(parse(b, &f).ok());
  CHECK(f.find("s")->numel() == 1);
  CHECK(f.find("s")->shape.empty());

  // Whitespace anywhere JSON allows it, and an entry ending exactly at the end of the file.
  b = make_file(" {\n\t\"a\" : { \"data_offsets\" : [ 0 , 2 ] , \"shape\" : [ 1 ] , \"dtype\" : \"F16\" } }\r\n ",
                {0x00, 0x3c});
  REQUIRE(parse(b, &f).ok());
  float one = 0;
  REQUIRE(tensor_to_f32(*f.find("a"), &one).ok());
  CHECK(one == 1.0f);
}

TEST_CASE("safetensors: every truncation of a valid file is an error, never a crash") {
  auto bytes = small_valid_file();
  SafetensorsFile ok;
  REQUIRE(parse(bytes, &ok).ok());
  for (size_t len = 0; len < bytes.size(); ++len) {
    // An exact-size heap copy, so ASan sees any read past the end.
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + len);
    SafetensorsFile f;
    Status st = parse_safetensors(cut.data(), cut.size(), &f);
    INFO("len=", len, " message=", st.message);
    REQUIRE(!st.ok());
    CHECK(st.code == StatusCode::kCorruptData);
    // Cuts inside the header can make the JSON invalid; everything else must say "truncated".
    CHECK((has(st, "truncated") || has(st, "invalid JSON")));
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    if (len < 8 || len >= 8 + n) CHECK(has(st, "truncated"));
  }
}

TEST_CASE("safetensors: random byte corruption never crashes") {
  auto bytes = small_valid_file();
  std::mt19937 rng(99);
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = bytes;
    int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = uint8_t(rng());
    SafetensorsFile f;
    if (!parse(b, &f).ok()) continue;
    for (const auto& t : f.tensors) {
      REQUIRE(t.data >= b.data());
      REQUIRE(t.data + t.nbytes <= b.data() + b.size());
      if (t.dtype == "F32" || t.dtype == "F16" || t.dtype == "BF16") {
        std::vector<float> v(size_t(t.numel()));
        CHECK(tensor_to_f32(t, v.data()).ok());
      }
    }
  }
}
