// webquant's quantized checkpoints (model_checkpoint.h): save -> parse -> load gives the in-memory
// quantized model's logits bit for bit, for every scheme; the stored integers follow the documented
// layout; bad checkpoints fail with the documented codes. Streaming is in test_streaming.cpp.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "io/json.h"
#include "stories_checkpoint.h"
#include "webquant/model_checkpoint.h"
#include "webquant/pack.h"
#include "webquant/safetensors.h"

using namespace webquant;
using namespace webquant::testing;

namespace {

Status load_edited(const std::string& config, const Editable& e) {
  const std::vector<uint8_t> b = e.bytes();
  io::SafetensorsFile f;
  Status p = io::parse_safetensors(b.data(), b.size(), &f);
  REQUIRE_MESSAGE(p.ok(), p.message);
  std::unique_ptr<CausalLM> m;
  Status st = load_checkpoint(config, {&f}, &m);
  CHECK((m != nullptr) == st.ok());
  return st;
}

// `config` with its quantization_config edited by `edit`.
std::string edit_config(const std::string& config, const std::function<void(io::JsonValue*)>& edit) {
  io::JsonValue root = json(config);
  for (auto& kv : root.object) {
    if (kv.first == "quantization_config") edit(&kv.second);
  }
  return io::write_json(root);
}

io::JsonValue* member(io::JsonValue* o, const std::string& key) {
  for (auto& kv : o->object) {
    if (kv.first == key) return &kv.second;
  }
  FAIL("no member " << key);
  return nullptr;
}

std::string qconfig_text(const std::string& config) {
  io::JsonValue root = json(config);
  const io::JsonValue* q = root.get("quantization_config");
  REQUIRE(q != nullptr);
  return io::write_json(*q);
}

}  // namespace

TEST_CASE("checkpoint: every scheme round-trips with bit-identical logits") {
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW8A16, false, 0);
  check_round_trip(q, "int8 per channel (w8a16)");
  q.default_spec = spec(LinearScheme::kW8A16, false, 32);
  check_round_trip(q, "int8 g32 sym (172 fallback)");
  q.default_spec = spec(LinearScheme::kW8A16, true, 64);
  check_round_trip(q, "int8 g64 asym");
  q.default_spec = spec(LinearScheme::kW8A16, true, 0);
  check_round_trip(q, "int8 per channel asym");
  q.default_spec = spec(LinearScheme::kW8A8, true, 32);
  check_round_trip(q, "w8a8 g32 asym");
  q.default_spec = spec(LinearScheme::kW4A16, false, 32);
  check_round_trip(q, "int4 g32 sym (172 fallback)");
  q.default_spec = spec(LinearScheme::kW4A16, true, 32);
  check_round_trip(q, "int4 g32 asym");
  q.default_spec = spec(LinearScheme::kW4A16, true, 0);
  check_round_trip(q, "int4 per channel asym");
  q.default_spec = spec(LinearScheme::kW2A16, false, 32);
  check_round_trip(q, "int2 g32 sym");
  q.default_spec = spec(LinearScheme::kW2A16, true, 16);
  check_round_trip(q, "int2 g16 asym");
  q.default_spec = spec(LinearScheme::kW8A8, false, 0);
  check_round_trip(q, "w8a8");
  q.default_spec = spec(LinearScheme::kW4A8, true, 32);
  check_round_trip(q, "w4a8 g32 asym");

  ModelQuantOptions mixed;
  mixed.default_spec = spec(LinearScheme::kW4A16, false, 32);
  mixed.exclude = {"model.layers.0.*"};
  mixed.overrides = {{"*.mlp.down_proj", spec(LinearScheme::kW8A16)},
                     {"model.layers.4.mlp.*", spec(LinearScheme::kF32)},
                     {"*.self_attn.v_proj", spec(LinearScheme::kW2A16, true, 64)},
                     {"lm_head", spec(LinearScheme::kW4A8, false, 32)}};
  check_round_trip(mixed, "mixed overrides, excluded layer 0, tied lm_head quantized (w4a8)");

  ModelQuantOptions none;
  none.default_spec = spec(LinearScheme::kF32);
  check_round_trip(none, "all f32 (tied lm_head stays tied)");
}

