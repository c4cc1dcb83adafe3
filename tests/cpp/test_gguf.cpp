// GGUF reader/writer: round trips, ggml's Q8_0/Q4_0 block math, and every rejection.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "webquant/convert.h"
#include "webquant/gguf.h"

using namespace webquant;
using namespace webquant::io;

namespace {

std::vector<uint8_t> small_file(size_t alignment = 32) {
  GgufWriter w(alignment);
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.block_count", 5);
  w.add_f32("llama.rope.freq_base", 10000.0f);
  w.add_i32("tokenizer.ggml.bos_token_id", 1);
  w.add_bool("general.flag", true);
  w.add_string_array("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xe2\x96\x81Zoo"});
  w.add_f32_array("tokenizer.ggml.scores", {0.0f, -1.5f, 2.25f, 3.0f});
  w.add_i32_array("tokenizer.ggml.token_type", {2, 3, 3, 1});
  std::vector<float> f32(2 * 3);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = 0.5f * float(i) - 1.0f;
  w.add_tensor("a.weight", {3, 2}, 0, f32.data(), f32.size() * 4);
  std::vector<uint16_t> f16 = {fp32_to_fp16(1.0f), fp32_to_fp16(-2.5f)};
  w.add_tensor("b.weight", {2}, 1, f16.data(), 4);
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = std::sin(0.3f * i);
  BlockQ8_0 q8[2];
  REQUIRE(quantize_row_q8_0(x.data(), 64, q8).ok());
  w.add_tensor("c.weight", {64}, 8, q8, sizeof(q8));
  BlockQ4_0 q4[2];
  REQUIRE(quantize_row_q4_0(x.data(), 64, q4).ok());
  w.add_tensor("d.weight", {32, 2}, 2, q4, sizeof(q4));
  std::vector<uint8_t> out;
  REQUIRE(w.finish(&out).ok());
  return out;
}

void put_u32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
void put_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }

// Offset of the first tensor-info record (after the header and all metadata) in small_file().
size_t find(const std::vector<uint8_t>& b, const std::string& s) {
  auto it = std::search(b.begin(), b.end(), s.begin(), s.end());
  REQUIRE(it != b.end());
  return size_t(it - b.begin());
}

}  // namespace

TEST_CASE("gguf: writer output parses back with metadata and tensors") {
  auto bytes = small_file();
  GgufFile f;
  Status st = parse_gguf(bytes.data(), bytes.size(), &f);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(f.version == 3);
  CHECK(f.alignment == 32);
  REQUIRE(f.get("general.architecture"));
  CHECK(f.get("general.architecture")->str == "llama");
  CHECK(f.get("llama.block_count")->u == 5);
  CHECK(f.get("llama.rope.freq_base")->f == 10000.0);
  CHECK(f.get("tokenizer.ggml.bos_token_id")->i == 1);
  CHECK(f.get("general.flag")->u == 1);
  CHECK(f.get("tokenizer.ggml.tokens")->strs == std::vector<std::string>{"<unk>", "<s>", "</s>", "\xe2\x96\x81Zoo"});
  CHECK(f.get("tokenizer.ggml.scores")->floats == std::vector<double>{0.0, -1.5, 2.25, 3.0});
  CHECK(f.get("tokenizer.ggml.token_type")->ints == std::vector<int64_t>{2, 3, 3, 1});
  REQUIRE(f.tensors.size() == 4);
  for (const auto& t : f.tensors) {
    CHECK(t.offset % 32 == 0);
    CHECK((t.data - bytes.data()) % 32 == 0);
  }
  const GgufTensorInfo* a = f.find("a.weight");
  REQUIRE(a);
  CHECK(a->ne == std::vector<uint64_t>{3, 2});
  std::vector<float> av(6);
  REQUIRE(gguf_tensor_to_f32(*a, av.data()).ok());
  for (int i = 0; i < 6; ++i) CHECK(av[i] == 0.5f * float(i) - 1.0f);
  std::vector<float> bv(2);
  REQUIRE(gguf_tensor_to_f32(*f.find("b.weight"), bv.data()).ok());
  CHECK(bv[0] == 1.0f);
  CHECK(bv[1] == -2.5f);
  // Q8_0 reconstructs sin(0.3 i) within half a step (1/127); Q4_0 within one step (1/8): its grid
  // -8..7 clamps the side opposite the largest magnitude at 7 steps.
  for (const char* name : {"c.weight", "d.weight"}) {
    std::vector<float> v(64);
    REQUIRE(gguf_tensor_to_f32(*f.find(name), v.data()).ok());
    const double bound = std::string(name) == "c.weight" ? 0.5 / 127 : 1.0 / 8;
    for (int i = 0; i < 64; ++i) CHECK(std::fabs(v[i] - std::sin(0.3f * i)) <= bound + 1e-3);
  }
  CHECK(f.find("nope") == nullptr);
}

