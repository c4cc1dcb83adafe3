// Llama model: config.json parsing and its errors, load-time shape and name checks, sharded /
// untied / F16 / BF16 checkpoints, llama3 RoPE scaling, attention biases (llama, qwen2) and
// mistral's sliding window, all on the real stories260K.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "models/llama/llama_rope.h"
#include "nn/blocks.h"
#include "stories_llama.h"
#include "webquant/convert.h"
#include "webquant/causal_lm.h"
#include "webquant/llama.h"
#include "webquant/safetensors.h"

using namespace webquant;
using namespace webquant::testing;

namespace {

struct ExtraTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// The stories260K tensors re-serialized (optionally converted, dropped, split or renamed).
// dtype: "F32", "F16" or "BF16". drop: tensor left out. n_shards: tensors dealt round-robin.
// extra_lm_head: also write lm_head.weight (a copy of the embedding). extras: more F32 tensors.
Shards rewrite(const std::string& dtype, const std::string& drop, int n_shards,
                  bool extra_lm_head, const std::vector<ExtraTensor>& extras = {}) {
  const io::SafetensorsFile& src = stories().file;
  std::vector<io::TensorView> views(src.tensors.begin(), src.tensors.end());
  for (const ExtraTensor& e : extras) {
    io::TensorView t;
    t.name = e.name;
    t.dtype = "F32";
    t.shape = e.shape;
    t.data = reinterpret_cast<const uint8_t*>(e.data.data());
    t.nbytes = e.data.size() * 4;
    views.push_back(t);
  }
  if (extra_lm_head) {
    io::TensorView head = *src.find("model.embed_tokens.weight");
    head.name = "lm_head.weight";
    views.push_back(head);
  }
  std::vector<std::vector<uint8_t>> storage;
  std::vector<std::vector<io::TensorRecord>> per_shard(static_cast<size_t>(n_shards));
  storage.reserve(views.size());
  size_t k = 0;
  for (const io::TensorView& t : views) {
    if (t.name == drop) continue;
    std::vector<float> f(static_cast<size_t>(t.numel()));
    REQUIRE(io::tensor_to_f32(t, f.data()).ok());
    std::vector<uint8_t> b;
    if (dtype == "F32") {
      b.resize(f.size() * 4);
      std::memcpy(b.data(), f.data(), b.size());
    } else {
      std::vector<uint16_t> h(f.size());
      if (dtype == "F16") convert_f32_to_f16(f.data(), h.data(), f.size());
      else convert_f32_to_bf16(f.data(), h.data(), f.size());
      b.resize(h.size() * 2);
      std::memcpy(b.data(), h.data(), b.size());
    }
    storage.push_back(std::move(b));
    per_shard[k++ % per_shard.size()].push_back(
        {t.name, dtype, t.shape, storage.back().data(), storage.back().size()});
  }
  return write_shards(per_shard);
}

}  // namespace

TEST_CASE("llama: config.json parsing and validation") {
  const LlamaConfig& c = stories().config;
  CHECK(c.model_type == "llama");
  CHECK(c.hidden_size == 64);
  CHECK(c.intermediate_size == 172);
  CHECK(c.num_hidden_layers == 5);
  CHECK(c.num_attention_heads == 8);
  CHECK(c.num_key_value_heads == 4);
  CHECK(c.head_dim == 8);
  CHECK(c.vocab_size == 512);
  CHECK(c.max_position_embeddings == 512);
  CHECK(c.rms_norm_eps == doctest::Approx(1e-5));
  CHECK(c.rope_theta == 10000.0f);
  CHECK(c.tie_word_embeddings);
  CHECK_FALSE(c.qkv_bias);
  CHECK_FALSE(c.mlp_bias);
  CHECK(c.bos_token_id == 1);
  CHECK(c.eos_token_ids == std::vector<int>{2});

  LlamaConfig smol; std::string smol_text;
  Status st = parse_llama_config(
      read_file(std::string(WQ_SHARED_DIR) + "/hub/HuggingFaceTB/SmolLM2-135M-Instruct/config.json"),
      &smol);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(smol.hidden_size == 576);
  CHECK(smol.num_attention_heads == 9);
  CHECK(smol.num_key_value_heads == 3);
  CHECK(smol.head_dim == 64);
  CHECK(smol.num_hidden_layers == 30);
  CHECK(smol.vocab_size == 49152);
  CHECK(smol.rope_theta == 100000.0f);
  CHECK(smol.rope_type == "none");
  CHECK(smol.tie_word_embeddings);
}

