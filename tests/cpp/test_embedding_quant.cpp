// Quantized embedding tables (module.h: ModelQuantOptions::embeddings, Weights::gather_rows):
// per-row dequantization of every layer kind, and a model whose tied table is held as int4 / int8
// rows against a float reference model built from the table dequantized in this file from the
// exported codes with the course formula W = s * (q - z) (in double), sharing no dequantization
// code with the engine. Also: report lines, footprint, save / load and streaming.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "io/json.h"
#include "test_util.h"
#include "webquant/causal_lm.h"
#include "webquant/convert.h"
#include "webquant/gguf.h"
#include "webquant/llama_gguf.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"

using namespace webquant;
using webquant::testing::read_file;

namespace {

struct Gpt2 {
  std::string config, bytes;
  io::SafetensorsFile file;
  std::vector<int32_t> ids;
};

// The synthetic GPT-2 fixture of test_architectures (tied wte, learned wpe).
const Gpt2& gpt2() {
  static Gpt2* g = [] {
    auto* f = new Gpt2();
    const std::string dir = std::string(WQ_FIXTURE_DIR) + "/arch/gpt2/";
    f->config = read_file(dir + "config.json");
    f->bytes = read_file(dir + "model.safetensors");
    REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(f->bytes.data()), f->bytes.size(), &f->file).ok());
    io::JsonValue ref;
    REQUIRE(io::parse_json(read_file(dir + "reference.json"), &ref).ok());
    for (const io::JsonValue& v : ref.get("ids")->array) f->ids.push_back(static_cast<int32_t>(v.number));
    return f;
  }();
  return *g;
}

std::unique_ptr<CausalLM> load_gpt2() {
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(gpt2().config, {&gpt2().file}, &m);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

std::vector<float> logits_of(CausalLM& m) {
  m.reset();
  std::vector<float> out;
  REQUIRE(m.forward(gpt2().ids.data(), gpt2().ids.size(), true, &out).ok());
  return out;
}

// The table as the course defines it: W[r, c] = s[r, g] * (q[r, c] - z[r, g]), g = c / G.
std::vector<float> course_dequantize(const LinearQuantizedData& d) {
  std::vector<float> w(size_t(d.out_features) * d.in_features);
  const int groups = d.in_features / d.group_size;
  for (int r = 0; r < d.out_features; ++r) {
    for (int c = 0; c < d.in_features; ++c) {
      const size_t g = size_t(r) * groups + c / d.group_size;
      w[size_t(r) * d.in_features + c] =
          static_cast<float>(double(d.scales[g]) * (double(d.q[size_t(r) * d.in_features + c]) - d.zero_points[g]));
    }
  }
  return w;
}

// A float model from the fixture with the float tables `replace` (name -> values) swapped in.
std::unique_ptr<CausalLM> float_model_with(const std::vector<std::pair<std::string, std::vector<float>>>& replace) {
  ModelLayout layout;
  REQUIRE(CausalLM::layout(gpt2().config, &layout).ok());
  SafetensorsSource src({&gpt2().file});
  src.set_optional_prefix(layout.optional_prefix);
  PartsSource parts;
  for (const ParamInfo& p : layout.params) {
    std::vector<float> v;
    REQUIRE(src.tensor(p, &v).ok());
    for (const auto& r : replace) {
      if (r.first == p.name) v = r.second;
    }
    parts.add_tensor(p.name, std::move(v));
  }
  for (const LinearInfo& li : layout.linears) {
    std::unique_ptr<LinearLayer> l;
    REQUIRE(src.linear(li, &l).ok());
    parts.add_linear(li.name, std::move(l));
  }
  std::unique_ptr<CausalLM> m;
  REQUIRE(CausalLM::load(gpt2().config, parts, &m).ok());
  return m;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  return d;
}

}  // namespace