TEST_CASE("checkpoint: config.json carries quantization_config, the same JSON as the metadata") {
  auto m = load_stories();
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, true, 32);
  q.overrides = {{"model.layers.1.self_attn.q_proj", spec(LinearScheme::kW8A8)}};
  REQUIRE(m->quantize(q, nullptr).ok());
  const Saved s = save(*m);
  REQUIRE(s.files.size() == 2);
  CHECK(s.files[1].name == "model.safetensors");

  const io::JsonValue root = json(s.config);
  // The source config is kept.
  CHECK(root.get("model_type")->string == "llama");
  CHECK(root.get("hidden_size")->number == 64);
  CHECK(root.get("tie_word_embeddings")->boolean);
  const io::JsonValue* qc = root.get("quantization_config");
  REQUIRE(qc != nullptr);
  CHECK(qc->get("quant_method")->string == "webquant");
  CHECK(qc->get("version")->number == 1);
  CHECK(qc->get("packing")->string == "lsb-first");
  const io::JsonValue* def = qc->get("default");
  CHECK(def->get("scheme")->string == "w4a16");
  CHECK(def->get("mode")->string == "asymmetric");
  CHECK(def->get("granularity")->string == "per-group");
  CHECK(def->get("group_size")->number == 32);
  const io::JsonValue* layers = qc->get("layers");
  REQUIRE(layers->object.size() == 5 * 7 + 1);
  CHECK(layers->object.front().first == "model.layers.0.self_attn.q_proj");
  CHECK(layers->object.back().first == "lm_head");

  const io::JsonValue* k = layers->get("model.layers.0.self_attn.k_proj");
  CHECK(k->get("scheme")->string == "w4a16");
  CHECK(k->get("bits")->number == 4);
  CHECK(k->get("mode")->string == "asymmetric");
  CHECK(k->get("granularity")->string == "per-group");
  CHECK(k->get("group_size")->number == 32);
  CHECK(k->get("activations")->string == "float");
  CHECK(k->get("packing")->string == "lsb-first");
  CHECK(k->get("out_features")->number == 32);
  CHECK(k->get("in_features")->number == 64);
  CHECK(k->get("bias")->boolean == false);
  CHECK(k->get("fallback") == nullptr);

  const io::JsonValue* down = layers->get("model.layers.2.mlp.down_proj");
  CHECK(down->get("granularity")->string == "per-channel");
  CHECK(down->get("group_size")->number == 172);
  CHECK(down->get("fallback")->string == "172 % 32 != 0");

  const io::JsonValue* a8 = layers->get("model.layers.1.self_attn.q_proj");
  CHECK(a8->get("scheme")->string == "w8a8");
  CHECK(a8->get("bits")->number == 8);
  CHECK(a8->get("activations")->string == "int8");
  CHECK(a8->get("packing")->string == "none");
  CHECK(a8->get("mode")->string == "symmetric");

  const io::JsonValue* head = layers->get("lm_head");
  CHECK(head->get("scheme")->string == "f32");
  CHECK(head->get("tied")->boolean);

  // The safetensors metadata holds the same JSON, and llama_quantization_config agrees.
  REQUIRE(s.parsed.size() == 1);
  CHECK(s.parsed[0].metadata.at("format") == "webquant");
  CHECK(s.parsed[0].metadata.at("quantization_config") == io::write_json(*qc));
  CHECK(model_quantization_config((*m).weights()) == io::write_json(*qc));

  bool has = false;
  REQUIRE(has_quantization_config(s.config, &has).ok());
  CHECK(has);
  REQUIRE(has_quantization_config(stories().config_text, &has).ok());
  CHECK_FALSE(has);

  std::vector<CheckpointLayer> parsed;
  ModelLayout layout;
  REQUIRE(CausalLM::layout(stories().config_text, &layout).ok());
  REQUIRE(parse_quantization_config(s.config, layout, &parsed).ok());
  REQUIRE(parsed.size() == 36);
  CHECK(parsed[6].name == "model.layers.0.mlp.down_proj");
  CHECK(parsed[6].group_size == 172);
  CHECK(parsed[6].fallback == "172 % 32 != 0");
  CHECK(parsed[7].scheme == LinearScheme::kW8A8);
  CHECK(parsed.back().tied);
}

