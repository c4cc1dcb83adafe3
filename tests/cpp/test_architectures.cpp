// Every architecture against its independent float64 reference, natively (and as wasm under Node):
// tests/fixtures/arch/<name>/ holds a synthetic checkpoint and the reference logits for a fixed id
// sequence, written by tests/web/helpers/arch-fixtures.ts from the plain-TypeScript references
// (no code shared with the engine). Also: config errors, the layout an architecture declares,
// unknown model types, incremental decoding vs one pass, and quantization through the module layer.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "test_util.h"
#include "webquant/causal_lm.h"
#include "webquant/safetensors.h"

using namespace webquant;
using webquant::testing::read_file;

namespace {

struct Fixture {
  std::string config;
  std::string bytes;
  io::SafetensorsFile file;
  std::vector<int32_t> ids;
  int vocab = 0;
  std::vector<double> logits;  // [ids, vocab] float64 reference
};

std::unique_ptr<Fixture> fixture(const std::string& name) {
  auto f = std::make_unique<Fixture>();
  const std::string dir = std::string(WQ_FIXTURE_DIR) + "/arch/" + name + "/";
  f->config = read_file(dir + "config.json");
  f->bytes = read_file(dir + "model.safetensors");
  REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(f->bytes.data()), f->bytes.size(), &f->file).ok());
  io::JsonValue ref;
  REQUIRE(io::parse_json(read_file(dir + "reference.json"), &ref).ok());
  for (const io::JsonValue& v : ref.get("ids")->array) f->ids.push_back(static_cast<int32_t>(v.number));
  f->vocab = static_cast<int>(ref.get("vocab")->number);
  for (const io::JsonValue& v : ref.get("logits")->array) f->logits.push_back(v.number);
  REQUIRE(f->logits.size() == f->ids.size() * static_cast<size_t>(f->vocab));
  return f;
}

std::unique_ptr<CausalLM> load(const Fixture& f, const std::string& config = "") {
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(config.empty() ? f.config : config, {&f.file}, &m);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("architectures: fp32 logits agree with the float64 references") {
  for (const std::string name : {"gpt2", "gpt2-bare-names", "gpt_neox", "gpt_neox-sequential"}) {
    CAPTURE(name);
    auto f = fixture(name);
    auto m = load(*f);
    std::vector<float> logits;
    REQUIRE(m->forward(f->ids.data(), f->ids.size(), true, &logits).ok());
    REQUIRE(logits.size() == f->logits.size());
    double max_diff = 0, max_ref = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      max_diff = std::max(max_diff, std::fabs(logits[i] - f->logits[i]));
      max_ref = std::max(max_ref, std::fabs(f->logits[i]));
    }
    MESSAGE(name << ": max |logit - reference| " << max_diff << " (" << max_diff / max_ref << " relative)");
    CHECK(max_diff <= 1.5e-6 * max_ref);

    // Incremental decoding through the KV cache gives the one-pass logits, row by row.
    m->reset();
    const size_t V = static_cast<size_t>(f->vocab);
    std::vector<float> step;
    REQUIRE(m->forward(f->ids.data(), 5, false, &step).ok());
    for (size_t t = 5; t < f->ids.size(); ++t) {
      REQUIRE(m->forward(&f->ids[t], 1, false, &step).ok());
      for (size_t i = 0; i < V; ++i) REQUIRE(std::fabs(step[i] - logits[t * V + i]) <= 1e-5f);
    }
  }
}

