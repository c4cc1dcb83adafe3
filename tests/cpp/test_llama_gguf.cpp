// Llama <-> GGUF: stories260K exported to GGUF and imported back gives the same tensors (F32) and
// the same greedy continuation; block types fall back where rows are not multiples of 32.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "stories_checkpoint.h"
#include "webquant/causal_lm.h"
#include "webquant/llama_gguf.h"

using namespace webquant;
using webquant::testing::read_file;
using webquant::testing::Stories;
using webquant::testing::stories;

namespace {

std::vector<int32_t> greedy(const LlamaConfig& cfg, const io::SafetensorsFile& st, int n_new) {
  std::unique_ptr<CausalLM> model;
  Status s = CausalLM::load(llama_config_to_json(cfg), {&st}, &model);
  REQUIRE_MESSAGE(s.ok(), s.message);
  const int32_t prompt[] = {1, 410, 469, 347};
  std::vector<int32_t> out;
  REQUIRE(model->generate(prompt, 4, n_new, SamplingOptions{}, &out).ok());
  return out;
}

}  // namespace

TEST_CASE("llama gguf: F32 export round-trips exactly and decodes the same text") {
  const Stories& s = stories();
  std::vector<uint8_t> gguf_bytes;
  GgufExportOptions opt;
  opt.type = 0;
  Status st = export_llama_gguf(s.config_text, s.tokenizer_text, {&s.file}, opt, &gguf_bytes);
  REQUIRE_MESSAGE(st.ok(), st.message);
  io::GgufFile g;
  REQUIRE(io::parse_gguf(gguf_bytes.data(), gguf_bytes.size(), &g).ok());
  CHECK(g.get("general.architecture")->str == "llama");
  CHECK(g.get("llama.block_count")->u == 5);
  CHECK(g.get("llama.attention.head_count_kv")->u == 4);
  CHECK(g.get("tokenizer.ggml.model")->str == "llama");
  REQUIRE(g.get("tokenizer.ggml.tokens")->strs.size() == 512);
  CHECK(g.get("tokenizer.ggml.tokens")->strs[1] == "<s>");
  CHECK(g.get("tokenizer.ggml.token_type")->ints[1] == 3);   // control
  CHECK(g.get("tokenizer.ggml.token_type")->ints[3] == 6);   // <0x00> byte
  CHECK(g.get("tokenizer.ggml.token_type")->ints[0] == 2);   // <unk>
  CHECK(g.find("output.weight") == nullptr);                  // tied embeddings
  // q rows are permuted to the interleaved layout: not bit-equal to the HF rows any more.
  const io::TensorView* q = s.file.find("model.layers.0.self_attn.q_proj.weight");
  CHECK(std::memcmp(g.find("blk.0.attn_q.weight")->data, q->data, q->nbytes) != 0);

  GgufLlamaImport imp;
  st = import_llama_gguf(g, &imp);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(imp.config.hidden_size == 64);
  CHECK(imp.config.intermediate_size == 172);
  CHECK(imp.config.tie_word_embeddings);
  for (const auto& t : imp.tensors.tensors) {
    const io::TensorView* orig = s.file.find(t.name);
    REQUIRE_MESSAGE(orig, t.name);
    CHECK(t.shape == orig->shape);
    CHECK_MESSAGE(std::memcmp(t.data, orig->data, t.nbytes) == 0, t.name);
  }
  LlamaConfig cfg; std::string cfg_text;
  REQUIRE(parse_llama_config(cfg_text = s.config_text, &cfg).ok());
  CHECK(greedy(imp.config, imp.tensors, 20) == greedy(cfg, s.file, 20));
}