TEST_CASE("checkpoint: stored tensors follow the documented layout") {
  auto m = load_stories();
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, true, 32);
  q.overrides = {{"*.v_proj", spec(LinearScheme::kW2A16, false, 32)},
                 {"*.o_proj", spec(LinearScheme::kW8A16, false, 0)},
                 {"model.layers.0.self_attn.k_proj", spec(LinearScheme::kW8A16, true, 32)},
                 {"*.up_proj", spec(LinearScheme::kF32)}};
  REQUIRE(m->quantize(q, nullptr).ok());
  const Saved s = save(*m);

  // Float tensors of an fp32 checkpoint stay F32; norms of ones fit BF16 exactly.
  const io::TensorView* embed = s.tensor("model.embed_tokens.weight");
  REQUIRE(embed != nullptr);
  CHECK(embed->dtype == "F32");
  CHECK(embed->shape == std::vector<int64_t>{512, 64});
  CHECK(std::memcmp(embed->data, stories().file.find("model.embed_tokens.weight")->data, embed->nbytes) == 0);
  CHECK(s.tensor("lm_head.weight") == nullptr);
  CHECK(s.tensor("lm_head.qweight") == nullptr);

  const std::string k = "model.layers.3.self_attn.k_proj";
  LinearQuantizedData d;
  REQUIRE(m->linear(k)->export_quantized(&d).ok());
  const io::TensorView* qw = s.tensor(k + ".qweight");
  REQUIRE(qw != nullptr);
  CHECK(qw->dtype == "U8");
  CHECK(qw->shape == std::vector<int64_t>{32, 32});  // 64 codes of 4 bits per row
  // u = q + 8; value 2j in the low nibble of byte j, 2j+1 in the high nibble.
  for (int r = 0; r < 32; ++r) {
    for (int c = 0; c < 64; ++c) {
      const uint8_t byte = qw->data[r * 32 + c / 2];
      const int u = c % 2 == 0 ? byte & 0xF : byte >> 4;
      REQUIRE(u == d.q[r * 64 + c] + 8);
    }
  }
  const io::TensorView* zp = s.tensor(k + ".zero_points");
  REQUIRE(zp != nullptr);
  CHECK(zp->dtype == "U8");
  CHECK(zp->shape == std::vector<int64_t>{32, 2});
  for (size_t i = 0; i < d.zero_points.size(); ++i) CHECK(int(zp->data[i]) == d.zero_points[i] + 8);
  const io::TensorView* sc = s.tensor(k + ".scales");
  CHECK(sc->dtype == "F32");
  CHECK(sc->shape == std::vector<int64_t>{32, 2});
  CHECK(std::memcmp(sc->data, d.scales.data(), sc->nbytes) == 0);

  // Dequantizing from the stored tensors alone, as the header's formula says, gives the layer's W.
  std::vector<float> w(32 * 64);
  m->linear(k)->dequantize_weight(w.data());
  const float* scales = reinterpret_cast<const float*>(sc->data);
  for (int r = 0; r < 32; ++r) {
    for (int c = 0; c < 64; ++c) {
      const uint8_t byte = qw->data[r * 32 + c / 2];
      const int u = c % 2 == 0 ? byte & 0xF : byte >> 4;
      const float x = scales[r * 2 + c / 32] * static_cast<float>(u - zp->data[r * 2 + c / 32]);
      REQUIRE(x == w[r * 64 + c]);
    }
  }

  // 2-bit symmetric: 4 values per byte at bit offsets 0, 2, 4, 6; no zero points.
  const std::string v = "model.layers.0.self_attn.v_proj";
  REQUIRE(m->linear(v)->export_quantized(&d).ok());
  qw = s.tensor(v + ".qweight");
  CHECK(qw->shape == std::vector<int64_t>{32, 16});
  for (int c = 0; c < 64; ++c) CHECK(((qw->data[c / 4] >> (2 * (c % 4))) & 3) == d.q[c] + 2);
  CHECK(s.tensor(v + ".zero_points") == nullptr);

  // 172-wide rows (down_proj) pack to 86 bytes of 4-bit codes.
  qw = s.tensor("model.layers.0.mlp.down_proj.qweight");
  CHECK(qw->shape == std::vector<int64_t>{64, 86});
  CHECK(s.tensor("model.layers.0.mlp.down_proj.scales")->shape == std::vector<int64_t>{64, 1});

  // int8: signed codes, I8, scales [out, 1].
  const std::string o = "model.layers.0.self_attn.o_proj";
  REQUIRE(m->linear(o)->export_quantized(&d).ok());
  qw = s.tensor(o + ".qweight");
  CHECK(qw->dtype == "I8");
  CHECK(qw->shape == std::vector<int64_t>{64, 64});
  CHECK(std::memcmp(qw->data, d.q.data(), qw->nbytes) == 0);
  CHECK(s.tensor(o + ".scales")->shape == std::vector<int64_t>{64, 1});
  CHECK(s.tensor(o + ".zero_points") == nullptr);

  // int8 asymmetric in groups: scales [out, g] and signed zero points I8 [out, g], W = s (q - z).
  const std::string kp = "model.layers.0.self_attn.k_proj";
  REQUIRE(m->linear(kp)->export_quantized(&d).ok());
  CHECK(d.bits == 8);
  CHECK(d.asymmetric);
  CHECK(s.tensor(kp + ".qweight")->dtype == "I8");
  CHECK(s.tensor(kp + ".scales")->shape == std::vector<int64_t>{32, 2});
  const io::TensorView* zk = s.tensor(kp + ".zero_points");
  REQUIRE(zk != nullptr);
  CHECK(zk->dtype == "I8");
  CHECK(zk->shape == std::vector<int64_t>{32, 2});
  std::vector<float> wk(32 * 64);
  m->linear(kp)->dequantize_weight(wk.data());
  const float* sk = reinterpret_cast<const float*>(s.tensor(kp + ".scales")->data);
  const int8_t* qk = reinterpret_cast<const int8_t*>(s.tensor(kp + ".qweight")->data);
  const int8_t* zz = reinterpret_cast<const int8_t*>(zk->data);
  bool negative_z = false;
  for (int r = 0; r < 32; ++r)
    for (int c = 0; c < 64; ++c) {
      const int p = r * 2 + c / 32;
      negative_z = negative_z || zz[p] < 0;
      REQUIRE(wk[r * 64 + c] == sk[p] * static_cast<float>(qk[r * 64 + c] - zz[p]));
    }
  CHECK(negative_z);  // the signed storage is exercised

  // f32 override: a plain weight.
  CHECK(s.tensor("model.layers.0.mlp.up_proj.weight")->dtype == "F32");
  CHECK(s.tensor("model.layers.0.mlp.up_proj.qweight") == nullptr);
}

