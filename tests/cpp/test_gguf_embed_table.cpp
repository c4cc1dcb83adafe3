// The token embedding table load_llama_gguf_model builds from a block-type token_embd without a
// float32 copy of it: exact types (Q8_0, Q4_0, Q5_0, Q6_K) give gguf_linear_layer's layer of the
// tensor, the others (Q4_K, Q5_K, Q4_1, Q5_1), requantized a panel of rows at a time, give exactly
// the int8 g32 layer make_linear_quantized builds from the whole decoded matrix (the route the
// loader took before); vocabularies that are not whole panels; errors keep their codes and name
// whole-table indices.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>

#include "models/llama/llama_gguf_internal.h"
#include "webquant/causal_lm.h"
#include "webquant/convert.h"
#include "webquant/gguf.h"
#include "webquant/llama_gguf.h"

using namespace webquant;

namespace {

constexpr uint32_t kF32 = 0, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ4_K = 12,
                   kQ5_K = 13, kQ6_K = 14;
constexpr uint64_t kH = 256, kI = 256, kKV = 128;

void put_h(uint8_t* p, float v) {
  const uint16_t h = fp32_to_fp16(v);
  std::memcpy(p, &h, 2);
}

// Random blocks with sane fp16 fields (d, and m / dmin where the type has one); every 5th block a
// negative d, every 7th a zero d.
std::vector<uint8_t> blocks(uint32_t type, size_t n, std::mt19937& rng) {
  uint64_t block = 0, bsize = 0;
  REQUIRE(io::ggml_block_info(type, &block, &bsize));
  std::vector<uint8_t> out(n / block * bsize);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> u(0.2f, 1.0f);
  for (auto& b : out) b = static_cast<uint8_t>(byte(rng));
  const bool k = block == 256;
  for (size_t b = 0; b < n / block; ++b) {
    uint8_t* p = out.data() + b * bsize;
    float d = (k ? 0.002f : 0.03f) * u(rng), m = (k ? 0.004f : 0.3f) * u(rng);
    if (b % 5 == 3) d = -d, m = -m;
    if (b % 7 == 5) d = 0.0f;
    if (type == kQ6_K) {
      put_h(p + 208, d);
    } else {
      put_h(p, d);
      if (type == kQ4_1 || type == kQ5_1 || k) put_h(p + 2, m);
    }
  }
  return out;
}

// A one-layer tied Llama GGUF (Q8_0 linears) whose token_embd is `vocab` rows of `embd` (bytes of
// `type`); vocab_meta != 0 writes llama.vocab_size.
std::vector<uint8_t> llama_file(uint32_t type, const std::vector<uint8_t>& embd, uint64_t vocab,
                                uint32_t vocab_meta = 0) {
  std::mt19937 rng(5);
  io::GgufWriter w;
  w.add_string("general.architecture", "llama");
  w.add_u32("llama.context_length", 64);
  w.add_u32("llama.embedding_length", uint32_t(kH));
  w.add_u32("llama.block_count", 1);
  w.add_u32("llama.feed_forward_length", uint32_t(kI));
  w.add_u32("llama.attention.head_count", 4);
  w.add_u32("llama.attention.head_count_kv", 2);
  w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  if (vocab_meta) w.add_u32("llama.vocab_size", vocab_meta);
  w.add_tensor("token_embd.weight", {kH, vocab}, type, embd.data(), embd.size());
  std::vector<float> ones(kH, 1.0f);
  auto linear = [&](const std::string& name, uint64_t cols, uint64_t rows) {
    const std::vector<uint8_t> b = blocks(kQ8_0, cols * rows, rng);
    w.add_tensor(name, {cols, rows}, kQ8_0, b.data(), b.size());
  };
  w.add_tensor("blk.0.attn_norm.weight", {kH}, kF32, ones.data(), kH * 4);
  linear("blk.0.attn_q.weight", kH, kH);
  linear("blk.0.attn_k.weight", kH, kKV);
  linear("blk.0.attn_v.weight", kH, kKV);
  linear("blk.0.attn_output.weight", kH, kH);
  w.add_tensor("blk.0.ffn_norm.weight", {kH}, kF32, ones.data(), kH * 4);
  linear("blk.0.ffn_gate.weight", kH, kI);
  linear("blk.0.ffn_up.weight", kH, kI);
  linear("blk.0.ffn_down.weight", kI, kH);
  w.add_tensor("output_norm.weight", {kH}, kF32, ones.data(), kH * 4);
  std::vector<uint8_t> out;
  REQUIRE(w.finish(&out).ok());
  return out;
}

Status load(const std::vector<uint8_t>& bytes, std::unique_ptr<CausalLM>* m) {
  io::GgufFile f;
  Status st = io::parse_gguf(bytes.data(), bytes.size(), &f);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return load_llama_gguf_model(f, m);
}

io::GgufTensorInfo tensor_of(uint32_t type, const std::vector<uint8_t>& bytes, uint64_t vocab) {
  io::GgufTensorInfo t;
  t.name = "token_embd.weight";
  t.ne = {kH, vocab};
  t.type = type;
  t.data = bytes.data();
  t.nbytes = bytes.size();
  return t;
}

void check_same(const LinearLayer& got, const LinearLayer& want) {
  LinearQuantizedData a, b;
  REQUIRE(got.export_quantized(&a).ok());
  REQUIRE(want.export_quantized(&b).ok());
  CHECK(got.describe() == want.describe());
  CHECK(a.group_size == b.group_size);
  CHECK(a.asymmetric == b.asymmetric);
  CHECK(a.q == b.q);
  CHECK(a.zero_points == b.zero_points);
  REQUIRE(a.scales.size() == b.scales.size());
  CHECK(std::memcmp(a.scales.data(), b.scales.data(), a.scales.size() * 4) == 0);
  const size_t n = size_t(got.out_features) * got.in_features;
  std::vector<float> x(n), y(n);
  got.dequantize_rows(0, got.out_features, x.data());
  want.dequantize_weight(y.data());
  CHECK(std::memcmp(x.data(), y.data(), n * 4) == 0);
}

}  // namespace