TEST_CASE("llama: config errors name the problem") {
  const std::string& base = stories().config_text;
  LlamaConfig c; std::string c_text;

  Status st = parse_llama_config(c_text = replace_once(base, "\"model_type\": \"llama\"", "\"model_type\": \"gpt2\""), &c);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message == "model_type 'gpt2' is not supported; supported: llama, mistral, qwen2");

  st = parse_llama_config(c_text = replace_once(base, "\"hidden_size\": 64,", ""), &c);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("hidden_size") != std::string::npos);

  st = parse_llama_config(c_text = replace_once(base, "\"num_key_value_heads\": 4", "\"num_key_value_heads\": 3"), &c);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("num_key_value_heads (3) must divide num_attention_heads (8)") != std::string::npos);

  st = parse_llama_config(c_text = replace_once(base, "\"num_attention_heads\": 8", "\"num_attention_heads\": 0"), &c);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("num_attention_heads") != std::string::npos);

  st = parse_llama_config(c_text = replace_once(base, "\"hidden_size\": 64", "\"hidden_size\": 60"), &c);
  CHECK(st.code == StatusCode::kInvalidArgument);  // 8 heads do not divide 60
  CHECK(st.message.find("must divide hidden_size (60)") != std::string::npos);

  st = parse_llama_config(c_text = replace_once(base, "\"hidden_size\": 64", "\"hidden_size\": 64.5"), &c);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("'hidden_size' must be an integer") != std::string::npos);

  st = parse_llama_config(c_text = replace_once(base, "\"hidden_act\": \"silu\"", "\"hidden_act\": \"gelu\""), &c);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("gelu") != std::string::npos);

  st = parse_llama_config(
      replace_once(base, "\"rope_theta\"", "\"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 2.0}, \"rope_theta\""), &c);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("rope_scaling type 'dynamic' is not supported") != std::string::npos);

  st = parse_llama_config(c_text = "{\"model_type\": \"llama\",", &c);
  CHECK(st.code == StatusCode::kCorruptData);

  // Accepted variants: eos list, llama3 RoPE, qwen2 biases, explicit head_dim, default KV heads.
  st = parse_llama_config(
      replace_once(replace_once(base, "\"eos_token_id\": 2", "\"eos_token_id\": [2, 7]"), "\"rope_theta\"",
                   "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 32.0, \"low_freq_factor\": 1.0, "
                   "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}, \"rope_theta\""),
      &c);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(c.eos_token_ids == std::vector<int>{2, 7});
  CHECK(c.rope_type == "llama3");
  CHECK(c.rope_factor == 32.0f);

  st = parse_llama_config(replace_once(replace_once(base, "\"model_type\": \"llama\"", "\"model_type\": \"qwen2\""),
                                       "\"num_key_value_heads\": 4,", "\"head_dim\": 16,"),
                          &c);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(c.qkv_bias);
  CHECK_FALSE(c.o_bias);
  CHECK(c.num_key_value_heads == 8);
  CHECK(c.head_dim == 16);
  CHECK(c.q_dim() == 128);
}