TEST_CASE("embedding tables: dequantize_rows equals the rows of dequantize_weight, every layer kind") {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const struct {
    LinearQuantSpec spec;
    int in;
  } cases[] = {
      {{LinearScheme::kF32, false, 0}, 40},     {{LinearScheme::kW8A16, false, 0}, 40},
      {{LinearScheme::kW8A16, false, 32}, 64},  {{LinearScheme::kW8A16, true, 16}, 48},
      {{LinearScheme::kW4A16, false, 32}, 64},  {{LinearScheme::kW4A16, true, 32}, 43},
      {{LinearScheme::kW2A16, true, 16}, 32},   {{LinearScheme::kW4A8, false, 32}, 96},
      {{LinearScheme::kW8A8, true, 32}, 64},
  };
  for (const auto& c : cases) {
    for (int rows : {1, 5, 13}) {
      CAPTURE(static_cast<int>(c.spec.scheme));
      CAPTURE(c.spec.group_size);
      CAPTURE(rows);
      std::vector<float> w(size_t(rows) * c.in);
      for (float& v : w) v = nd(rng);
      std::unique_ptr<LinearLayer> l;
      REQUIRE(make_linear_quantized(w.data(), rows, c.in, nullptr, c.spec, &l, nullptr).ok());
      std::vector<float> all(w.size()), part;
      l->dequantize_weight(all.data());
      for (int first = 0; first < rows; ++first) {
        for (int n = 1; first + n <= rows; n += 3) {
          part.assign(size_t(n) * c.in, -1.0f);
          l->dequantize_rows(size_t(first), size_t(n), part.data());
          for (size_t i = 0; i < part.size(); ++i) REQUIRE(part[i] == all[size_t(first) * c.in + i]);
        }
      }
    }
  }
}

TEST_CASE("embedding tables: a tied head not excluded quantizes the shared table (int4 g32)") {
  auto m = load_gpt2();
  const std::vector<float> fp32 = logits_of(*m);
  const MemoryFootprint before = m->memory_footprint();
  ModelQuantOptions q;
  q.default_spec = {LinearScheme::kW4A16, false, 32};
  q.exclude.clear();
  std::vector<LayerQuantReport> report;
  REQUIRE(m->quantize(q, &report).ok());
  const size_t nlin = m->weights().num_linears();
  REQUIRE(report.size() == nlin + 1);  // the linears, then the one table decided (wte; wpe untouched)
  const LayerQuantReport& head = report[nlin - 1];
  CHECK(head.name == "lm_head");
  CHECK(head.tied);
  CHECK(head.quantized);
  CHECK(head.bits == 4);
  CHECK(head.bytes_after == 0);
  CHECK(head.note.find("quantized rows") != std::string::npos);
  const LayerQuantReport& wte = report.back();
  CHECK(wte.embedding);
  CHECK(wte.name == "transformer.wte");
  CHECK(wte.quantized);
  CHECK(wte.scheme == "w4a16 per-channel sym");  // a group of 32 is the whole 32-wide row
  CHECK(wte.bytes_before == 96 * 32 * 4);
  CHECK(wte.bytes_after < wte.bytes_before / 4);
  CHECK(wte.note.find("shared with the tied lm_head") != std::string::npos);

  const LinearLayer* table = m->weights().quantized_param("transformer.wte.weight");
  REQUIRE(table != nullptr);
  CHECK(m->weights().quantized_param("transformer.wpe.weight") == nullptr);
  const MemoryFootprint after = m->memory_footprint();
  CHECK(after.embedding == table->weight_bytes() + 64 * 32 * 4);
  CHECK(after.lm_head == 0);
  CHECK(after.total == after.embedding + after.linear + after.norms + after.other);
  CHECK(after.total < before.total);

  // Reference: the float model with wte replaced by the course dequantization of the exported
  // codes, and every linear layer replaced by its own dequantized weights.
  LinearQuantizedData d;
  REQUIRE(table->export_quantized(&d).ok());
  auto ref = float_model_with({{"transformer.wte.weight", course_dequantize(d)}});
  for (const std::string& name : m->linear_names()) {
    const LinearLayer* l = m->linear(name);
    if (l == nullptr) continue;  // the tied head reads its table
    LinearQuantizedData ld;
    REQUIRE(l->export_quantized(&ld).ok());
    const std::vector<float> w = course_dequantize(ld);
    REQUIRE(ref->replace_linear(name, make_linear_f32(w.data(), l->out_features, l->in_features,
                                                       ld.bias.empty() ? nullptr : ld.bias.data()))
                .ok());
  }
  const std::vector<float> got = logits_of(*m), want = logits_of(*ref);
  const double diff = max_abs_diff(got, want), drift = max_abs_diff(got, fp32);
  MESSAGE("gpt2 int4 g32, tied table quantized: max |logit - float reference| " << diff
                                                                                 << ", vs fp32 " << drift);
  CHECK(diff < 2e-5);
  CHECK(drift > 1e-3);  // the table really is int4

  // The gather itself is exact: row r of the model's table is the reference's row r.
  std::vector<float> row(32);
  const int32_t id = 17;
  m->weights().gather_rows(0, &id, 1, false, row.data());
  const std::vector<float> dq = course_dequantize(d);
  for (int c = 0; c < 32; ++c) REQUIRE(row[size_t(c)] == dq[size_t(17) * 32 + c]);
}