TEST_CASE("architectures: layout, footprint and quantization through the module layer") {
  auto f = fixture("gpt2");
  ModelLayout layout;
  ModelInfo info;
  REQUIRE(CausalLM::layout(f->config, &layout, &info).ok());
  CHECK(info.model_type == "gpt2");
  CHECK(info.tie_word_embeddings);
  CHECK(layout.optional_prefix == "transformer.");
  REQUIRE(layout.linears.size() == 2 * 4 + 1);
  CHECK(layout.linears[0].name == "transformer.h.0.attn.c_attn");
  CHECK(layout.linears[0].conv1d);
  CHECK(layout.linears[0].out_features == 96);
  CHECK(layout.linears.back().name == "lm_head");
  CHECK(layout.linears.back().tied_to == "transformer.wte.weight");

  auto m = load(*f);
  const MemoryFootprint fp = m->memory_footprint();
  CHECK(fp.embedding == (96 + 64) * 32 * 4);
  CHECK(fp.lm_head == 0);
  CHECK(fp.total == fp.embedding + fp.linear + fp.norms + fp.other);

  std::vector<float> ref;
  REQUIRE(m->forward(f->ids.data(), f->ids.size(), true, &ref).ok());
  ModelQuantOptions q;
  q.default_spec = {LinearScheme::kW8A16, false, 0};
  q.exclude.clear();  // the tied head too: it then runs on the int8 rows of the shared table
  std::vector<LayerQuantReport> report;
  REQUIRE(m->quantize(q, &report).ok());
  REQUIRE(report.size() == layout.linears.size() + 1);  // + the table (transformer.wte)
  CHECK(report.back().embedding);
  for (const LayerQuantReport& r : report) {
    CHECK(r.quantized);
    CHECK(r.bits == 8);
    CHECK(r.group_size == r.in_features);
  }
  CHECK(report[layout.linears.size() - 1].note.find("tied to transformer.wte") != std::string::npos);
  m->reset();
  std::vector<float> q8;
  REQUIRE(m->forward(f->ids.data(), f->ids.size(), true, &q8).ok());
  double max_diff = 0;
  for (size_t i = 0; i < q8.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(q8[i] - ref[i])));
  MESSAGE("gpt2 int8 (head included): max |logit diff| vs fp32 " << max_diff);
  CHECK(max_diff > 0);
  CHECK(max_diff < 0.05);
}

TEST_CASE("architectures: config and checkpoint errors name the field or tensor; nothing half-loaded") {
  auto f = fixture("gpt_neox");
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(replace_once(f->config, "\"model_type\": \"gpt_neox\"", "\"model_type\": \"bert\""), {&f->file}, &m);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("model_type 'bert' is not supported; supported: blip, gpt2, gpt_neox, llama, mistral, qwen2, t5") != std::string::npos);
  CHECK(st.message.find("quantizeCheckpoint") != std::string::npos);
  CHECK(m == nullptr);

  st = CausalLM::load(replace_once(f->config, "\"hidden_size\": 32", "\"hidden_size\": 30"), {&f->file}, &m);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("num_attention_heads (4) must divide hidden_size (30)") != std::string::npos);

  st = CausalLM::load(replace_once(f->config, "\"intermediate_size\": 64", "\"intermediate_size\": 48"), {&f->file}, &m);
  CHECK(st.code == StatusCode::kShapeMismatch);
  CHECK(st.message == "tensor 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight' has shape [64, 32], expected [48, 32]");
  CHECK(m == nullptr);

  st = CausalLM::load(replace_once(f->config, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3"), {&f->file}, &m);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message == "tensor 'gpt_neox.layers.2.input_layernorm.weight' not found in the checkpoint");

  st = CausalLM::load(replace_once(f->config, "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"mish\""), {&f->file}, &m);
  CHECK(st.code == StatusCode::kUnsupported);
  // head_dim 8 * 0.375 = 3 rotary dims: rotate_half needs an even count.
  st = CausalLM::load(replace_once(f->config, "\"rotary_pct\": 0.5", "\"rotary_pct\": 0.375"), {&f->file}, &m);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("must be even") != std::string::npos);
  st = CausalLM::load("{\"model_type\": \"gpt2\", \"n_embd\": 32}", {&f->file}, &m);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("'n_layer'") != std::string::npos);
  st = CausalLM::load("[1, 2]", {&f->file}, &m);
  CHECK(st.code == StatusCode::kCorruptData);
}