TEST_CASE("checkpoint: bf16 weights stay bf16, biases and an untied f32 lm_head round-trip") {
  // A bf16 copy of stories260K with an untied lm_head and q/k/v/o biases.
  const io::SafetensorsFile& src = stories().file;
  std::vector<std::vector<uint8_t>> storage;
  std::vector<io::TensorRecord> records;
  storage.reserve(src.tensors.size() + 32);
  auto add = [&](const std::string& name, const std::vector<int64_t>& shape, const std::vector<float>& f) {
    std::vector<uint16_t> h(f.size());
    convert_f32_to_bf16(f.data(), h.data(), f.size());
    storage.emplace_back(reinterpret_cast<const uint8_t*>(h.data()),
                         reinterpret_cast<const uint8_t*>(h.data()) + h.size() * 2);
    records.push_back({name, "BF16", shape, storage.back().data(), storage.back().size()});
  };
  for (const io::TensorView& t : src.tensors) {
    std::vector<float> f(static_cast<size_t>(t.numel()));
    REQUIRE(io::tensor_to_f32(t, f.data()).ok());
    add(t.name, t.shape, f);
    if (t.name == "model.embed_tokens.weight") {
      for (float& x : f) x *= 0.5f;
      add("lm_head.weight", t.shape, f);
    }
  }
  for (int l = 0; l < 5; ++l) {
    const int dims[4] = {64, 32, 32, 64};
    const char* names[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    for (int j = 0; j < 4; ++j) {
      std::vector<float> b(static_cast<size_t>(dims[j]));
      for (size_t i = 0; i < b.size(); ++i) b[i] = 0.01f * static_cast<float>((i * 7 + l + j) % 11) - 0.05f;
      add("model.layers." + std::to_string(l) + ".self_attn." + names[j] + ".bias", {dims[j]}, b);
    }
  }
  std::vector<uint8_t> bytes;
  REQUIRE(io::write_safetensors(records, {}, &bytes).ok());
  io::SafetensorsFile file;
  REQUIRE(io::parse_safetensors(bytes.data(), bytes.size(), &file).ok());
  std::string config = stories().config_text;
  config.replace(config.find("\"tie_word_embeddings\": true"), 27, "\"tie_word_embeddings\": false");
  config.replace(config.find("\"attention_bias\": false"), 23, "\"attention_bias\": true");
  std::unique_ptr<CausalLM> m;
  REQUIRE(load_checkpoint(config, {&file}, &m).ok());  // no quantization_config: float path

  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, false, 32);  // lm_head excluded by default
  REQUIRE(m->quantize(q, nullptr).ok());
  const std::vector<float> ref = all_logits(*m);
  const Saved s = save(*m, {}, config);
  CHECK(s.tensor("model.embed_tokens.weight")->dtype == "BF16");
  CHECK(s.tensor("lm_head.weight")->dtype == "BF16");
  CHECK(s.tensor("model.layers.0.input_layernorm.weight")->dtype == "BF16");
  CHECK(s.tensor("model.layers.2.self_attn.k_proj.bias")->dtype == "F32");
  CHECK(s.tensor("model.layers.2.mlp.up_proj.bias") == nullptr);
  const io::JsonValue root = json(s.config);
  const io::JsonValue* lm = root.get("quantization_config")->get("layers")->get("lm_head");
  CHECK(lm->get("scheme")->string == "f32");
  CHECK(lm->get("tied") == nullptr);
  CHECK(root.get("quantization_config")->get("layers")->get("model.layers.0.self_attn.q_proj")->get("bias")->boolean);
  auto back = load_saved(s);
  CHECK(bit_equal(all_logits(*back), ref));
  CHECK(back->linear("model.layers.1.self_attn.v_proj")->bias() == m->linear("model.layers.1.self_attn.v_proj")->bias());
}