TEST_CASE("embedding tables: options.embeddings quantizes token and position tables; save/load keeps them") {
  auto m = load_gpt2();
  ModelQuantOptions q;
  q.default_spec = {LinearScheme::kW8A16, false, 0};
  q.embeddings = LinearQuantSpec{LinearScheme::kW8A16, false, 32};  // the Q8_0 layout
  std::vector<LayerQuantReport> report;
  REQUIRE(m->quantize(q, &report).ok());
  const size_t nlin = m->weights().num_linears();
  REQUIRE(report.size() == nlin + 2);
  CHECK(report[nlin - 1].note == "excluded");                // lm_head: excluded ...
  CHECK(report[nlin - 1].scheme == "w8a16 per-channel sym (tied to transformer.wte)");  // reads the rows
  CHECK(report[nlin].name == "transformer.wte");
  CHECK(report[nlin + 1].name == "transformer.wpe");
  CHECK(report[nlin + 1].scheme == "w8a16 per-channel sym");
  REQUIRE(m->weights().quantized_param("transformer.wpe.weight") != nullptr);
  const std::vector<float> logits = logits_of(*m);

  std::vector<CheckpointFile> files;
  REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
  REQUIRE(files.size() == 2);
  io::JsonValue cfg;
  REQUIRE(io::parse_json(std::string(files[0].bytes.begin(), files[0].bytes.end()), &cfg).ok());
  const io::JsonValue* emb = cfg.get("quantization_config")->get("embeddings");
  REQUIRE(emb != nullptr);
  CHECK(emb->get("transformer.wte")->get("scheme")->string == "w8a16");
  CHECK(emb->get("transformer.wte")->get("group_size")->number == 32);
  CHECK(emb->get("transformer.wpe")->get("out_features")->number == 64);
  io::SafetensorsFile st;
  REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &st).ok());
  CHECK(st.find("transformer.wte.qweight") != nullptr);
  CHECK(st.find("transformer.wte.weight") == nullptr);
  const std::string config(files[0].bytes.begin(), files[0].bytes.end());
  std::unique_ptr<CausalLM> back;
  Status s = load_checkpoint(config, {&st}, &back);
  REQUIRE_MESSAGE(s.ok(), s.message);
  CHECK(back->memory_footprint().total == m->memory_footprint().total);
  const std::vector<float> again = logits_of(*back);
  REQUIRE(again.size() == logits.size());
  for (size_t i = 0; i < logits.size(); ++i) REQUIRE(again[i] == logits[i]);  // bit-identical

  // A table name that is not an embedding of the model is corrupt data, named.
  std::string bad = config;
  bad.replace(bad.find("\"transformer.wpe\""), 17, "\"transformer.h.0\"");
  io::SafetensorsFile no_meta = st;  // only config.json's copy, so that the bad one is parsed
  no_meta.metadata.erase("quantization_config");
  s = load_checkpoint(bad, {&no_meta}, &back);
  CHECK(s.code == StatusCode::kCorruptData);
  CHECK_MESSAGE(s.message.find("transformer.h.0") != std::string::npos, s.message);

  // embeddings = f32 turns the tables back into floats.
  q.embeddings = LinearQuantSpec{LinearScheme::kF32, false, 0};
  REQUIRE(m->quantize(q, &report).ok());
  CHECK(m->weights().quantized_param("transformer.wte.weight") == nullptr);
  CHECK(m->memory_footprint().embedding == (96 + 64) * 32 * 4);
}

