// Streaming quantization (StreamingBuilder, model_checkpoint.h): a sharded stories260K checkpoint
// quantized shard by shard equals load() + quantize() bit for bit, whatever the shard layout;
// errors name the tensor; streaming then saving gives the same checkpoint as quantize then saving.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "stories_checkpoint.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"

using namespace webquant;
using namespace webquant::testing;

namespace {

// stories260K's tensors split into n shards (contiguous runs in header order, or round-robin).
Shards split_stories(int n, bool round_robin, const std::vector<std::string>& last_shard = {}) {
  const io::SafetensorsFile& src = stories().file;
  std::vector<std::vector<io::TensorRecord>> per(static_cast<size_t>(n));
  size_t i = 0;
  for (const io::TensorView& t : src.tensors) {
    size_t to = round_robin ? i % per.size() : i * per.size() / src.tensors.size();
    if (std::find(last_shard.begin(), last_shard.end(), t.name) != last_shard.end()) to = per.size() - 1;
    per[to].push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
    ++i;
  }
  return write_shards(per);
}

void check_streaming(const ModelQuantOptions& q, const Shards& split, const std::string& label) {
  CAPTURE(label);
  auto ref = load_stories();
  std::vector<LayerQuantReport> ref_report, report;
  REQUIRE(ref->quantize(q, &ref_report).ok());
  StreamingBuilder b;
  REQUIRE(b.begin(stories().config_text, q).ok());
  CHECK(b.tensors_expected() == stories().file.tensors.size());
  for (const io::SafetensorsFile& f : split.files) {
    Status st = b.add_shard(f);
    REQUIRE_MESSAGE(st.ok(), st.message);
  }
  CHECK(b.missing().empty());
  CHECK(b.tensors_seen() == b.tensors_expected());
  std::unique_ptr<CausalLM> m;
  Status st = b.finish(&m, &report);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(bit_equal(all_logits(*m), all_logits(*ref)));
  CHECK(m->memory_footprint().total == ref->memory_footprint().total);
  REQUIRE(report.size() == ref_report.size());
  for (size_t i = 0; i < report.size(); ++i) {
    CAPTURE(report[i].name);
    CHECK(report[i].name == ref_report[i].name);
    CHECK(report[i].quantized == ref_report[i].quantized);
    CHECK(report[i].scheme == ref_report[i].scheme);
    CHECK(report[i].bytes_before == ref_report[i].bytes_before);
    CHECK(report[i].bytes_after == ref_report[i].bytes_after);
    CHECK(report[i].note == ref_report[i].note);
  }
}

}  // namespace

TEST_CASE("streaming: shard by shard equals load() + quantize(), bit for bit") {
  const Shards three = split_stories(3, false);
  REQUIRE(three.files.size() == 3);
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, false, 32);
  check_streaming(q, three, "int4 g32 sym, 3 contiguous shards");
  q.default_spec = spec(LinearScheme::kW8A8, true, 32);
  check_streaming(q, split_stories(4, true), "w8a8, 4 round-robin shards");
  q.default_spec = spec(LinearScheme::kW2A16, true, 32);
  q.exclude = {};
  check_streaming(q, three, "int2 asym with the tied lm_head quantized");
  ModelQuantOptions mixed;
  mixed.default_spec = spec(LinearScheme::kW4A8, true, 32);
  mixed.exclude = {"model.layers.1.*"};
  mixed.overrides = {{"*.down_proj", spec(LinearScheme::kW8A16)}, {"lm_head", spec(LinearScheme::kF32)}};
  check_streaming(mixed, split_stories(1, false), "mixed, one shard");
  // The embedding arriving last (tied head quantized in finish()).
  q.default_spec = spec(LinearScheme::kW4A16, true, 16);
  check_streaming(q, split_stories(3, true, {"model.embed_tokens.weight"}), "embedding in the last shard");
}

