// Ragged groups on the real karpathy/stories260K, whose down_proj has in_features 172 (5 x 32 + 12):
// asked for, down_proj keeps groups of 32 (the last of each row 12 wide) for RTN, HQQ, codebooks and
// GPTQ; saved models keep the ragged layers and reload bit for bit; the old per-row fallback is
// still the default and still loads; GGUF's block types refuse a ragged layer with a typed error.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "io/json.h"
#include "stories_checkpoint.h"
#include "webquant/calibration.h"
#include "webquant/llama_gguf.h"
#include "webquant/model_checkpoint.h"

using namespace webquant;
using namespace webquant::testing;

namespace {

LinearQuantSpec ragged_spec(LinearScheme s, bool asym, int group, QuantMethod m = QuantMethod::kRtn,
                            Codebook cb = Codebook::kNone) {
  LinearQuantSpec q = spec(s, asym, group);
  q.method = m;
  q.codebook = cb;
  q.ragged = true;
  return q;
}

const char* kDown = "model.layers.2.mlp.down_proj";

}  // namespace

TEST_CASE("ragged stories260K: down_proj keeps groups of 32 and round-trips through a checkpoint") {
  struct Case {
    const char* label;
    LinearQuantSpec spec;
  };
  for (const Case& c : {Case{"int4 g32 sym", ragged_spec(LinearScheme::kW4A16, false, 32)},
                        Case{"int3 g32 hqq", ragged_spec(LinearScheme::kW3A16, true, 32, QuantMethod::kHqq)},
                        Case{"int3 g32 asym", ragged_spec(LinearScheme::kW3A16, true, 32)},
                        Case{"int2 g16 hqq", ragged_spec(LinearScheme::kW2A16, true, 16, QuantMethod::kHqq)},
                        Case{"w8a8 g32 asym", ragged_spec(LinearScheme::kW8A8, true, 32)},
                        Case{"w4a8 g64 sym", ragged_spec(LinearScheme::kW4A8, false, 64)},
                        Case{"nf4 g32", ragged_spec(LinearScheme::kLut4A16, false, 32, QuantMethod::kRtn, Codebook::kNf4)}}) {
    ModelQuantOptions q;
    q.default_spec = c.spec;
    q.method = c.spec.method;
    check_round_trip(q, c.label);  // logits, integers, describe() and bytes, saved twice identically
    auto m = load_stories();
    std::vector<LayerQuantReport> report;
    REQUIRE(m->quantize(q, &report).ok());
    const std::string g = std::to_string(c.spec.group_size);
    for (const LayerQuantReport& r : report) {
      if (r.name.find("down_proj") == std::string::npos) continue;
      CAPTURE(r.name);
      CHECK(r.fallback.empty());
      CHECK(r.group_size == c.spec.group_size);
      CHECK(r.scheme.find("g" + g + " ragged (172 = ") != std::string::npos);
    }
    // The saved entry: per-group, group_size not dividing in_features, no fallback.
    const Saved s = save(*m);
    const io::JsonValue root = json(s.config);
    const io::JsonValue* e = root.get("quantization_config")->get("layers")->get(kDown);
    REQUIRE(e != nullptr);
    CHECK(e->get("granularity")->string == "per-group");
    CHECK(e->get("group_size")->number == c.spec.group_size);
    CHECK(e->get("in_features")->number == 172);
    CHECK(e->get("fallback") == nullptr);
    const int ng = (172 + c.spec.group_size - 1) / c.spec.group_size;
    const io::TensorView* sc = s.tensor(std::string(kDown) + ".scales");
    REQUIRE(sc != nullptr);
    CHECK(sc->shape == std::vector<int64_t>{64, ng});
  }
}

