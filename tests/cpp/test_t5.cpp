// T5 (encoder-decoder) against its independent float64 reference (tests/fixtures/arch/t5-*, written
// by tests/web/helpers/t5-fixtures.ts from helpers/ref/t5.ts): logits over the reference's greedy
// continuation in one pass and step by step over the KV cache, greedy generation, relative
// position buckets, input errors, and every quantized scheme on both stacks through the module
// layer (quantize report, footprint, save/load bit for bit).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "arch_reference.h"
#include "io/json.h"
#include "models/t5/t5_attention.h"
#include "webquant/causal_lm.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"

using namespace webquant;
using namespace webquant::testing;

namespace {

// The reference's encoder input besides the decoder ids and logits.
struct T5Fixture : ArchReference {
  std::vector<int32_t> input;
};

std::unique_ptr<T5Fixture> t5_fixture(const std::string& name) {
  auto f = std::make_unique<T5Fixture>();
  load_arch_reference(name, f.get());
  f->input = json_ints(f->ref, "input");
  return f;
}

std::unique_ptr<CausalLM> load_t5(const T5Fixture& f, const std::string& config = "") {
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(config.empty() ? f.config : config, {&f.file}, &m);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

std::vector<float> decoder_logits(CausalLM& m, const T5Fixture& f) {
  REQUIRE(m.encode(f.input.data(), f.input.size()).ok());
  std::vector<float> logits;
  REQUIRE(m.forward(f.decoder.data(), f.decoder.size(), true, &logits).ok());
  return logits;
}

}  // namespace

TEST_CASE("t5: relative position buckets follow modeling_t5") {
  using models::t5::relative_position_bucket;
  // Encoder (bidirectional, 32 buckets, max distance 128): 16 per direction, 8 exact.
  CHECK(relative_position_bucket(0, true, 32, 128) == 0);
  CHECK(relative_position_bucket(-1, true, 32, 128) == 1);
  CHECK(relative_position_bucket(1, true, 32, 128) == 17);
  CHECK(relative_position_bucket(-7, true, 32, 128) == 7);
  CHECK(relative_position_bucket(-8, true, 32, 128) == 8);     // 8 + int(log(1) ...) = 8
  CHECK(relative_position_bucket(-16, true, 32, 128) == 10);   // 8 + int(log 2 / log 16 * 8) = 8 + 2
  CHECK(relative_position_bucket(20, true, 32, 128) == 26);    // 16 + 8 + int(log 2.5 / log 16 * 8) = 16 + 8 + 2
  CHECK(relative_position_bucket(-63, true, 32, 128) == 13);   // 8 + int(5.95)
  CHECK(relative_position_bucket(-127, true, 32, 128) == 15);
  CHECK(relative_position_bucket(-1000, true, 32, 128) == 15);  // capped
  // Decoder (causal, 32 buckets): later keys are bucket 0, 16 exact distances.
  CHECK(relative_position_bucket(5, false, 32, 128) == 0);
  CHECK(relative_position_bucket(-5, false, 32, 128) == 5);
  CHECK(relative_position_bucket(-16, false, 32, 128) == 16);
  CHECK(relative_position_bucket(-32, false, 32, 128) == 21);  // 16 + int(log 2 / log 8 * 16) = 16 + 5
  CHECK(relative_position_bucket(-1000, false, 32, 128) == 31);
}

TEST_CASE("t5: fp32 logits over a greedy continuation agree with the float64 reference") {
  for (const std::string name : {"t5-gated", "t5-relu-tied"}) {
    CAPTURE(name);
    auto f = t5_fixture(name);
    auto m = load_t5(*f);
    CHECK(m->info().is_encoder_decoder);
    CHECK(m->info().decoder_start_token_id == 0);
    // One pass over every decoder position.
    const std::vector<float> all = decoder_logits(*m, *f);
    const double d = rel_diff(all, *f, 0, f->decoder.size());
    MESSAGE(name << ": max |logit - ref| / max |ref| = " << d);
    // Measured 1.8e-6 (gated, no attention scaling: sharp softmaxes) and 2.1e-7 (relu).
    CHECK(d < 5e-6);
    // Step by step over the KV cache (prefill = encode + decoder start).
    std::vector<float> step;
    REQUIRE(m->prefill(f->input.data(), f->input.size(), &step).ok());
    CHECK(rel_diff(step, *f, 0, 1) < 5e-6);
    for (size_t t = 1; t < f->decoder.size(); ++t) {
      REQUIRE(m->forward(&f->decoder[t], 1, false, &step).ok());
      CHECK(rel_diff(step, *f, t, 1) < 5e-6);  // measured up to 2.5e-6
    }
    // Greedy generation reproduces the reference's continuation.
    std::vector<int32_t> out;
    REQUIRE(m->generate(f->input.data(), f->input.size(), static_cast<int>(f->decoder.size()) - 1, SamplingOptions{}, &out).ok());
    const std::vector<int32_t> want(f->decoder.begin() + 1, f->decoder.end());
    // Generation stops after eos (id 1), which the reference does not.
    const auto eos = std::find(want.begin(), want.end(), 1);
    CHECK(out == std::vector<int32_t>(want.begin(), eos == want.end() ? eos : eos + 1));
  }
}

TEST_CASE("t5: layout, input errors and config errors") {
  auto f = t5_fixture("t5-gated");
  auto m = load_t5(*f);
  const std::vector<std::string> names = m->linear_names();
  CHECK(names.front() == "encoder.block.0.layer.0.SelfAttention.q");
  CHECK(std::find(names.begin(), names.end(), "decoder.block.2.layer.1.EncDecAttention.v") != names.end());
  CHECK(std::find(names.begin(), names.end(), "decoder.block.0.layer.2.DenseReluDense.wi_0") != names.end());
  CHECK(names.back() == "lm_head");
  ModelLayout layout;
  REQUIRE(CausalLM::layout(f->config, &layout).ok());
  CHECK(layout.params.front().name == "shared.weight");
  CHECK(std::any_of(layout.params.begin(), layout.params.end(), [](const ParamInfo& p) {
    return p.name == "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
  }));

  std::vector<float> logits;
  const int32_t start = 0;
  Status st = m->forward(&start, 1, false, &logits);  // before encode()
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("encode") != std::string::npos);
  CHECK(m->encode(f->input.data(), 0).code == StatusCode::kInvalidArgument);
  const std::vector<int32_t> bad = {3, 96, 4};
  st = m->encode(bad.data(), bad.size());
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("token 1") != std::string::npos);
  const std::vector<int32_t> too_long(static_cast<size_t>(m->max_context()) + 1, 5);
  st = m->encode(too_long.data(), too_long.size());
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("too long") != std::string::npos);
  CHECK(!m->encoded());

  auto with = [&](const std::string& from, const std::string& to) { return replace_once(f->config, from, to); };
  std::unique_ptr<CausalLM> out;
  st = CausalLM::load(with("\"gated-gelu\"", "\"gated-foo\""), {&f->file}, &out);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("feed_forward_proj") != std::string::npos);
  st = CausalLM::load(with("\"gated-gelu\"", "\"gated-gelu-x\""), {&f->file}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  st = CausalLM::load(with("\"num_heads\": 4", "\"num_heads\": 0"), {&f->file}, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("num_heads") != std::string::npos);
  // A missing tensor is named; nothing is half-loaded.
  st = CausalLM::load(with("\"num_decoder_layers\": 3", "\"num_decoder_layers\": 4"), {&f->file}, &out);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message.find("decoder.block.3") != std::string::npos);
  CHECK(out == nullptr);

  // A decoder-only model has no encoder.
  std::unique_ptr<CausalLM> gpt2 = load_arch_model("gpt2");
  CHECK(gpt2->encode(f->input.data(), 3).code == StatusCode::kUnsupported);
}

TEST_CASE("t5: every quantized scheme on both stacks; save and load give the same logits") {
  auto f = t5_fixture("t5-gated");
  // Measured on this tiny synthetic model (every layer, lm_head included): w8a16 0.039, w8a8 0.039,
  // w4a16 g8 asym 0.40, w4a8 g8 0.46, w2a16 g8 asym 1.0.
  check_quantized_schemes([&] { return load_t5(*f); }, [&](CausalLM& m) { return decoder_logits(m, *f); },
                          {{LinearScheme::kW8A16, 0, false, 0.08}, {LinearScheme::kW8A8, 0, false, 0.08},
                           {LinearScheme::kW4A16, 8, true, 0.8},   {LinearScheme::kW4A8, 8, false, 0.9},
                           {LinearScheme::kW2A16, 8, true, 2.0}},
                          "");  // the untied lm_head too
}