TEST_CASE("streaming: a bias in a later shard than its weight is attached") {
  // Biases for q/k/v/o in the last shard, weights elsewhere.
  std::vector<std::vector<float>> biases;
  std::vector<io::TensorRecord> recs;
  for (const io::TensorView& t : stories().file.tensors) recs.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
  biases.reserve(20);
  std::vector<io::TensorRecord> bias_recs;
  for (int l = 0; l < 5; ++l) {
    const int dims[4] = {64, 32, 32, 64};
    const char* names[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    for (int j = 0; j < 4; ++j) {
      std::vector<float> b(static_cast<size_t>(dims[j]));
      for (size_t i = 0; i < b.size(); ++i) b[i] = 0.02f * static_cast<float>((i * 5 + l * 3 + j) % 9) - 0.08f;
      biases.push_back(std::move(b));
      bias_recs.push_back({"model.layers." + std::to_string(l) + ".self_attn." + names[j] + ".bias", "F32",
                           {dims[j]}, reinterpret_cast<const uint8_t*>(biases.back().data()),
                           biases.back().size() * 4});
    }
  }
  std::vector<uint8_t> b0, b1, ball;
  REQUIRE(io::write_safetensors(recs, {}, &b0).ok());
  REQUIRE(io::write_safetensors(bias_recs, {}, &b1).ok());
  std::vector<io::TensorRecord> all = recs;
  all.insert(all.end(), bias_recs.begin(), bias_recs.end());
  REQUIRE(io::write_safetensors(all, {}, &ball).ok());
  io::SafetensorsFile f0, f1, fall;
  REQUIRE(io::parse_safetensors(b0.data(), b0.size(), &f0).ok());
  REQUIRE(io::parse_safetensors(b1.data(), b1.size(), &f1).ok());
  REQUIRE(io::parse_safetensors(ball.data(), ball.size(), &fall).ok());
  std::string text = stories().config_text;
  text.replace(text.find("\"attention_bias\": false"), 23, "\"attention_bias\": true");
  LlamaConfig cfg; std::string cfg_text;
  REQUIRE(parse_llama_config(cfg_text = text, &cfg).ok());

  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, true, 32);
  q.overrides = {{"*.o_proj", spec(LinearScheme::kF32)}};
  std::unique_ptr<CausalLM> ref, m, one;
  REQUIRE(CausalLM::load(cfg_text, {&fall}, &ref).ok());
  REQUIRE(ref->quantize(q, nullptr).ok());
  StreamingBuilder b;
  REQUIRE(b.begin(cfg_text, q).ok());
  REQUIRE(b.add_shard(f0).ok());
  CHECK(b.missing().size() == 20);
  CHECK(b.missing().front() == "model.layers.0.self_attn.q_proj.bias");
  std::unique_ptr<CausalLM> early;
  Status st = b.finish(&early, nullptr);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message == "streaming: tensor 'model.layers.0.self_attn.q_proj.bias' was not in any shard (and 19 more tensors are missing)");
  REQUIRE(b.add_shard(f1).ok());
  REQUIRE(b.finish(&m, nullptr).ok());
  CHECK(bit_equal(all_logits(*m), all_logits(*ref)));
  // Same shard: built once with its bias.
  REQUIRE(b.begin(cfg_text, q).ok());
  REQUIRE(b.add_shard(fall).ok());
  REQUIRE(b.finish(&one, nullptr).ok());
  CHECK(bit_equal(all_logits(*one), all_logits(*ref)));
}

TEST_CASE("streaming: errors name the tensor") {
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, false, 32);
  StreamingBuilder b;
  CHECK(b.add_shard(stories().file).code == StatusCode::kInvalidArgument);
  std::unique_ptr<CausalLM> m;
  CHECK(b.finish(&m, nullptr).code == StatusCode::kInvalidArgument);

  const Shards split = split_stories(3, false, {});
  REQUIRE(b.begin(stories().config_text, q).ok());
  REQUIRE(b.add_shard(split.files[0]).ok());
  REQUIRE(b.add_shard(split.files[2]).ok());
  Status st = b.finish(&m, nullptr);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message.find("streaming: tensor '" + b.missing().front() + "' was not in any shard") == 0);
  CHECK(m == nullptr);
  // The same shard twice.
  st = b.add_shard(split.files[0]);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("appears in more than one shard") != std::string::npos);
  // Errors reset the builder.
  CHECK(b.add_shard(split.files[1]).code == StatusCode::kInvalidArgument);

  // A shape that disagrees with the config.
  LlamaConfig wide; std::string wide_text;
  std::string text = stories().config_text;
  text.replace(text.find("\"intermediate_size\": 172"), 24, "\"intermediate_size\": 128");
  REQUIRE(parse_llama_config(wide_text = text, &wide).ok());
  REQUIRE(b.begin(wide_text, q).ok());
  st = b.add_shard(stories().file);
  CHECK(st.code == StatusCode::kShapeMismatch);
  CHECK(st.message == "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [172, 64], expected [128, 64]");

  // An unsupported dtype.
  Editable e(stories().file);
  auto& t = e.at("model.layers.2.mlp.up_proj.weight");
  t.dtype = "I32";
  const std::vector<uint8_t> bytes = e.bytes();
  io::SafetensorsFile f;
  REQUIRE(io::parse_safetensors(bytes.data(), bytes.size(), &f).ok());
  REQUIRE(b.begin(stories().config_text, q).ok());
  st = b.add_shard(f);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("'model.layers.2.mlp.up_proj.weight' has dtype I32") != std::string::npos);

  // A bad spec surfaces with the layer name.
  ModelQuantOptions bad;
  bad.default_spec = spec(LinearScheme::kW4A16, false, -1);
  REQUIRE(b.begin(stories().config_text, bad).ok());
  st = b.add_shard(stories().file);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("model.layers.0.self_attn.q_proj: ") == 0);
}

TEST_CASE("streaming then saving gives the same checkpoint as quantize then saving") {
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, true, 32);
  auto ref = load_stories();
  REQUIRE(ref->quantize(q, nullptr).ok());
  const Shards split = split_stories(3, false);
  StreamingBuilder b;
  REQUIRE(b.begin(stories().config_text, q).ok());
  for (const auto& f : split.files) REQUIRE(b.add_shard(f).ok());
  std::unique_ptr<CausalLM> m;
  REQUIRE(b.finish(&m, nullptr).ok());
  const Saved a = save(*ref), c = save(*m);
  REQUIRE(a.files.size() == c.files.size());
  for (size_t i = 0; i < a.files.size(); ++i) CHECK(a.files[i].bytes == c.files[i].bytes);
}
