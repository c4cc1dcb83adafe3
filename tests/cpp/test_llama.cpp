// Llama model: the real stories260K greedy oracle, KV-cache consistency, load/config errors,
// sampling, model-level quantization (KL / top-1 vs fp32) and memory accounting.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "io/json.h"
#include "models/llama/llama_rope.h"
#include "nn/blocks.h"
#include "webquant/convert.h"
#include "webquant/causal_lm.h"
#include "webquant/llama.h"
#include "webquant/safetensors.h"

using namespace webquant;

namespace {

const std::string kStoriesDir = std::string(WQ_SHARED_DIR) + "/hub/karpathy/stories260K/";
const std::vector<int32_t> kPrompt = {1, 410, 469, 347};  // <s> "Zoo"
// hub/README.md: greedy decoding of the prompt for 57 new tokens.
const char* const kOracle =
    "Zoo was a little girl named Lily. She loved to play outside in the park. One day, she saw a "
    "big, red ball. She wanted to play with it, but she didn't want to play with";

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The checkpoint bytes and their parsed views, loaded once.
struct Stories {
  std::string config_text;
  std::string bytes;
  io::SafetensorsFile file;
  LlamaConfig config;
  std::vector<std::string> vocab;  // id -> piece
};

const Stories& stories() {
  static Stories* s = [] {
    auto* st = new Stories();
    st->config_text = read_text(kStoriesDir + "config.json");
    st->bytes = read_text(kStoriesDir + "model.safetensors");
    Status p = io::parse_safetensors(reinterpret_cast<const uint8_t*>(st->bytes.data()),
                                     st->bytes.size(), &st->file);
    REQUIRE_MESSAGE(p.ok(), p.message);
    Status c = parse_llama_config(st->config_text, &st->config);
    REQUIRE_MESSAGE(c.ok(), c.message);
    io::JsonValue tok;
    Status t = io::parse_json(read_text(kStoriesDir + "tokenizer.json"), &tok);
    REQUIRE_MESSAGE(t.ok(), t.message);
    const io::JsonValue* model = tok.get("model");
    REQUIRE(model != nullptr);
    const io::JsonValue* vocab = model->get("vocab");
    REQUIRE(vocab != nullptr);
    REQUIRE(vocab->is_object());
    st->vocab.resize(vocab->object.size());
    for (const auto& kv : vocab->object) {
      const size_t id = static_cast<size_t>(kv.second.number);
      REQUIRE(id < st->vocab.size());
      st->vocab[id] = kv.first;
    }
    return st;
  }();
  return *s;
}

// tokenizer.json's decoder: skip special tokens, "▁" -> " ", <0xNN> -> byte, strip one leading space.
std::string decode(const std::vector<int32_t>& ids) {
  const Stories& s = stories();
  std::string out;
  for (int32_t id : ids) {
    if (id <= 2) continue;  // <unk>, <s>, </s>
    const std::string& piece = s.vocab.at(static_cast<size_t>(id));
    if (piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>') {
      out.push_back(static_cast<char>(std::stoi(piece.substr(3, 2), nullptr, 16)));
      continue;
    }
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xe2\x96\x81") == 0) {
        out.push_back(' ');
        i += 3;
      } else {
        out.push_back(piece[i++]);
      }
    }
  }
  if (!out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::unique_ptr<CausalLM> load_stories(const LoadOptions& opts = {}) {
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(stories().config_text, {&stories().file}, &m, opts);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

std::vector<int32_t> greedy(CausalLM& m, const std::vector<int32_t>& prompt, int n_new) {
  std::vector<float> logits;
  REQUIRE(m.forward(prompt.data(), prompt.size(), false, &logits).ok());
  std::vector<int32_t> out;
  for (int t = 0; t < n_new; ++t) {
    int32_t tok = argmax(logits.data(), logits.size());
    out.push_back(tok);
    if (t + 1 < n_new) REQUIRE(m.forward(&tok, 1, false, &logits).ok());
  }
  return out;
}

// The oracle prompt followed by the fp32 model's own greedy continuation: `total` tokens.
const std::vector<int32_t>& oracle_sequence(size_t total) {
  static std::map<size_t, std::vector<int32_t>> cache;
  auto it = cache.find(total);
  if (it != cache.end()) return it->second;
  auto m = load_stories();
  std::vector<int32_t> seq = kPrompt;
  auto gen = greedy(*m, kPrompt, static_cast<int>(total - kPrompt.size()));
  seq.insert(seq.end(), gen.begin(), gen.end());
  return cache[total] = seq;
}

std::vector<float> all_logits(CausalLM& m, const std::vector<int32_t>& seq) {
  m.reset();
  std::vector<float> logits;
  Status st = m.forward(seq.data(), seq.size(), true, &logits);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return logits;
}

struct Agreement {
  double mean_kl = 0, max_kl = 0, top1 = 0;
};

// KL(p_ref || p_q) per row (natural log) and top-1 agreement over rows of [rows, vocab] logits.
Agreement compare_logits(const std::vector<float>& ref, const std::vector<float>& q, size_t vocab) {
  const size_t rows = ref.size() / vocab;
  Agreement a;
  size_t same = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* x = &ref[r * vocab];
    const float* y = &q[r * vocab];
    double mx = -INFINITY, my = -INFINITY;
    for (size_t i = 0; i < vocab; ++i) mx = std::max(mx, double(x[i])), my = std::max(my, double(y[i]));
    double zx = 0, zy = 0;
    for (size_t i = 0; i < vocab; ++i) zx += std::exp(x[i] - mx), zy += std::exp(y[i] - my);
    double kl = 0;
    for (size_t i = 0; i < vocab; ++i) {
      const double lp = x[i] - mx - std::log(zx), lq = y[i] - my - std::log(zy);
      kl += std::exp(lp) * (lp - lq);
    }
    a.mean_kl += kl / rows;
    a.max_kl = std::max(a.max_kl, kl);
    same += argmax(x, vocab) == argmax(y, vocab);
  }
  a.top1 = double(same) / rows;
  return a;
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "'" << from << "' not in text");
  return s.replace(at, from.size(), to);
}

