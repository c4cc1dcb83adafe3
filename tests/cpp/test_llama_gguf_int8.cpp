// GGUF Q8_0 <-> webquant's int8 g32 symmetric layers (the same scheme): Q8_0 weights load onto
// w8a16 g32 layers from their codes, and int8 g32 layers export as Q8_0 from their codes, bit for
// bit. On the real karpathy/stories260K.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "models/llama/llama_gguf_internal.h"
#include "stories_checkpoint.h"
#include "webquant/convert.h"
#include "webquant/causal_lm.h"
#include "webquant/llama_gguf.h"

using namespace webquant;
using webquant::testing::Stories;
using webquant::testing::stories;

namespace {

std::vector<uint8_t> export_q8_0(const Stories& s) {
  std::vector<uint8_t> out;
  GgufExportOptions opt;
  opt.type = 8;
  Status st = export_llama_gguf(s.config_text, s.tokenizer_text, {&s.file}, opt, &out);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return out;
}

// GGUF name of an HF linear module of stories260K.
std::string gguf_name(const std::string& hf) {
  static const std::map<std::string, std::string> parts = {
      {"self_attn.q_proj", "attn_q"}, {"self_attn.k_proj", "attn_k"},   {"self_attn.v_proj", "attn_v"},
      {"self_attn.o_proj", "attn_output"}, {"mlp.gate_proj", "ffn_gate"}, {"mlp.up_proj", "ffn_up"},
      {"mlp.down_proj", "ffn_down"}};
  const size_t dot = hf.find('.', std::string("model.layers.").size());
  const std::string layer = hf.substr(std::string("model.layers.").size(), dot - 13);
  return "blk." + layer + "." + parts.at(hf.substr(dot + 1)) + ".weight";
}

}  // namespace

TEST_CASE("gguf int8: Q8_0 weights load onto w8a16 g32 layers from their codes") {
  const Stories& s = stories();
  const std::vector<uint8_t> file = export_q8_0(s);
  io::GgufFile g;
  REQUIRE(io::parse_gguf(file.data(), file.size(), &g).ok());
  std::unique_ptr<CausalLM> model;
  Status st = load_llama_gguf_model(g, &model);
  REQUIRE_MESSAGE(st.ok(), st.message);
  // The float route (every tensor decoded to float32) for comparison.
  GgufLlamaImport floats;
  REQUIRE(import_llama_gguf(g, &floats).ok());

  int int8_layers = 0;
  ModelLayout layout;
  REQUIRE(CausalLM::layout(s.config_text, &layout).ok());
  for (const LinearInfo& li : layout.linears) {
    const LinearLayer* layer = model->linear(li.name);
    if (li.name == "lm_head") {
      // Tied: the token embedding is held as the Q8_0 file's int8 g32 rows (exactly the decoded
      // values; rows dequantized on gather) and the head reads that table (no copy), as llama.cpp
      // reads token_embd in its type.
      CHECK(layer == nullptr);
      const LinearLayer* table = model->weights().quantized_param("model.embed_tokens.weight");
      REQUIRE(table != nullptr);
      CHECK(table->describe().rfind("w8a16 g32", 0) == 0);
      std::vector<float> w(size_t(li.out_features) * li.in_features);
      table->dequantize_weight(w.data());
      const io::TensorView* e = floats.tensors.find("model.embed_tokens.weight");
      REQUIRE(e != nullptr);
      CHECK(std::memcmp(w.data(), e->data, e->nbytes) == 0);
      continue;
    }
    REQUIRE(layer != nullptr);
    CAPTURE(li.name);
    const io::GgufTensorInfo* t = g.find(gguf_name(li.name));
    REQUIRE(t != nullptr);
    std::vector<float> w(size_t(li.out_features) * li.in_features);
    layer->dequantize_weight(w.data());
    // Either way the weights are exactly d * q (an fp16 times an int8 is exact in float32).
    const io::TensorView* f = floats.tensors.find(li.name + ".weight");
    REQUIRE(f != nullptr);
    CHECK(std::memcmp(w.data(), f->data, f->nbytes) == 0);
    if (li.in_features % 32 != 0) {  // down_proj (172): F16 in the file, a float32 layer
      CHECK(t->type == 1);
      CHECK(layer->describe() == "f32");
      continue;
    }
    ++int8_layers;
    CHECK(t->type == 8);
    CHECK(layer->describe() == "w8a16 g32 sym");
    LinearQuantizedData d;
    REQUIRE(layer->export_quantized(&d).ok());
    // Codes and scales are the blocks' (q / k rows back in HF order).
    std::vector<int8_t> q;
    std::vector<float> scales;
    REQUIRE(q8_0_to_int8(*t, &q, &scales));
    const int heads = li.name.find("q_proj") != std::string::npos   ? s.config.num_attention_heads
                      : li.name.find("k_proj") != std::string::npos ? s.config.num_key_value_heads
                                                                      : 0;
    if (heads) {
      q = permute_rows(q, heads, s.config.head_dim, li.in_features, false);
      scales = permute_rows(scales, heads, s.config.head_dim, li.in_features / 32, false);
    }
    CHECK(d.q == q);
    CHECK(d.scales == scales);
  }
  CHECK(int8_layers == 30);  // q, k, v, o, gate, up of 5 layers

  // Same logits as the float32 route: the layers hold the same weights.
  std::unique_ptr<CausalLM> ref;
  REQUIRE(CausalLM::load(llama_config_to_json(floats.config), {&floats.tensors}, &ref).ok());
  const int32_t prompt[] = {1, 410, 469, 347, 260};
  std::vector<float> a, b;
  REQUIRE(model->forward(prompt, 5, true, &a).ok());
  REQUIRE(ref->forward(prompt, 5, true, &b).ok());
  REQUIRE(a.size() == b.size());
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) max_diff = std::fmax(max_diff, std::fabs(a[i] - b[i]));
  CHECK(max_diff < 1e-4);  // kernels sum in a different order than the f32 GEMM
}

