// Llama model: module name patterns, model-level quantization (KL / top-1 vs fp32 on the
// stories260K oracle continuation, overrides, excludes, a tied lm_head on a quantized table) and
// memory accounting per module and for the KV cache.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "stories_llama.h"
#include "webquant/causal_lm.h"

using namespace webquant;
using namespace webquant::testing;

TEST_CASE("llama: module name patterns") {
  CHECK(module_name_matches("lm_head", "lm_head"));
  CHECK_FALSE(module_name_matches("lm_head", "lm_head2"));
  CHECK(module_name_matches("*.mlp.down_proj", "model.layers.3.mlp.down_proj"));
  CHECK_FALSE(module_name_matches("*.mlp.down_proj", "model.layers.3.mlp.up_proj"));
  CHECK(module_name_matches("model.layers.0.*", "model.layers.0.self_attn.q_proj"));
  CHECK_FALSE(module_name_matches("model.layers.0.*", "model.layers.10.self_attn.q_proj"));
  CHECK(module_name_matches("*", "anything"));
  CHECK(module_name_matches("*q_proj", "model.layers.1.self_attn.q_proj"));
  CHECK(module_name_matches("model.*.self_attn.*", "model.layers.4.self_attn.o_proj"));
  CHECK_FALSE(module_name_matches("model.*.mlp.*", "model.layers.4.self_attn.o_proj"));
}

TEST_CASE("llama: int8 and int4 quantization track fp32 on the oracle continuation") {
  const std::vector<int32_t>& seq = oracle_sequence(300);
  auto fp = load_stories();
  const std::vector<float> ref = all_logits(*fp, seq);
  const MemoryFootprint f32 = fp->memory_footprint();

  struct Case {
    const char* name;
    LinearQuantSpec spec;
    double max_mean_kl, min_top1, min_ratio, max_ratio;
  };
  LinearQuantSpec w8;
  w8.scheme = LinearScheme::kW8A16;
  w8.group_size = 0;  // per channel
  LinearQuantSpec w8g = w8;
  w8g.group_size = 32;
  LinearQuantSpec w4;
  w4.scheme = LinearScheme::kW4A16;
  w4.group_size = 32;
  const Case cases[] = {
      // Measured (reference kernels): int8 mean KL 2.7e-4, top-1 0.99, bytes 0.265;
      // int8 g32 (SIMD) mean KL 2.2e-4, top-1 0.997, bytes 0.276;
      // int4 g32 mean KL 0.087, top-1 0.86, bytes 0.160.
      {"int8 per-channel", w8, 2e-3, 0.95, 0.25, 0.27},
      {"int8 g32", w8g, 3e-4, 0.99, 0.27, 0.28},
      {"int4 g32", w4, 0.2, 0.75, 0.125, 0.18},
  };
  for (const Case& cs : cases) {
    auto m = load_stories();
    ModelQuantOptions q;
    q.default_spec = cs.spec;
    std::vector<LayerQuantReport> report;
    Status st = m->quantize(q, &report);
    REQUIRE_MESSAGE(st.ok(), st.message);
    REQUIRE(report.size() == 5 * 7 + 1);
    CHECK(report.front().name == "model.layers.0.self_attn.q_proj");
    CHECK(report.back().name == "lm_head");
    CHECK_FALSE(report.back().quantized);  // excluded by default
    CHECK(report.back().note == "excluded");
    CHECK(report.back().bytes_after == 0);  // tied: shares the embedding
    for (const LayerQuantReport& r : report) {
      if (r.name == "lm_head") continue;
      CHECK(r.quantized);
      CHECK(r.bytes_after < r.bytes_before);
      CHECK(r.bytes_before == size_t(r.out_features) * r.in_features * 4);
    }
    if (cs.spec.scheme == LinearScheme::kW4A16) {
      // in_features 172 is not a multiple of 32: down_proj falls back to per-channel and says so.
      const LayerQuantReport& down = report[6];
      CHECK(down.name == "model.layers.0.mlp.down_proj");
      CHECK(down.in_features == 172);
      CHECK_FALSE(down.note.empty());
      CHECK(report[0].note.empty());
    }

    Agreement a = compare_logits(ref, all_logits(*m, seq), 512);
    const MemoryFootprint mf = m->memory_footprint();
    const double ratio = double(mf.linear) / double(f32.linear);
    MESSAGE(std::string(cs.name) << ": mean KL " << a.mean_kl << ", max KL " << a.max_kl << ", top-1 "
                    << a.top1 << " over " << seq.size() << " positions; linear bytes "
                    << mf.linear << " / " << f32.linear << " = " << ratio);
    CHECK(a.mean_kl < cs.max_mean_kl);
    CHECK(a.top1 >= cs.min_top1);
    CHECK(ratio >= cs.min_ratio);
    CHECK(ratio <= cs.max_ratio);
    CHECK(mf.embedding == f32.embedding);
    CHECK(mf.lm_head == 0);

    // The README's greedy continuation under quantized weights.
    m->reset();
    std::vector<int32_t> gen = greedy(*m, kPrompt, 57);
    size_t same = 0;
    while (same < gen.size() && gen[same] == seq[kPrompt.size() + same]) ++same;
    std::vector<int32_t> all = kPrompt;
    all.insert(all.end(), gen.begin(), gen.end());
    MESSAGE(std::string(cs.name) << " greedy: first " << same << " of 57 tokens equal fp32's: "
                                 << decode(all));
    // Measured: int8 follows fp32 for 14 tokens ("... She loved to play"), then a
    // near-tie flips; free-running greedy is a fragile metric, the teacher-forced KL above is not.
    if (cs.spec.scheme == LinearScheme::kW8A16) CHECK(same >= 8);
  }
}