// The stories260K tensors re-serialized (optionally converted, dropped, split or renamed).
struct Rewritten {
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<io::SafetensorsFile> files;
  std::vector<const io::SafetensorsFile*> shards() const {
    std::vector<const io::SafetensorsFile*> v;
    for (const auto& f : files) v.push_back(&f);
    return v;
  }
};

struct ExtraTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// dtype: "F32", "F16" or "BF16". drop: tensor left out. n_shards: tensors dealt round-robin.
// extra_lm_head: also write lm_head.weight (a copy of the embedding). extras: more F32 tensors.
Rewritten rewrite(const std::string& dtype, const std::string& drop, int n_shards,
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
  Rewritten r;
  r.bytes.resize(per_shard.size());
  r.files.resize(per_shard.size());
  for (size_t s = 0; s < per_shard.size(); ++s) {
    REQUIRE(io::write_safetensors(per_shard[s], {}, &r.bytes[s]).ok());
    Status st = io::parse_safetensors(r.bytes[s].data(), r.bytes[s].size(), &r.files[s]);
    REQUIRE_MESSAGE(st.ok(), st.message);
  }
  return r;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  return d;
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
      read_text(std::string(WQ_SHARED_DIR) + "/hub/HuggingFaceTB/SmolLM2-135M-Instruct/config.json"),
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

TEST_CASE("llama: stories260K greedy decoding reproduces the README oracle") {
  auto m = load_stories();
  std::vector<int32_t> gen = greedy(*m, kPrompt, 57);
  REQUIRE(gen.size() == 57);
  CHECK(m->position() == 4 + 56);
  std::vector<int32_t> all = kPrompt;
  all.insert(all.end(), gen.begin(), gen.end());
  CHECK(decode(kPrompt) == "Zoo");
  CHECK(decode(all) == kOracle);

  // generate() with temperature 0 gives the same ids.
  m->reset();
  std::vector<int32_t> out;
  Status st = m->generate(kPrompt.data(), kPrompt.size(), 57, SamplingOptions{}, &out);
  REQUIRE_MESSAGE(st.ok(), st.message);
  CHECK(out == gen);
}

TEST_CASE("llama: batched prefill matches token-by-token decoding, reset() reproduces") {
  const std::vector<int32_t>& seq = oracle_sequence(40);
  auto m = load_stories();
  std::vector<float> batch;
  REQUIRE(m->forward(seq.data(), seq.size(), true, &batch).ok());
  REQUIRE(batch.size() == seq.size() * 512);
  CHECK(m->position() == 40);

  m->reset();
  CHECK(m->position() == 0);
  std::vector<float> step, rows;
  for (int32_t t : seq) {
    REQUIRE(m->forward(&t, 1, false, &step).ok());
    REQUIRE(step.size() == 512);
    rows.insert(rows.end(), step.begin(), step.end());
  }
  CHECK(max_abs_diff(batch, rows) < 1e-4);

  // A prefill in two chunks continues positions; last-row logits equal the batch's last row.
  m->reset();
  std::vector<float> a, b;
  REQUIRE(m->forward(seq.data(), 25, false, &a).ok());
  REQUIRE(m->forward(seq.data() + 25, 15, false, &b).ok());
  std::vector<float> last(batch.end() - 512, batch.end());
  CHECK(max_abs_diff(b, last) < 1e-4);

  // reset() + the same calls give bit-identical logits.
  m->reset();
  std::vector<float> again;
  REQUIRE(m->forward(seq.data(), seq.size(), true, &again).ok());
  CHECK(again == batch);
}

TEST_CASE("llama: forward rejects bad tokens and context overflow without touching the cache") {
  LoadOptions opts;
  opts.max_context = 8;
  auto m = load_stories(opts);
  CHECK(m->max_context() == 8);
  std::vector<float> logits, ref;
  REQUIRE(m->forward(kPrompt.data(), kPrompt.size(), false, &ref).ok());

  const int32_t bad[2] = {5, 512};
  Status st = m->forward(bad, 2, false, &logits);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("token 1 has id 512") != std::string::npos);
  const int32_t neg = -1;
  CHECK(m->forward(&neg, 1, false, &logits).code == StatusCode::kInvalidArgument);
  CHECK(m->forward(kPrompt.data(), 0, false, &logits).code == StatusCode::kInvalidArgument);

  const int32_t five[5] = {5, 6, 7, 8, 9};
  st = m->forward(five, 5, false, &logits);  // 4 + 5 > 8
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("context overflow") != std::string::npos);
  CHECK(m->position() == 4);

  // The cache is intact: continuing gives the same result as a fresh run.
  REQUIRE(m->forward(five, 4, false, &logits).ok());
  CHECK(m->position() == 8);
  auto fresh = load_stories();
  std::vector<int32_t> seq = kPrompt;
  seq.insert(seq.end(), five, five + 4);
  std::vector<float> expect;
  REQUIRE(fresh->forward(seq.data(), seq.size(), false, &expect).ok());
  CHECK(max_abs_diff(logits, expect) < 1e-4);
  CHECK(m->forward(five, 1, false, &logits).code == StatusCode::kInvalidArgument);  // full

  std::unique_ptr<CausalLM> too_big;
  LoadOptions big;
  big.max_context = 513;
  CHECK(CausalLM::load(stories().config_text, {&stories().file}, &too_big, big).code ==
        StatusCode::kInvalidArgument);
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

  Rewritten r = rewrite("F32", "model.layers.3.self_attn.v_proj.weight", 1, false);
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

  Rewritten sharded = rewrite("F32", "", 3, false);
  std::unique_ptr<CausalLM> m;
  REQUIRE(CausalLM::load(stories().config_text, sharded.shards(), &m).ok());
  CHECK(all_logits(*m, seq) == ref);

  LlamaConfig untied; std::string untied_text;
  REQUIRE(parse_llama_config(untied_text = replace_once(stories().config_text, "\"tie_word_embeddings\": true", "\"tie_word_embeddings\": false"), &untied).ok());
  Rewritten with_head = rewrite("F32", "", 2, true);
  REQUIRE(CausalLM::load(untied_text, with_head.shards(), &m).ok());
  CHECK(max_abs_diff(all_logits(*m, seq), ref) < 1e-4);
  CHECK(m->memory_footprint().lm_head == 512 * 64 * 4);

  for (const char* dtype : {"F16", "BF16"}) {
    Rewritten half = rewrite(dtype, "", 1, false);
    REQUIRE(CausalLM::load(stories().config_text, half.shards(), &m).ok());
    Agreement a = compare_logits(ref, all_logits(*m, seq), 512);
    MESSAGE(std::string(dtype) << " weights: mean KL " << a.mean_kl << ", top-1 " << a.top1);
    CHECK(a.mean_kl < (std::string(dtype) == "F16" ? 1e-4 : 5e-3));
    CHECK(a.top1 >= 0.9);
  }
}