TEST_CASE("embedding tables: streaming quantizes the table on arrival, as load + quantize") {
  ModelQuantOptions q;
  q.default_spec = {LinearScheme::kW4A8, false, 32};
  q.exclude.clear();
  q.embeddings = LinearQuantSpec{LinearScheme::kW8A16, true, 16};  // wpe (wte follows the head)
  auto m = load_gpt2();
  std::vector<LayerQuantReport> want_report;
  REQUIRE(m->quantize(q, &want_report).ok());
  StreamingBuilder b;
  REQUIRE(b.begin(gpt2().config, q).ok());
  REQUIRE(b.add_shard(gpt2().file).ok());
  std::unique_ptr<CausalLM> s;
  std::vector<LayerQuantReport> report;
  REQUIRE(b.finish(&s, &report).ok());
  REQUIRE(report.size() == want_report.size());
  for (size_t i = 0; i < report.size(); ++i) {
    CAPTURE(report[i].name);
    CHECK(report[i].name == want_report[i].name);
    CHECK(report[i].scheme == want_report[i].scheme);
    CHECK(report[i].bytes_after == want_report[i].bytes_after);
    CHECK(report[i].embedding == want_report[i].embedding);
    CHECK(report[i].tied == want_report[i].tied);
  }
  CHECK(s->memory_footprint().total == m->memory_footprint().total);
  const std::vector<float> a = logits_of(*m), c = logits_of(*s);
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == c[i]);
}

TEST_CASE("embedding tables: GGUF export writes an int8 / int4 g32 table as Q8_0 / Q4_0 token_embd from its codes") {
  const std::string dir = std::string(WQ_SHARED_DIR) + "/hub/karpathy/stories260K/";
  const std::string config = read_file(dir + "config.json"), tokenizer = read_file(dir + "tokenizer.json");
  const std::string bytes = read_file(dir + "model.safetensors");
  io::SafetensorsFile st;
  REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &st).ok());
  for (const int bits : {8, 4}) {
    CAPTURE(bits);
    std::unique_ptr<CausalLM> m;
    REQUIRE(CausalLM::load(config, {&st}, &m).ok());
    ModelQuantOptions q;
    q.default_spec = {bits == 8 ? LinearScheme::kW8A16 : LinearScheme::kW4A16, false, 32};
    q.exclude.clear();  // the tied head quantizes model.embed_tokens
    REQUIRE(m->quantize(q, nullptr).ok());
    LinearQuantizedData d;
    REQUIRE(m->weights().quantized_param("model.embed_tokens.weight")->export_quantized(&d).ok());
    GgufExportOptions opt;
    opt.type = bits == 8 ? 8 : 2;
    std::vector<uint8_t> out;
    Status s = export_llama_gguf_model(*m, tokenizer, opt, &out);
    REQUIRE_MESSAGE(s.ok(), s.message);
    io::GgufFile g;
    REQUIRE(io::parse_gguf(out.data(), out.size(), &g).ok());
    const io::GgufTensorInfo* t = g.find("token_embd.weight");
    REQUIRE(t != nullptr);
    CHECK(t->type == opt.type);
    CHECK(g.find("output.weight") == nullptr);  // tied
    for (size_t b = 0; b < d.scales.size(); ++b) {
      const int8_t* codes = &d.q[b * 32];
      if (bits == 8) {
        const auto* blk = reinterpret_cast<const io::BlockQ8_0*>(t->data) + b;
        REQUIRE(std::memcmp(blk->qs, codes, 32) == 0);
        REQUIRE(blk->d == fp32_to_fp16(d.scales[b]));
      } else {
        const auto* blk = reinterpret_cast<const io::BlockQ4_0*>(t->data) + b;
        for (int j = 0; j < 16; ++j) {
          REQUIRE(int(blk->qs[j] & 15) - 8 == codes[j]);
          REQUIRE(int(blk->qs[j] >> 4) - 8 == codes[j + 16]);
        }
        REQUIRE(blk->d == fp32_to_fp16(d.scales[b]));
      }
    }
  }
}