TEST_CASE("llama gguf: Q8_0 / Q4_0 exports fall back to F16 for 172-wide rows and stay close") {
  const Stories& s = stories();
  for (uint32_t type : {8u, 2u}) {
    std::vector<uint8_t> bytes;
    GgufExportOptions opt;
    opt.type = type;
    REQUIRE(export_llama_gguf(s.config_text, s.tokenizer_text, {&s.file}, opt, &bytes).ok());
    io::GgufFile g;
    REQUIRE(io::parse_gguf(bytes.data(), bytes.size(), &g).ok());
    CHECK(g.find("blk.0.attn_q.weight")->type == type);
    CHECK(g.find("blk.0.ffn_down.weight")->type == 1);  // 172 % 32 != 0 -> F16
    CHECK(g.find("blk.0.attn_norm.weight")->type == 0);
    GgufLlamaImport imp;
    REQUIRE(import_llama_gguf(g, &imp).ok());
    const io::TensorView* a = imp.tensors.find("model.layers.2.mlp.up_proj.weight");
    const io::TensorView* b = s.file.find("model.layers.2.mlp.up_proj.weight");
    std::vector<float> fa(a->numel()), fb(b->numel());
    REQUIRE(io::tensor_to_f32(*a, fa.data()).ok());
    REQUIRE(io::tensor_to_f32(*b, fb.data()).ok());
    double num = 0, den = 0;
    for (size_t i = 0; i < fa.size(); ++i) {
      num += (fa[i] - fb[i]) * (fa[i] - fb[i]);
      den += fb[i] * fb[i];
    }
    const double sqnr = 10 * std::log10(den / num);
    INFO("type ", type, " sqnr ", sqnr);
    CHECK(sqnr > (type == 8 ? 35.0 : 15.0));
  }
}

TEST_CASE("llama gguf: bad input gives clear errors") {
  const Stories& s = stories();
  std::vector<uint8_t> bytes;
  GgufExportOptions opt;
  opt.type = 12;  // Q4_K
  Status st = export_llama_gguf(s.config_text, s.tokenizer_text, {&s.file}, opt, &bytes);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("Q4_K") != std::string::npos);
  opt.type = 0;
  io::SafetensorsFile empty;
  st = export_llama_gguf(s.config_text, s.tokenizer_text, {&empty}, opt, &bytes);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message.find("model.embed_tokens.weight") != std::string::npos);

  io::GgufWriter w;
  w.add_string("general.architecture", "gpt2");
  std::vector<uint8_t> other;
  REQUIRE(w.finish(&other).ok());
  io::GgufFile g;
  REQUIRE(io::parse_gguf(other.data(), other.size(), &g).ok());
  GgufLlamaImport imp;
  st = import_llama_gguf(g, &imp);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("gpt2") != std::string::npos);

  // A llama GGUF with a missing layer tensor names it.
  REQUIRE(export_llama_gguf(s.config_text, s.tokenizer_text, {&s.file}, opt, &bytes).ok());
  REQUIRE(io::parse_gguf(bytes.data(), bytes.size(), &g).ok());
  g.tensors.erase(std::remove_if(g.tensors.begin(), g.tensors.end(),
                                 [](const io::GgufTensorInfo& t) { return t.name == "blk.3.ffn_up.weight"; }),
                  g.tensors.end());
  st = import_llama_gguf(g, &imp);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message.find("blk.3.ffn_up.weight") != std::string::npos);
}

TEST_CASE("llama gguf: byte-level BPE tokenizers become gpt2 with the matching pre-tokenizer") {
  const Stories& s = stories();
  // SmolLM2's real tokenizer.json (Digits(individual) + ByteLevel) on stories260K's weights: only
  // the tokenizer metadata is under test here.
  const std::string smol =
      read_file(std::string(WQ_SHARED_DIR) + "/hub/HuggingFaceTB/SmolLM2-135M-Instruct/tokenizer.json");
  REQUIRE(!smol.empty());
  std::vector<uint8_t> bytes;
  GgufExportOptions opt;
  REQUIRE(export_llama_gguf(s.config_text, smol, {&s.file}, opt, &bytes).ok());
  io::GgufFile g;
  REQUIRE(io::parse_gguf(bytes.data(), bytes.size(), &g).ok());
  CHECK(g.get("tokenizer.ggml.model")->str == "gpt2");
  CHECK(g.get("tokenizer.ggml.pre")->str == "smollm");
  CHECK(g.get("tokenizer.ggml.tokens")->strs.size() == 49152);
  CHECK(!g.get("tokenizer.ggml.merges")->strs.empty());
  CHECK(g.get("tokenizer.ggml.scores") == nullptr);
}