TEST_CASE("checkpoint: sharded save writes an index and loads back identically") {
  auto m = load_stories();
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, false, 32);
  q.exclude = {};
  REQUIRE(m->quantize(q, nullptr).ok());
  const std::vector<float> ref = all_logits(*m);
  CheckpointSaveOptions o;
  o.max_shard_bytes = 40000;
  const Saved s = save(*m, o);
  REQUIRE(s.parsed.size() >= 3);
  CHECK(s.files[1].name == "model-00001-of-0000" + std::to_string(s.parsed.size()) + ".safetensors");
  const CheckpointFile* index = s.file("model.safetensors.index.json");
  REQUIRE(index != nullptr);
  CHECK(&s.files.back() == index);
  const io::JsonValue ix = json(std::string(index->bytes.begin(), index->bytes.end()));
  const io::JsonValue* map = ix.get("weight_map");
  REQUIRE(map != nullptr);
  size_t n_tensors = 0, data_bytes = 0;
  for (size_t i = 0; i < s.parsed.size(); ++i) {
    for (const io::TensorView& t : s.parsed[i].tensors) {
      ++n_tensors;
      data_bytes += t.nbytes;
      REQUIRE(map->get(t.name) != nullptr);
      CHECK(map->get(t.name)->string == s.files[1 + i].name);
    }
    CHECK(s.parsed[i].metadata.at("quantization_config") == qconfig_text(s.config));
  }
  CHECK(map->object.size() == n_tensors);
  CHECK(ix.get("metadata")->get("total_size")->number == data_bytes);
  // A layer's tensors share a shard.
  CHECK(map->get("model.layers.3.mlp.gate_proj.qweight")->string ==
        map->get("model.layers.3.mlp.gate_proj.scales")->string);
  auto back = load_saved(s);
  CHECK(bit_equal(all_logits(*back), ref));
  // The tied head reads the embedding table, stored and loaded as int4 rows.
  CHECK(back->linear("lm_head") == nullptr);
  REQUIRE(back->weights().quantized_param("model.embed_tokens.weight") != nullptr);
  CHECK(back->weights().quantized_param("model.embed_tokens.weight")->scheme() == LinearScheme::kW4A16);
  CHECK(map->get("model.embed_tokens.qweight") != nullptr);
}