TEST_CASE("llama: xoshiro128** stream matches the reference algorithm") {
  // Values from a direct Python transcription of SplitMix64 seeding + xoshiro128**.
  Xoshiro128 r0(0), r42(42);
  CHECK(r0.next() == 0xdec9045du);
  CHECK(r0.next() == 0x9a089d75u);
  CHECK(r0.next() == 0xab77d362u);
  CHECK(r0.next() == 0xc3e16405u);
  CHECK(r42.next() == 0x69e85a2au);
  CHECK(r42.next() == 0xf843fad0u);
  Xoshiro128 u(7);
  for (int i = 0; i < 1000; ++i) {
    const float x = u.uniform();
    CHECK((x >= 0.0f && x < 1.0f));
  }
}

TEST_CASE("llama: sampling semantics and statistics") {
  const float logits[5] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
  CHECK(argmax(logits, 5) == 1);  // lowest index among the tied maxima

  int32_t tok = -1;
  Sampler greedy_s;
  REQUIRE(greedy_s.sample(logits, 5, nullptr, 0, &tok).ok());
  CHECK(tok == 1);

  // Repetition penalty (HF): positive logits divided, negative multiplied, once per distinct id.
  SamplingOptions rp;
  rp.repetition_penalty = 2.0f;
  Sampler pen(rp);
  const int32_t hist[3] = {1, 1, 3};
  REQUIRE(pen.sample(logits, 5, hist, 3, &tok).ok());
  CHECK(tok == 2);  // 3/2 = 1.5 < 2
  const float negs[3] = {-1.0f, -1.5f, -3.0f};
  const int32_t h0[1] = {0};
  REQUIRE(pen.sample(negs, 3, h0, 1, &tok).ok());
  CHECK(tok == 1);  // -1 * 2 = -2 < -1.5

  // Empirical frequencies follow softmax(logits / T).
  auto freqs = [&](SamplingOptions o, int n) {
    Sampler s(o);
    std::vector<double> f(5, 0.0);
    for (int i = 0; i < n; ++i) {
      int32_t t = -1;
      REQUIRE(s.sample(logits, 5, nullptr, 0, &t).ok());
      f[static_cast<size_t>(t)] += 1.0;
    }
    for (double& x : f) x /= n;
    return f;
  };
  auto softmax = [&](float T) {
    std::vector<double> p(5);
    double z = 0;
    for (int i = 0; i < 5; ++i) z += p[i] = std::exp(logits[i] / T);
    for (double& x : p) x /= z;
    return p;
  };
  const int n = 20000;
  for (float T : {1.0f, 0.5f, 2.0f}) {
    SamplingOptions o;
    o.temperature = T;
    o.seed = 1234;
    auto f = freqs(o, n);
    auto p = softmax(T);
    for (int i = 0; i < 5; ++i) {
      // 4.5 binomial standard deviations
      CHECK_MESSAGE(std::fabs(f[i] - p[i]) < 4.5 * std::sqrt(p[i] * (1 - p[i]) / n) + 1e-9,
                    "T=" << T << " token " << i << ": " << f[i] << " vs " << p[i]);
    }
  }
  SamplingOptions cold, hot;
  cold.temperature = 0.3f;
  hot.temperature = 3.0f;
  auto fc = freqs(cold, 5000), fh = freqs(hot, 5000);
  CHECK(fc[1] + fc[3] > fh[1] + fh[3]);  // lower temperature concentrates on the maxima
  CHECK(fh[4] > fc[4]);

  // Probabilities at T=1: {0.054, 0.397, 0.146, 0.397, 0.007}. top-k = 2 keeps the two tied
  // maxima; top-p = 0.35 keeps index 1 alone (the lower index of the tie), 0.5 keeps 1 and 3.
  SamplingOptions k2;
  k2.temperature = 1.0f;
  k2.top_k = 2;
  auto f2 = freqs(k2, 4000);
  CHECK(f2[0] + f2[2] + f2[4] == 0.0);
  CHECK(f2[1] > 0.4);
  CHECK(f2[3] > 0.4);
  SamplingOptions k1;  // HF: tokens tied with the k-th logit survive top-k
  k1.temperature = 1.0f;
  k1.top_k = 1;
  auto f1 = freqs(k1, 4000);
  CHECK(f1[0] + f1[2] + f1[4] == 0.0);
  CHECK(f1[1] > 0.4);
  CHECK(f1[3] > 0.4);
  SamplingOptions p5;
  p5.temperature = 1.0f;
  p5.top_p = 0.35f;
  auto f5 = freqs(p5, 1000);
  CHECK(f5[1] == 1.0);
  p5.top_p = 0.5f;
  f5 = freqs(p5, 4000);
  CHECK(f5[0] + f5[2] + f5[4] == 0.0);
  CHECK(f5[3] > 0.4);

  // Validation.
  SamplingOptions badt;
  badt.temperature = -1.0f;
  CHECK(Sampler::validate(badt).code == StatusCode::kInvalidArgument);
  SamplingOptions badp;
  badp.top_p = 0.0f;
  CHECK(Sampler::validate(badp).code == StatusCode::kInvalidArgument);
  SamplingOptions badr;
  badr.repetition_penalty = 0.0f;
  Sampler sb(badr);
  CHECK(sb.sample(logits, 5, nullptr, 0, &tok).code == StatusCode::kInvalidArgument);
  const float nan_logits[2] = {0.0f, NAN};
  CHECK(greedy_s.sample(nan_logits, 2, nullptr, 0, &tok).code == StatusCode::kNonFinite);
}