TEST_CASE("gguf: non-default alignment is recorded and honoured") {
  auto bytes = small_file(64);
  GgufFile f;
  REQUIRE(parse_gguf(bytes.data(), bytes.size(), &f).ok());
  CHECK(f.alignment == 64);
  for (const auto& t : f.tensors) CHECK((t.data - bytes.data()) % 64 == 0);
}

TEST_CASE("gguf: Q8_0 and Q4_0 blocks follow ggml's reference quantizers") {
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = float(i - 16) / 4.0f;  // -4 .. 3.75, max |x| = 4 at i=0
  BlockQ8_0 q8;
  REQUIRE(quantize_row_q8_0(x, 32, &q8).ok());
  CHECK(q8.d == fp32_to_fp16(4.0f / 127.0f));
  CHECK(q8.qs[0] == -127);
  CHECK(q8.qs[16] == 0);
  CHECK(q8.qs[31] == int(std::round(3.75f * (127.0f / 4.0f))));
  BlockQ4_0 q4;
  REQUIRE(quantize_row_q4_0(x, 32, &q4).ok());
  // max-magnitude value is -4 -> d = -4 / -8 = 0.5; x = 0.5 (q - 8).
  CHECK(fp16_to_fp32(q4.d) == 0.5f);
  CHECK((q4.qs[0] & 0x0F) == 0);       // -4 -> 0
  CHECK((q4.qs[0] >> 4) == 8);         // x[16] = 0 -> 8
  CHECK((q4.qs[15] >> 4) == 15);       // x[31] = 3.75 -> 7.5 + 8.5 = 16 -> clamped 15
  float zeros[32] = {0};
  REQUIRE(quantize_row_q4_0(zeros, 32, &q4).ok());
  CHECK(fp16_to_fp32(q4.d) == 0.0f);
  CHECK(quantize_row_q8_0(x, 31, &q8).code == StatusCode::kInvalidArgument);
  x[3] = NAN;
  CHECK(quantize_row_q8_0(x, 32, &q8).code == StatusCode::kNonFinite);
  CHECK(quantize_row_q4_0(x, 32, &q4).code == StatusCode::kNonFinite);
}

TEST_CASE("gguf: every truncation is an error, never a crash") {
  auto bytes = small_file();
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + len);
    GgufFile f;
    Status st = parse_gguf(cut.data(), cut.size(), &f);
    INFO("len=", len);
    // Trailing alignment padding of the last tensor may be cut without losing data.
    if (st.ok()) {
      CHECK(len >= bytes.size() - 31);
      continue;
    }
    CHECK(st.code == StatusCode::kCorruptData);
  }
  GgufFile f;
  std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + bytes.size() - 40);
  Status st = parse_gguf(cut.data(), cut.size(), &f);
  CHECK(st.code == StatusCode::kCorruptData);
  CHECK(st.message.find("truncated") != std::string::npos);
}