TEST_CASE("checkpoint: bad checkpoints fail with the documented codes and names") {
  auto m = load_stories();
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, true, 32);
  q.overrides = {{"model.layers.0.self_attn.o_proj", spec(LinearScheme::kW8A16)}};
  REQUIRE(m->quantize(q, nullptr).ok());
  const Saved s = save(*m);
  const Editable good(s.parsed[0]);
  REQUIRE(load_edited(s.config, good).ok());
  const std::string q0 = "model.layers.0.self_attn.q_proj";

  SUBCASE("missing tensor") {
    Editable e = good;
    e.drop(q0 + ".scales");
    Status st = load_edited(s.config, e);
    CHECK(st.code == StatusCode::kNotFound);
    CHECK(st.message == "tensor '" + q0 + ".scales' not found in the checkpoint");
    e = good;
    e.drop("model.layers.4.post_attention_layernorm.weight");
    st = load_edited(s.config, e);
    CHECK(st.code == StatusCode::kNotFound);
    CHECK(st.message.find("'model.layers.4.post_attention_layernorm.weight'") != std::string::npos);
    e = good;
    e.drop(q0 + ".zero_points");
    CHECK(load_edited(s.config, e).code == StatusCode::kNotFound);
  }
  SUBCASE("wrong shapes") {
    Editable e = good;
    e.at(q0 + ".qweight").shape = {32, 64};
    Status st = load_edited(s.config, e);
    CHECK(st.code == StatusCode::kShapeMismatch);
    CHECK(st.message == "tensor '" + q0 + ".qweight' has shape [32, 64], expected [64, 32]");
    e = good;
    e.at(q0 + ".scales").shape = {128};
    CHECK(load_edited(s.config, e).code == StatusCode::kShapeMismatch);
    // quantization_config's shape vs config.json's.
    const std::string c = edit_config(s.config, [&](io::JsonValue* qc) {
      member(member(member(qc, "layers"), q0), "in_features")->number = 65;
    });
    e = good;
    e.metadata.erase("quantization_config");
    st = load_edited(c, e);
    CHECK(st.code == StatusCode::kShapeMismatch);
    CHECK(st.message.find(q0) != std::string::npos);
    CHECK(st.message.find("[64, 65] but config.json implies [64, 64]") != std::string::npos);
  }
  SUBCASE("wrong dtypes") {
    Editable e = good;
    e.at(q0 + ".qweight").dtype = "I8";
    Status st = load_edited(s.config, e);
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message == "tensor '" + q0 + ".qweight' has dtype I8, expected U8");
  }
  SUBCASE("metadata that disagrees with config.json, or is not JSON") {
    Editable e = good;
    std::string meta = e.metadata.at("quantization_config");
    meta.replace(meta.find("\"asymmetric\""), 12, "\"symmetric\"");
    e.metadata["quantization_config"] = meta;
    Status st = load_edited(s.config, e);
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message.find("differs from the quantization_config of config.json") != std::string::npos);
    e.metadata["quantization_config"] = "{not json";
    CHECK(load_edited(s.config, e).code == StatusCode::kCorruptData);
    // Without the config.json copy the metadata alone is enough.
    io::JsonValue root = json(s.config);
    root.object.erase(std::remove_if(root.object.begin(), root.object.end(),
                                     [](const auto& kv) { return kv.first == "quantization_config"; }),
                      root.object.end());
    CHECK(load_edited(io::write_json(root), good).ok());
  }
  SUBCASE("unknown scheme, method, version, packing") {
    Editable e = good;
    e.metadata.erase("quantization_config");
    auto with = [&](const std::function<void(io::JsonValue*)>& f) { return load_edited(edit_config(s.config, f), e); };
    Status st = with([&](io::JsonValue* qc) { member(member(member(qc, "layers"), q0), "scheme")->string = "w5a16"; });
    CHECK(st.code == StatusCode::kUnsupported);
    CHECK(st.message.find("scheme 'w5a16' is not supported") != std::string::npos);
    CHECK(st.message.find(q0) != std::string::npos);
    st = with([&](io::JsonValue* qc) { member(qc, "quant_method")->string = "gptq"; });
    CHECK(st.code == StatusCode::kUnsupported);
    CHECK(st.message.find("'gptq'") != std::string::npos);
    st = with([&](io::JsonValue* qc) { member(qc, "version")->number = 2; });
    CHECK(st.code == StatusCode::kUnsupported);
    st = with([&](io::JsonValue* qc) { member(member(member(qc, "layers"), q0), "packing")->string = "msb-first"; });
    CHECK(st.code == StatusCode::kUnsupported);
    st = with([&](io::JsonValue* qc) { member(member(member(qc, "layers"), q0), "bits")->number = 2; });
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message.find("bits 2 does not match scheme w4a16") != std::string::npos);
    st = with([&](io::JsonValue* qc) { member(member(member(qc, "layers"), q0), "group_size")->number = 65; });
    CHECK(st.code == StatusCode::kCorruptData);  // above in_features 64
    CHECK(st.message.find("group_size 65 exceeds in_features 64") != std::string::npos);
    // 24 does not divide 64: a ragged layer (3 groups per row), which the 2-group tensors do not fit.
    st = with([&](io::JsonValue* qc) { member(member(member(qc, "layers"), q0), "group_size")->number = 24; });
    CHECK(!st.ok());
    st = with([&](io::JsonValue* qc) { member(member(qc, "layers"), q0)->object.front().first = "schema"; });
    CHECK(st.code == StatusCode::kCorruptData);
    st = with([&](io::JsonValue* qc) { member(qc, "layers")->object.front().first = "model.layers.9.mlp.up_proj"; });
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message.find("'model.layers.9.mlp.up_proj', which is not a linear layer") != std::string::npos);
  }
  SUBCASE("bad integers and scales") {
    Editable e = good;
    std::memset(e.at(q0 + ".scales").bytes.data(), 0xFF, 4);  // first scale: a NaN
    Status st = load_edited(s.config, e);
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message.find(q0 + ": scale") != std::string::npos);
    e = good;
    e.at(q0 + ".zero_points").bytes[3] = 16;  // 4-bit zero codes are < 16
    st = load_edited(s.config, e);
    CHECK(st.code == StatusCode::kCorruptData);
    CHECK(st.message.find("zero point") != std::string::npos);
  }
  SUBCASE("a float checkpoint's errors are CausalLM::load's") {
    std::unique_ptr<CausalLM> f;
    Status st = load_checkpoint("{\"model_type\": \"bert\"}", {&stories().file}, &f);
    CHECK(st.code == StatusCode::kUnsupported);
    st = load_checkpoint("[1]", {&stories().file}, &f);
    CHECK(st.code == StatusCode::kCorruptData);
  }
}