TEST_CASE("llama: quantize overrides, excludes and a tied lm_head on a quantized table") {
  const std::vector<int32_t>& seq = oracle_sequence(64);
  auto fp = load_stories();
  const std::vector<float> ref = all_logits(*fp, seq);

  auto m = load_stories();
  ModelQuantOptions q;
  q.default_spec.scheme = LinearScheme::kW4A16;
  q.default_spec.group_size = 32;
  q.exclude = {"model.layers.0.*"};  // lm_head no longer excluded
  LinearQuantSpec w8;
  w8.scheme = LinearScheme::kW8A16;
  LinearQuantSpec f32;
  f32.scheme = LinearScheme::kF32;
  q.overrides = {{"*.mlp.down_proj", w8}, {"model.layers.4.mlp.*", f32}, {"lm_head", w8}};
  std::vector<LayerQuantReport> report;
  REQUIRE(m->quantize(q, &report).ok());
  std::map<std::string, LayerQuantReport> by;
  for (const auto& r : report) by[r.name] = r;
  CHECK_FALSE(by["model.layers.0.mlp.down_proj"].quantized);  // excluded wins
  CHECK(by["model.layers.0.mlp.down_proj"].note == "excluded");
  CHECK(m->linear("model.layers.0.self_attn.q_proj")->scheme() == LinearScheme::kF32);
  CHECK(m->linear("model.layers.1.self_attn.q_proj")->scheme() == LinearScheme::kW4A16);
  CHECK(m->linear("model.layers.4.mlp.down_proj")->scheme() == LinearScheme::kW8A16);  // first match
  CHECK(m->linear("model.layers.4.mlp.up_proj")->scheme() == LinearScheme::kF32);
  CHECK(m->linear("model.layers.2.mlp.gate_proj")->scheme() == LinearScheme::kW4A16);
  // The tied head is not excluded: it reads the embedding table, quantized with its spec (int8).
  CHECK(m->linear("lm_head") == nullptr);
  const LinearLayer* table = m->weights().quantized_param("model.embed_tokens.weight");
  REQUIRE(table != nullptr);
  CHECK(table->scheme() == LinearScheme::kW8A16);
  CHECK(by["lm_head"].bytes_before == 0);
  CHECK(by["lm_head"].tied);
  CHECK(by["lm_head"].bits == 8);
  CHECK(by["lm_head"].note.find("tied") != std::string::npos);
  CHECK(by["model.embed_tokens"].embedding);

  const MemoryFootprint mf = m->memory_footprint();
  CHECK(mf.lm_head == 0);
  CHECK(mf.embedding == table->weight_bytes());
  CHECK(mf.embedding < 512 * 64 * 4 / 3);
  Agreement a = compare_logits(ref, all_logits(*m, seq), 512);
  MESSAGE("mixed w4/w8 with int8 lm_head: mean KL " << a.mean_kl << ", top-1 " << a.top1);
  CHECK(a.mean_kl < 0.15);

  // Back to f32 from the current weights; the tied head shares the embedding again.
  ModelQuantOptions back;
  back.default_spec = f32;
  back.exclude = {};
  REQUIRE(m->quantize(back, &report).ok());
  CHECK(m->linear("lm_head") == nullptr);
  CHECK(m->memory_footprint().lm_head == 0);
  CHECK(m->linear("model.layers.1.self_attn.q_proj")->scheme() == LinearScheme::kF32);
  CHECK(report[7].name == "model.layers.1.self_attn.q_proj");
  CHECK(report[7].note.find("converted to f32 from w4a16") == 0);
  CHECK(m->weights().quantized_param("model.embed_tokens.weight") == nullptr);  // float again
  CHECK(m->memory_footprint().embedding == 512 * 64 * 4);
  CHECK(report.back().name == "model.embed_tokens");
  CHECK(report.back().note.find("converted to f32 from w8a16") == 0);
  CHECK(report[report.size() - 2].note == "tied to model.embed_tokens (f32)");
  CHECK(max_abs_diff(all_logits(*m, seq), all_logits(*m, seq)) == 0.0);

  // replace_linear checks names and shapes.
  std::vector<float> w(64 * 64, 0.0f);
  CHECK(m->replace_linear("model.layers.9.mlp.up_proj", make_linear_f32(w.data(), 64, 64, nullptr)).code ==
        StatusCode::kNotFound);
  CHECK(m->replace_linear("model.layers.0.mlp.up_proj", make_linear_f32(w.data(), 64, 64, nullptr)).code ==
        StatusCode::kShapeMismatch);
  CHECK(m->replace_linear("model.layers.0.self_attn.q_proj", make_linear_f32(w.data(), 64, 64, nullptr)).ok());
}

TEST_CASE("llama: memory footprint per module and KV cache") {
  auto m = load_stories();
  MemoryFootprint f = m->memory_footprint();
  const size_t per_layer_linear = (64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 3 * 172 * 64) * 4;
  CHECK(f.embedding == 512 * 64 * 4);
  CHECK(f.linear == 5 * per_layer_linear);
  CHECK(f.norms == (5 * 2 + 1) * 64 * 4);
  CHECK(f.lm_head == 0);
  CHECK(f.total == f.embedding + f.linear + f.norms);
  size_t params = 0;
  for (const auto& t : stories().file.tensors) params += size_t(t.numel()) * 4;
  CHECK(f.total == params);  // every checkpoint tensor, counted once
  CHECK(f.modules.size() == 1 + 36 + 11);
  CHECK(f.modules[0].name == "model.embed_tokens");
  CHECK(f.kv_cache == 0);

  std::vector<float> logits;
  REQUIRE(m->forward(kPrompt.data(), kPrompt.size(), false, &logits).ok());
  f = m->memory_footprint();
  // 16 positions allocated at first use: 5 layers x (K + V) x 16 x 32 floats.
  CHECK(f.kv_cache == 5 * 2 * 16 * 32 * 4);
  CHECK(f.total == params);
}