TEST_CASE("llama: seeded sampling on stories260K is deterministic; top-k 1 is greedy") {
  auto m = load_stories();
  SamplingOptions o;
  o.temperature = 1.0f;
  o.seed = 2024;
  std::vector<int32_t> a, b, c;
  REQUIRE(m->generate(kPrompt.data(), kPrompt.size(), 60, o, &a).ok());
  m->reset();
  REQUIRE(m->generate(kPrompt.data(), kPrompt.size(), 60, o, &b).ok());
  CHECK(a == b);
  MESSAGE("seed 2024, T=1: " << decode(a));
  o.seed = 2025;
  m->reset();
  REQUIRE(m->generate(kPrompt.data(), kPrompt.size(), 60, o, &c).ok());
  CHECK(a != c);

  SamplingOptions k1;
  k1.temperature = 1.5f;
  k1.top_k = 1;
  k1.seed = 99;
  std::vector<int32_t> topk1;
  m->reset();
  REQUIRE(m->generate(kPrompt.data(), kPrompt.size(), 57, k1, &topk1).ok());
  m->reset();
  CHECK(topk1 == greedy(*m, kPrompt, 57));
}

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
  Rewritten r = rewrite("F32", "", 1, false, extras);
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
  Rewritten r2 = rewrite("F32", "", 1, false, extras);
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
  Rewritten r3 = rewrite("F32", "", 1, false, zeros);
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