TEST_CASE("checkpoint: padding bits after a row's last code must be zero") {
  // stories260K's rows are all whole bytes (64 and 172 codes); a tiny model with
  // intermediate_size 7 gives 4-bit down_proj rows of 7 codes = 3.5 bytes.
  const char* config =
      "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 7, \"num_hidden_layers\": 1,"
      " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 16, \"max_position_embeddings\": 8,"
      " \"tie_word_embeddings\": true}";
  LlamaConfig cfg; std::string cfg_text;
  REQUIRE(parse_llama_config(cfg_text = config, &cfg).ok());
  // Random float checkpoint for that config.
  std::vector<std::vector<float>> data;
  std::vector<io::TensorRecord> recs;
  data.reserve(16);
  uint32_t x = 7;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones) {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    std::vector<float> v(n);
    for (float& f : v) {
      x = x * 1103515245u + 12345u;
      f = ones ? 1.0f : (static_cast<float>((x >> 9) % 2001) - 1000.0f) / 5000.0f;
    }
    data.push_back(std::move(v));
    recs.push_back({name, "F32", shape, reinterpret_cast<const uint8_t*>(data.back().data()), data.back().size() * 4});
  };
  add("model.embed_tokens.weight", {16, 8}, false);
  add("model.norm.weight", {8}, true);
  add("model.layers.0.input_layernorm.weight", {8}, true);
  add("model.layers.0.post_attention_layernorm.weight", {8}, true);
  add("model.layers.0.self_attn.q_proj.weight", {8, 8}, false);
  add("model.layers.0.self_attn.k_proj.weight", {4, 8}, false);
  add("model.layers.0.self_attn.v_proj.weight", {4, 8}, false);
  add("model.layers.0.self_attn.o_proj.weight", {8, 8}, false);
  add("model.layers.0.mlp.gate_proj.weight", {7, 8}, false);
  add("model.layers.0.mlp.up_proj.weight", {7, 8}, false);
  add("model.layers.0.mlp.down_proj.weight", {8, 7}, false);
  std::vector<uint8_t> bytes;
  REQUIRE(io::write_safetensors(recs, {}, &bytes).ok());
  io::SafetensorsFile f;
  REQUIRE(io::parse_safetensors(bytes.data(), bytes.size(), &f).ok());
  std::unique_ptr<CausalLM> m;
  REQUIRE(CausalLM::load(cfg_text, {&f}, &m).ok());
  ModelQuantOptions q;
  q.default_spec = spec(LinearScheme::kW4A16, true, 0);
  REQUIRE(m->quantize(q, nullptr).ok());
  const std::vector<int32_t> toks = {1, 5, 9, 15, 2};
  std::vector<float> ref, got;
  REQUIRE(m->forward(toks.data(), toks.size(), true, &ref).ok());
  const Saved s = save(*m, {}, config);
  const std::string down = "model.layers.0.mlp.down_proj.qweight";
  CHECK(s.tensor(down)->shape == std::vector<int64_t>{8, 4});  // 7 codes -> 4 bytes, 4 bits padding
  auto back = load_saved(s);
  REQUIRE(back->forward(toks.data(), toks.size(), true, &got).ok());
  CHECK(bit_equal(got, ref));
  Editable e(s.parsed[0]);
  e.at(down).bytes[3 * 4 + 3] |= 0x10;  // row 3, last byte, a padding bit
  Status st = load_edited(s.config, e);
  CHECK(st.code == StatusCode::kCorruptData);
  CHECK(st.message == "tensor '" + down + "' row 3 has non-zero padding bits after its 7 codes");
}