TEST_CASE("gguf: malformed headers are rejected with clear messages") {
  GgufFile f;
  SUBCASE("bad magic") {
    auto b = small_file();
    b[0] = 'X';
    Status st = parse_gguf(b.data(), b.size(), &f);
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message.find("magic") != std::string::npos);
  }
  SUBCASE("unsupported version") {
    auto b = small_file();
    put_u32(b, 4, 1);
    Status st = parse_gguf(b.data(), b.size(), &f);
    CHECK(st.code == StatusCode::kUnsupported);
    CHECK(st.message.find("version 1") != std::string::npos);
  }
  SUBCASE("absurd counts") {
    auto b = small_file();
    put_u64(b, 8, uint64_t(1) << 60);
    CHECK(parse_gguf(b.data(), b.size(), &f).code == StatusCode::kCorruptData);
    b = small_file();
    put_u64(b, 16, uint64_t(1) << 60);
    CHECK(parse_gguf(b.data(), b.size(), &f).code == StatusCode::kCorruptData);
  }
  SUBCASE("unsupported tensor type names the type") {
    auto b = small_file();
    // type field of "a.weight": after name (8+8 bytes), n_dims (4), 2 dims (16).
    size_t at = find(b, "a.weight") + 8 + 4 + 16;
    put_u32(b, at, 10);  // Q2_K (not read)
    Status st = parse_gguf(b.data(), b.size(), &f);
    CHECK(st.code == StatusCode::kUnsupported);
    CHECK(st.message.find("Q2_K") != std::string::npos);
    CHECK(st.message.find("a.weight") != std::string::npos);
  }
  SUBCASE("misaligned, out-of-range and overlapping offsets") {
    auto b = small_file();
    size_t at = find(b, "b.weight") + 8 + 4 + 8 + 4;  // offset field of b.weight (1 dim)
    put_u64(b, at, 33);
    CHECK(parse_gguf(b.data(), b.size(), &f).code == StatusCode::kCorruptData);
    put_u64(b, at, 0);  // same start as a.weight
    Status st = parse_gguf(b.data(), b.size(), &f);
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message.find("overlap") != std::string::npos);
    put_u64(b, at, uint64_t(1) << 40);
    CHECK(parse_gguf(b.data(), b.size(), &f).code == StatusCode::kCorruptData);
  }
  SUBCASE("block type with a row that is not a multiple of 32") {
    auto b = small_file();
    size_t at = find(b, "c.weight") + 8 + 4;  // ne[0] of c.weight
    put_u64(b, at, 48);
    Status st = parse_gguf(b.data(), b.size(), &f);
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message.find("multiple of 32") != std::string::npos);
  }
  SUBCASE("zero or too many dimensions") {
    auto b = small_file();
    size_t at = find(b, "a.weight") + 8;
    put_u32(b, at, 0);
    CHECK(parse_gguf(b.data(), b.size(), &f).code == StatusCode::kCorruptData);
    put_u32(b, at, 9);
    CHECK(parse_gguf(b.data(), b.size(), &f).code == StatusCode::kCorruptData);
  }
}

TEST_CASE("gguf: writer rejects inconsistent tensors") {
  GgufWriter w;
  float x[31] = {0};
  w.add_tensor("bad", {31}, 8, x, 34);
  std::vector<uint8_t> out;
  CHECK(w.finish(&out).code == StatusCode::kShapeMismatch);
  GgufWriter w2;
  w2.add_tensor("t", {2}, 0, x, 8);
  w2.add_tensor("t", {2}, 0, x, 8);
  CHECK(w2.finish(&out).code == StatusCode::kInvalidArgument);
  CHECK(std::string(ggml_type_name(30)) == "BF16");
  CHECK(std::string(ggml_type_name(999)) == "unknown");
}

TEST_CASE("gguf: random byte flips never crash the parser") {
  auto base = small_file();
  std::mt19937 rng(7);
  for (int it = 0; it < 3000; ++it) {
    auto b = base;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    GgufFile f;
    if (parse_gguf(b.data(), b.size(), &f).ok()) {
      for (const auto& t : f.tensors) {
        std::vector<float> v(t.numel());
        CHECK(gguf_tensor_to_f32(t, v.data()).ok());
      }
    }
  }
}