TEST_CASE("gguf embedding table: requantized panel by panel, bit-identical to the whole-matrix route") {
  std::mt19937 rng(31);
  for (uint32_t type : {kQ4_K, kQ5_K, kQ4_1, kQ5_1}) {
    for (uint64_t vocab : {uint64_t(320), uint64_t(128), uint64_t(37)}) {  // 2.5, 1 and < 1 panels
      CAPTURE(type);
      CAPTURE(vocab);
      const std::vector<uint8_t> embd = blocks(type, kH * vocab, rng);
      std::unique_ptr<CausalLM> m;
      Status st = load(llama_file(type, embd, vocab), &m);
      REQUIRE_MESSAGE(st.ok(), st.message);
      const LinearLayer* table = m->weights().quantized_param("model.embed_tokens.weight");
      REQUIRE(table != nullptr);
      CHECK(table->describe() == "w8a16 g32 sym");
      // The route before: the whole tensor decoded, then quantized as one matrix.
      std::vector<float> f(kH * vocab);
      REQUIRE(io::gguf_tensor_to_f32(tensor_of(type, embd, vocab), f.data()).ok());
      LinearQuantSpec spec;
      spec.scheme = LinearScheme::kW8A16;
      spec.group_size = 32;
      std::unique_ptr<LinearLayer> want;
      REQUIRE(make_linear_quantized(f.data(), int(vocab), int(kH), nullptr, spec, &want, nullptr).ok());
      check_same(*table, *want);
      // The tied head has its own exact copy of token_embd (in its block type's layer).
      REQUIRE(m->linear("lm_head") != nullptr);
      CHECK(m->linear("lm_head")->describe().find(io::ggml_type_name(type)) != std::string::npos);
    }
  }
}

TEST_CASE("gguf embedding table: exact types are the repacked layer of the blocks, the head shares it") {
  std::mt19937 rng(32);
  for (uint32_t type : {kQ8_0, kQ4_0, kQ5_0, kQ6_K}) {
    CAPTURE(type);
    const uint64_t vocab = 300;
    const std::vector<uint8_t> embd = blocks(type, kH * vocab, rng);
    std::unique_ptr<CausalLM> m;
    Status st = load(llama_file(type, embd, vocab), &m);
    REQUIRE_MESSAGE(st.ok(), st.message);
    const LinearLayer* table = m->weights().quantized_param("model.embed_tokens.weight");
    REQUIRE(table != nullptr);
    std::unique_ptr<LinearLayer> want;
    REQUIRE(gguf_linear_layer(tensor_of(type, embd, vocab), 0, 0, &want).ok());
    REQUIRE(want != nullptr);
    check_same(*table, *want);
    CHECK(m->linear("lm_head") == nullptr);  // tied to the exact table
  }
}

TEST_CASE("gguf embedding table: non-finite values and shape mismatches keep their errors") {
  std::mt19937 rng(33);
  const uint64_t vocab = 300;
  // A Q8_0 block of row 200 with d = Inf: no exact layer; requantizing meets Inf * 0 = NaN at
  // [200, 0] (in the second panel: the index is the whole table's).
  std::vector<uint8_t> embd = blocks(kQ8_0, kH * vocab, rng);
  uint8_t* blk = embd.data() + (200 * kH / 32) * 34;
  const uint16_t inf = 0x7c00;
  std::memcpy(blk, &inf, 2);
  blk[2] = 0;
  blk[3] = 5;
  std::unique_ptr<CausalLM> m;
  Status st = load(llama_file(kQ8_0, embd, vocab), &m);
  CHECK(st.code == StatusCode::kNonFinite);
  CHECK(st.message == "GGUF: tensor 'token_embd.weight': weight[200, 0] is NaN: a linear layer cannot "
                      "be built from non-finite values");
  // The same in a Q4_K table.
  embd = blocks(kQ4_K, kH * vocab, rng);
  std::memcpy(embd.data() + 150 * 144, &inf, 2);
  st = load(llama_file(kQ4_K, embd, vocab), &m);
  CHECK(st.code == StatusCode::kNonFinite);
  CHECK(st.message.find("weight[150, 0] is") != std::string::npos);
  // token_embd's shape is still checked against the metadata when it is not decoded.
  embd = blocks(kQ4_K, kH * vocab, rng);
  st = load(llama_file(kQ4_K, embd, vocab, uint32_t(vocab + 1)), &m);
  CHECK(st.code == StatusCode::kShapeMismatch);
  CHECK(st.message.find("token_embd.weight") != std::string::npos);
}