TEST_CASE("ragged stories260K: the default still falls back per row, and ragged beats it") {
  ModelQuantOptions row, rag;
  row.default_spec = spec(LinearScheme::kW3A16, true, 32);
  rag.default_spec = ragged_spec(LinearScheme::kW3A16, true, 32);
  auto a = load_stories(), b = load_stories(), f = load_stories();
  REQUIRE(a->quantize(row, nullptr).ok());
  REQUIRE(b->quantize(rag, nullptr).ok());
  CHECK(a->linear(kDown)->describe() == "w3a16 per-channel (172 % 32 != 0) asym");
  CHECK(b->linear(kDown)->describe() == "w3a16 g32 ragged (172 = 5 x 32 + 12) asym");
  // Every other layer is the same (64 inputs: two whole groups), so only down_proj differs.
  for (const std::string& name : a->linear_names()) {
    const LinearLayer* la = a->linear(name);  // null for the tied head
    if (name.find("down_proj") != std::string::npos || la == nullptr || la->scheme() == LinearScheme::kF32) continue;
    LinearQuantizedData da, db;
    REQUIRE(a->linear(name)->export_quantized(&da).ok());
    REQUIRE(b->linear(name)->export_quantized(&db).ok());
    CHECK(da.q == db.q);
  }
  // down_proj's weights are closer to the float ones in every block (model-level quality on
  // natural text: scripts/quality-3bit.mjs, docs/quality.md).
  for (int l = 0; l < 5; ++l) {
    const std::string name = "model.layers." + std::to_string(l) + ".mlp.down_proj";
    std::vector<float> w(64 * 172), wa(w.size()), wb(w.size());
    f->linear(name)->dequantize_weight(w.data());
    a->linear(name)->dequantize_weight(wa.data());
    b->linear(name)->dequantize_weight(wb.data());
    double ea = 0, eb = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      ea += double(wa[i] - w[i]) * (wa[i] - w[i]);
      eb += double(wb[i] - w[i]) * (wb[i] - w[i]);
    }
    MESSAGE(name << ": squared weight error per-row " << ea << ", ragged " << eb);
    CHECK(eb < 0.65 * ea);  // measured 0.54..0.58
  }
}

TEST_CASE("ragged stories260K: GPTQ (and on the HQQ grid) keeps the ragged down_proj") {
  for (GptqGrid grid : {GptqGrid::kRtn, GptqGrid::kHqq}) {
    CAPTURE(static_cast<int>(grid));
    auto m = load_stories();
    ModelQuantOptions o;
    o.default_spec = ragged_spec(LinearScheme::kW3A16, true, 32);
    o.method = QuantMethod::kGptq;
    CalibrationOptions cal;
    cal.tokens = sequence();
    cal.sequence_length = 20;
    cal.gptq.grid = grid;
    cal.gptq.act_order = grid == GptqGrid::kRtn;
    std::vector<LayerQuantReport> report;
    Status st = quantize_calibrated(m.get(), o, cal, &report);
    REQUIRE_MESSAGE(st.ok(), st.message);
    CHECK(m->linear(kDown)->describe().find("g32 ragged (172 = 5 x 32 + 12)") != std::string::npos);
    for (const LayerQuantReport& r : report) CHECK(r.fallback.empty());
    const std::vector<float> ref = all_logits(*m);
    auto back = load_saved(save(*m));
    CHECK(bit_equal(all_logits(*back), ref));
  }
}

TEST_CASE("ragged stories260K: GGUF block types refuse a ragged layer; float types hold it") {
  auto m = load_stories();
  ModelQuantOptions o;
  o.default_spec = ragged_spec(LinearScheme::kW4A16, false, 32);
  REQUIRE(m->quantize(o, nullptr).ok());
  for (uint32_t type : {2u, 3u, 8u}) {  // Q4_0, Q4_1, Q8_0
    CAPTURE(type);
    GgufExportOptions opt;
    opt.type = type;
    std::vector<uint8_t> bytes;
    Status st = export_llama_gguf_model(*m, "", opt, &bytes);
    CHECK(st.code == StatusCode::kUnsupported);
    CHECK(st.message.find("'model.layers.0.mlp.down_proj.weight' is quantized in ragged groups (w4a16 g32 ragged") !=
          std::string::npos);
  }
  for (uint32_t type : {0u, 1u}) {  // F32, F16: the dequantized weights
    CAPTURE(type);
    GgufExportOptions opt;
    opt.type = type;
    std::vector<uint8_t> bytes;
    Status st = export_llama_gguf_model(*m, "", opt, &bytes);
    CHECK_MESSAGE(st.ok(), st.message);
  }
  // Without ragged groups the same export works (down_proj per row, written as F16).
  auto p = load_stories();
  o.default_spec.ragged = false;
  REQUIRE(p->quantize(o, nullptr).ok());
  GgufExportOptions opt;
  opt.type = 2;
  std::vector<uint8_t> bytes;
  CHECK(export_llama_gguf_model(*p, "", opt, &bytes).ok());
}