TEST_CASE("llama: load checks shapes and names every missing tensor") {
  LlamaConfig c; std::string c_text;
  REQUIRE(parse_llama_config(c_text = replace_once(stories().config_text, "\"hidden_size\": 64", "\"hidden_size\": 32"), &c).ok());
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(c_text, {&stories().file}, &m);
  CHECK(st.code == StatusCode::kShapeMismatch);
  CHECK(st.message == "tensor 'model.embed_tokens.weight' has shape [512, 64], expected [512, 32]");
  CHECK(m == nullptr);

  REQUIRE(parse_llama_config(c_text = replace_once(stories().config_text, "\"intermediate_size\": 172", "\"intermediate_size\": 128"), &c).ok());
  st = CausalLM::load(c_text, {&stories().file}, &m);
  CHECK(st.code == StatusCode::kShapeMismatch);
  CHECK(st.message == "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [172, 64], expected [128, 64]");

  Shards r = rewrite("F32", "model.layers.3.self_attn.v_proj.weight", 1, false);
  st = CausalLM::load(stories().config_text, r.shards(), &m);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message == "tensor 'model.layers.3.self_attn.v_proj.weight' not found in the checkpoint");

  // Untied config needs lm_head.weight.
  REQUIRE(parse_llama_config(c_text = replace_once(stories().config_text, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"), &c).ok());
  st = CausalLM::load(c_text, {&stories().file}, &m);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message.find("'lm_head.weight'") != std::string::npos);

  // Biases are looked up when the config asks for them.
  REQUIRE(parse_llama_config(c_text = replace_once(stories().config_text, "\"attention_bias\": false", "\"attention_bias\": true"), &c).ok());
  st = CausalLM::load(c_text, {&stories().file}, &m);
  CHECK(st.code == StatusCode::kNotFound);
  CHECK(st.message.find("'model.layers.0.self_attn.q_proj.bias'") != std::string::npos);
}

TEST_CASE("llama: shards, an untied lm_head and F16/BF16 checkpoints give the fp32 logits") {
  const std::vector<int32_t>& seq = oracle_sequence(24);
  auto ref_model = load_stories();
  const std::vector<float> ref = all_logits(*ref_model, seq);

  Shards sharded = rewrite("F32", "", 3, false);
  std::unique_ptr<CausalLM> m;
  REQUIRE(CausalLM::load(stories().config_text, sharded.shards(), &m).ok());
  CHECK(all_logits(*m, seq) == ref);

  LlamaConfig untied; std::string untied_text;
  REQUIRE(parse_llama_config(untied_text = replace_once(stories().config_text, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"), &untied).ok());
  Shards with_head = rewrite("F32", "", 2, true);
  REQUIRE(CausalLM::load(untied_text, with_head.shards(), &m).ok());
  CHECK(max_abs_diff(all_logits(*m, seq), ref) < 1e-4);
  CHECK(m->memory_footprint().lm_head == 512 * 64 * 4);

  for (const char* dtype : {"F16", "BF16"}) {
    Shards half = rewrite(dtype, "", 1, false);
    REQUIRE(CausalLM::load(stories().config_text, half.shards(), &m).ok());
    Agreement a = compare_logits(ref, all_logits(*m, seq), 512);
    MESSAGE(std::string(dtype) << " weights: mean KL " << a.mean_kl << ", top-1 " << a.top1);
    CHECK(a.mean_kl < (std::string(dtype) == "F16" ? 1e-4 : 5e-3));
    CHECK(a.top1 >= 0.9);
  }
}

TEST_CASE("llama: llama3 RoPE scaling follows transformers' frequencies") {
  // Llama 3.2: theta 500000, head_dim 64, factor 32, low 1, high 4, original context 8192.
  // Expected values: a float64 transcription of transformers' _compute_llama3_parameters.
  auto inv_freq = [](const char* type, float factor) {
    LlamaConfig c;
    c.head_dim = 64;
    c.rope_theta = 500000.0f;
    c.rope_type = type;
    c.rope_factor = factor;
    c.rope_low_freq_factor = 1.0f;
    c.rope_high_freq_factor = 4.0f;
    c.rope_original_max_position_embeddings = 8192;
    nn::Rotary r;
    r.init(c.head_dim, c.rope_theta);
    models::rescale_llama_rope(c, &r.inv_freq);
    return r.inv_freq;
  };
  std::vector<float> inv = inv_freq("llama3", 32.0f);
  REQUIRE(inv.size() == 32);
  const std::pair<int, double> expect[] = {{0, 1.0},
                                           {1, 0.6636012376960885},     // high frequency: kept
                                           {15, 0.001290547928209264},  // smoothed
                                           {16, 0.00042955679655936815},
                                           {17, 9.70828780262767e-05},
                                           {20, 8.570255489881478e-06}};  // low: divided by 32
  for (const auto& e : expect) {
    CHECK_MESSAGE(std::fabs(inv[e.first] - e.second) <= 2e-6 * e.second, "i=" << e.first);
  }
  CHECK(inv_freq("none", 1.0f)[20] == doctest::Approx(0.0002742481756762073).epsilon(2e-6));
  CHECK(inv_freq("linear", 4.0f)[20] == doctest::Approx(0.0002742481756762073 / 4).epsilon(2e-6));

  // rotate_half at position 0 is the identity; the rotation keeps each pair's norm.
  float cs[8];
  const float f[4] = {1.0f, 0.5f, 0.25f, 0.125f};
  nn::Rotary rot;
  rot.dims = 8;
  rot.inv_freq.assign(f, f + 4);
  rot.cos_sin(0, cs);
  float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  rot.apply(v, 1, 8, cs);
  for (int i = 0; i < 8; ++i) CHECK(v[i] == float(i + 1));
  rot.cos_sin(3, cs);
  rot.apply(v, 1, 8, cs);
  for (int i = 0; i < 4; ++i) {
    const float a = 3.0f * f[i];
    CHECK(v[i] == doctest::Approx((i + 1) * std::cos(a) - (i + 5) * std::sin(a)));
    CHECK(v[i + 4] == doctest::Approx((i + 5) * std::cos(a) + (i + 1) * std::sin(a)));
  }
}

TEST_CASE("llama: attention biases are applied (v bias cancelled by an o bias)") {
  // softmax rows sum to 1, so a v_proj bias c adds W_o c to o_proj's output; an o_proj bias of
  // -W_o c cancels it exactly. Both must be applied for the logits to stay the fp32 ones.
  const std::vector<int32_t>& seq = oracle_sequence(20);
  auto ref_model = load_stories();
  const std::vector<float> ref = all_logits(*ref_model, seq);

  std::vector<ExtraTensor> extras;
  for (int l = 0; l < 5; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
    const io::TensorView* wo = stories().file.find(p + "o_proj.weight");
    REQUIRE(wo != nullptr);
    std::vector<float> w(64 * 64);
    REQUIRE(io::tensor_to_f32(*wo, w.data()).ok());
    std::vector<float> c(32), ob(64, 0.0f);
    for (int j = 0; j < 32; ++j) c[j] = 0.3f * std::sin(1.7f * j + l);
    for (int r = 0; r < 64; ++r) {
      for (int j = 0; j < 64; ++j) ob[r] -= w[r * 64 + j] * c[(j / 8) / 2 * 8 + j % 8];  // head h uses kv head h/2
    }
    extras.push_back({p + "q_proj.bias", {64}, std::vector<float>(64, 0.0f)});
    extras.push_back({p + "k_proj.bias", {32}, std::vector<float>(32, 0.0f)});
    extras.push_back({p + "v_proj.bias", {32}, c});
    extras.push_back({p + "o_proj.bias", {64}, ob});
  }
  Shards r = rewrite("F32", "", 1, false, extras);
  LlamaConfig c; std::string c_text;
  REQUIRE(parse_llama_config(c_text = replace_once(stories().config_text, "\"attention_bias\": false", "\"attention_bias\": true"), &c).ok());
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(c_text, r.shards(), &m);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(max_abs_diff(all_logits(*m, seq), ref) < 1e-4);
  // Without the compensating o bias the logits move: the v bias is really used.
  for (int l = 0; l < 5; ++l) {
    ExtraTensor& ob = extras[static_cast<size_t>(l * 4 + 3)];
    std::fill(ob.data.begin(), ob.data.end(), 0.0f);
  }
  Shards r2 = rewrite("F32", "", 1, false, extras);
  REQUIRE(CausalLM::load(c_text, r2.shards(), &m).ok());
  CHECK(max_abs_diff(all_logits(*m, seq), ref) > 1e-2);

  // qwen2 (q/k/v biases, none on o_proj) with zero biases is the llama model.
  std::vector<ExtraTensor> zeros;
  for (int l = 0; l < 5; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".self_attn.";
    zeros.push_back({p + "q_proj.bias", {64}, std::vector<float>(64, 0.0f)});
    zeros.push_back({p + "k_proj.bias", {32}, std::vector<float>(32, 0.0f)});
    zeros.push_back({p + "v_proj.bias", {32}, std::vector<float>(32, 0.0f)});
  }
  Shards r3 = rewrite("F32", "", 1, false, zeros);
  REQUIRE(parse_llama_config(c_text = replace_once(stories().config_text, "\"model_type\": \"llama\"", "\"model_type\": \"qwen2\""), &c).ok());
  REQUIRE(CausalLM::load(c_text, r3.shards(), &m).ok());
  CHECK(all_logits(*m, seq) == ref);
}

TEST_CASE("llama: mistral sliding window masks older positions") {
  const std::vector<int32_t>& seq = oracle_sequence(20);
  auto ref_model = load_stories();
  const std::vector<float> ref = all_logits(*ref_model, seq);
  const std::string mistral =
      replace_once(stories().config_text, "\"model_type\": \"llama\"", "\"model_type\": \"mistral\"");
  LlamaConfig c; std::string c_text;
  std::unique_ptr<CausalLM> m;
  // A window as long as the sequence changes nothing.
  REQUIRE(parse_llama_config(c_text = replace_once(mistral, "\"rope_theta\"", "\"sliding_window\": 20, \"rope_theta\""), &c).ok());
  CHECK(c.sliding_window == 20);
  REQUIRE(CausalLM::load(c_text, {&stories().file}, &m).ok());
  CHECK(all_logits(*m, seq) == ref);
  // Window 1: every token attends to itself only, so a position's logits depend on its token only.
  REQUIRE(parse_llama_config(c_text = replace_once(mistral, "\"rope_theta\"", "\"sliding_window\": 1, \"rope_theta\""), &c).ok());
  REQUIRE(CausalLM::load(c_text, {&stories().file}, &m).ok());
  std::vector<float> windowed = all_logits(*m, seq), alone;
  m->reset();
  REQUIRE(m->forward(&seq[7], 1, false, &alone).ok());
  std::vector<float> row7(windowed.begin() + 7 * 512, windowed.begin() + 8 * 512);
  CHECK(max_abs_diff(row7, alone) < 1e-5);
  CHECK(max_abs_diff(windowed, ref) > 1e-2);
}