TEST_CASE("gguf int8: a Q8_0 file loaded as int8 g32 exports back bit for bit") {
  const Stories& s = stories();
  const std::vector<uint8_t> file = export_q8_0(s);
  io::GgufFile g;
  REQUIRE(io::parse_gguf(file.data(), file.size(), &g).ok());
  std::unique_ptr<CausalLM> model;
  REQUIRE(load_llama_gguf_model(g, &model).ok());
  GgufExportOptions opt;
  opt.type = 8;
  std::vector<uint8_t> again;
  Status st = export_llama_gguf_model(*model, s.tokenizer_text, opt, &again);
  REQUIRE_MESSAGE(st.ok(), st.message);
  io::GgufFile h;
  REQUIRE(io::parse_gguf(again.data(), again.size(), &h).ok());
  REQUIRE(h.tensors.size() == g.tensors.size());
  for (const io::GgufTensorInfo& t : g.tensors) {
    CAPTURE(t.name);
    const io::GgufTensorInfo* u = h.find(t.name);
    REQUIRE(u != nullptr);
    CHECK(u->type == t.type);
    REQUIRE(u->nbytes == t.nbytes);
    // Every tensor: the linear Q8_0 ones from the layers' codes, the F16 down_proj from its
    // float32 layer, the embedding re-quantized by ggml's rule from d * q (which gives d and q
    // back), the norms as they were.
    CHECK(std::memcmp(u->data, t.data, t.nbytes) == 0);
  }
}

TEST_CASE("gguf int8: layers quantized here export their codes; scales round to fp16") {
  const Stories& s = stories();
  std::unique_ptr<CausalLM> model;
  REQUIRE(CausalLM::load(s.config_text, {&s.file}, &model).ok());
  ModelQuantOptions q;
  q.default_spec = {LinearScheme::kW8A8, false, 32};
  REQUIRE(model->quantize(q, nullptr).ok());
  GgufExportOptions opt;
  opt.type = 8;
  std::vector<uint8_t> bytes;
  REQUIRE(export_llama_gguf_model(*model, s.tokenizer_text, opt, &bytes).ok());
  io::GgufFile g;
  REQUIRE(io::parse_gguf(bytes.data(), bytes.size(), &g).ok());
  const std::string v = "model.layers.2.self_attn.v_proj";  // not permuted
  LinearQuantizedData d;
  REQUIRE(model->linear(v)->export_quantized(&d).ok());
  const io::GgufTensorInfo* t = g.find("blk.2.attn_v.weight");
  REQUIRE(t != nullptr);
  CHECK(t->type == 8);
  const auto* blocks = reinterpret_cast<const io::BlockQ8_0*>(t->data);
  size_t fp16_exact = 0;
  for (size_t b = 0; b < d.scales.size(); ++b) {
    CHECK(std::memcmp(blocks[b].qs, &d.q[b * 32], 32) == 0);
    CHECK(blocks[b].d == fp32_to_fp16(d.scales[b]));
    fp16_exact += fp16_to_fp32(blocks[b].d) == d.scales[b];
  }
  // float32 scales amax / 127 are rarely fp16 values: this is why the weights match only up to
  // the fp16 rounding of d (relative 2^-11) for layers that did not come from a Q8_0 file.
  CHECK(fp16_exact < d.scales.size() / 4);
  // down_proj (172 wide) fell back to per channel: written as float (F16), not from codes.
  CHECK(g.find("blk.0.ffn_down.weight")->type == 1);
}

TEST_CASE("gguf int8: Q8_0 blocks that are not an int8 g32 group") {
  std::vector<io::BlockQ8_0> blocks(2);
  for (int j = 0; j < 32; ++j) {
    blocks[0].qs[j] = int8_t(j - 16);
    blocks[1].qs[j] = int8_t(3 * j - 50);
  }
  blocks[0].d = 0;                      // an all-zero block as ggml writes it
  blocks[1].d = fp32_to_fp16(-0.25f);   // negative d: the codes flip sign
  io::GgufTensorInfo t;
  t.name = "x";
  t.type = 8;
  t.ne = {64, 1};
  t.data = reinterpret_cast<const uint8_t*>(blocks.data());
  t.nbytes = blocks.size() * sizeof(io::BlockQ8_0);
  std::vector<int8_t> q;
  std::vector<float> scales;
  REQUIRE(q8_0_to_int8(t, &q, &scales));
  CHECK(scales == std::vector<float>{1.0f, 0.25f});
  for (int j = 0; j < 32; ++j) {
    CHECK(q[j] == 0);
    CHECK(scales[1] * q[32 + j] == -0.25f * blocks[1].qs[j]);
  }
  blocks[1].qs[7] = -128;  // -(-128) does not fit int8
  CHECK_FALSE(q8_0_to_int8(t, &q, &scales));
  blocks[1].qs[7] = 0;
  blocks[1].d = 0x7C00;  // +inf
  CHECK_FALSE(q8_0_to_int8(t, &q, &scales));
  // Export refuses a scale fp16 cannot hold.
  std::vector<uint8_t> out;
  CHECK(int8_g32_to_q8_0("w", std::vector<int8_t>(32, 1), {1e6f}, &out).code ==
        StatusCode::kUnsupported);
  REQUIRE(int8_g32_to_q8_0("w", std::vector<int8_t>(32, 0), {1.0f}, &out).ok());
  io::BlockQ8_0 zero;
  std::memcpy(&zero, out.data(), sizeof zero);
  CHECK(zero.d == 0);  // an all-zero group is written as ggml writes it
}
