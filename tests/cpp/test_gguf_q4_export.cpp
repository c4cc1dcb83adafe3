// GGUF export of 4-bit g32 layers from their codes: Q4_1 (d = fp16(scale), m = fp16(-scale *
// (zero + 8))) for asymmetric layers with an integer zero (RTN, GPTQ) or a float zero (HQQ, GPTQ
// on the HQQ grid), Q4_0 for symmetric ones; ggml's Q4_1 reference quantizer for float weights.
// Round trips on the real karpathy/stories260K: export -> load_llama_gguf_model gives every weight
// back within the stated fp16 rounding, and logits close to the quantized model's.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "models/llama/llama_gguf_internal.h"
#include "stories_checkpoint.h"
#include "webquant/calibration.h"
#include "webquant/causal_lm.h"
#include "webquant/convert.h"
#include "webquant/llama_gguf.h"

using namespace webquant;
using webquant::testing::Stories;
using webquant::testing::stories;
using webquant::testing::walk;

namespace {

// The largest |a - b| over a layer's weights divided by the stated bound of each group:
// 2^-11 * (15 s + |m|) + 2^-23 (|a| + |b|) (float32 arithmetic of both sides) + 2 * 2^-24 (fp16
// subnormal spacing of d and m).
double worst_ratio(const LinearQuantizedData& d, const std::vector<float>& a, const std::vector<float>& b) {
  double worst = 0;
  const size_t C = size_t(d.in_features), ng = C / size_t(d.group_size);
  for (size_t i = 0; i < a.size(); ++i) {
    const size_t k = (i / C) * ng + (i % C) / size_t(d.group_size);
    const float s = d.scales[k];
    const float z = d.method == QuantMethod::kHqq ? d.zero_points_f[k] : float(d.zero_points[k]);
    const double m = std::fabs(double(s) * (double(z) + 8.0));
    const double bound = std::ldexp(15.0 * s + m, -11) + std::ldexp(std::fabs(a[i]) + std::fabs(b[i]), -23) + std::ldexp(2.0, -24);
    worst = std::max(worst, std::fabs(double(a[i]) - b[i]) / bound);
  }
  return worst;
}

}  // namespace

TEST_CASE("gguf: Q4_1 blocks follow ggml's reference quantizer") {
  float x[32];
  for (int i = 0; i < 32; ++i) x[i] = float(i - 16) / 4.0f;  // -4 .. 3.75
  io::BlockQ4_1 b;
  REQUIRE(io::quantize_row_q4_1(x, 32, &b).ok());
  const float d = 7.75f / 15.0f;
  CHECK(b.d == fp32_to_fp16(d));
  CHECK(b.m == fp32_to_fp16(-4.0f));
  CHECK((b.qs[0] & 0x0F) == 0);   // the min
  CHECK((b.qs[15] >> 4) == 15);   // the max
  CHECK((b.qs[0] >> 4) == 8);     // x[16] = 0: 4 / d + 0.5 = 8.24
  float back[32];
  REQUIRE(io::ggml_decode(3, reinterpret_cast<const uint8_t*>(&b), sizeof b, 32, back).ok());
  for (int i = 0; i < 32; ++i) CHECK(std::fabs(back[i] - x[i]) <= d / 2 + 0.01f);  // + fp16's rounding of d, m
  float flat[32];
  for (float& v : flat) v = 1.5f;
  REQUIRE(io::quantize_row_q4_1(flat, 32, &b).ok());  // d = 0: every code 0, x = m
  REQUIRE(io::ggml_decode(3, reinterpret_cast<const uint8_t*>(&b), sizeof b, 32, back).ok());
  for (float v : back) CHECK(v == 1.5f);
  CHECK(io::quantize_row_q4_1(x, 31, &b).code == StatusCode::kInvalidArgument);
  x[7] = NAN;
  CHECK(io::quantize_row_q4_1(x, 32, &b).code == StatusCode::kNonFinite);
}

TEST_CASE("gguf export: 4-bit g32 layers go to Q4_1 / Q4_0 from their codes and load back within fp16 rounding") {
  const Stories& s = stories();
  struct Case {
    const char* name;
    uint32_t type;
    LinearQuantSpec spec;
    bool gptq_hqq;
  };
  for (const Case& c : {Case{"hqq", 3, {LinearScheme::kW4A16, true, 32, QuantMethod::kHqq}, false},
                        Case{"rtn asym", 3, {LinearScheme::kW4A16, true, 32}, false},
                        Case{"gptq on the hqq grid", 3, {LinearScheme::kW4A16, true, 32}, true},
                        Case{"rtn sym as q4_1", 3, {LinearScheme::kW4A16, false, 32}, false},
                        Case{"rtn sym", 2, {LinearScheme::kW4A16, false, 32}, false},
                        Case{"gptq sym", 2, {LinearScheme::kW4A16, false, 32}, true}}) {
    const std::string label = c.name;
    CAPTURE(label);
    std::unique_ptr<CausalLM> model;
    REQUIRE(CausalLM::load(s.config_text, {&s.file}, &model).ok());
    ModelQuantOptions o;
    o.default_spec = c.spec;
    o.method = c.spec.method;
    o.exclude = {};  // the tied head too: the embedding table takes its spec (one table)
    if (c.gptq_hqq) {
      // GPTQ first (the head stays float: its calibration is the model's own), then the table.
      o.method = QuantMethod::kGptq;
      o.exclude = {"lm_head"};
      CalibrationOptions cal;
      cal.tokens = walk(64, 9);
      cal.sequence_length = 32;
      cal.gptq.grid = c.spec.asymmetric ? GptqGrid::kHqq : GptqGrid::kRtn;
      REQUIRE(quantize_calibrated(model.get(), o, cal, nullptr).ok());
      ModelQuantOptions e;  // only the tied head, whose table takes its spec
      e.default_spec = c.spec.asymmetric ? LinearQuantSpec{LinearScheme::kW4A16, true, 32, QuantMethod::kHqq} : c.spec;
      e.method = e.default_spec.method;
      e.exclude = {"model.*"};
      REQUIRE(model->quantize(e, nullptr).ok());
    } else {
      REQUIRE(model->quantize(o, nullptr).ok());
    }
    GgufExportOptions opt;
    opt.type = c.type;
    std::vector<uint8_t> bytes;
    Status st = export_llama_gguf_model(*model, s.tokenizer_text, opt, &bytes);
    REQUIRE_MESSAGE(st.ok(), st.message);
    io::GgufFile g;
    REQUIRE(io::parse_gguf(bytes.data(), bytes.size(), &g).ok());
    CHECK(g.find("token_embd.weight")->type == c.type);
    CHECK(g.find("blk.1.attn_q.weight")->type == c.type);
    CHECK(g.find("blk.1.ffn_down.weight")->type == 1);  // 172 wide: per channel, written as F16
    CHECK(g.get("general.file_type")->as_number() == (c.type == 3 ? 3 : 2));
    // v_proj is not permuted: its blocks are the layer's codes and fp16 parameters.
    LinearQuantizedData d;
    REQUIRE(model->linear("model.layers.2.self_attn.v_proj")->export_quantized(&d).ok());
    const io::GgufTensorInfo* t = g.find("blk.2.attn_v.weight");
    for (size_t b = 0; b < d.scales.size(); ++b) {
      const uint8_t* qs = c.type == 3 ? reinterpret_cast<const io::BlockQ4_1*>(t->data)[b].qs
                                      : reinterpret_cast<const io::BlockQ4_0*>(t->data)[b].qs;
      for (int j = 0; j < 16; ++j) {
        REQUIRE((qs[j] & 15) == d.q[b * 32 + j] + 8);
        REQUIRE((qs[j] >> 4) == d.q[b * 32 + j + 16] + 8);
      }
    }

    std::unique_ptr<CausalLM> back;
    REQUIRE(load_llama_gguf_model(g, &back).ok());
    for (const std::string& name : model->linear_names()) {
      if (name == "lm_head") continue;
      CAPTURE(name);
      const LinearLayer* a = model->linear(name);
      const LinearLayer* b = back->linear(name);
      std::vector<float> wa(size_t(a->out_features) * a->in_features), wb(wa.size());
      a->dequantize_weight(wa.data());
      b->dequantize_weight(wb.data());
      if (a->in_features == 172) {  // F16 of the dequantized weights
        for (size_t i = 0; i < wa.size(); ++i) REQUIRE(wb[i] == fp16_to_fp32(fp32_to_fp16(wa[i])));
        continue;
      }
      REQUIRE(a->export_quantized(&d).ok());
      CHECK(worst_ratio(d, wa, wb) <= 1.0);
    }
    // The quantized model and the file's model: the same logits up to that rounding.
    const auto ids = walk(64, 3);
    std::vector<float> la, lb;
    REQUIRE(model->forward(ids.data(), ids.size(), true, &la).ok());
    REQUIRE(back->forward(ids.data(), ids.size(), true, &lb).ok());
    double worst = 0, amax = 0;
    for (size_t i = 0; i < la.size(); ++i) {
      worst = std::max(worst, double(std::fabs(la[i] - lb[i])));
      amax = std::max(amax, double(std::fabs(la[i])));
    }
    MESSAGE(label << ": max |logit difference| " << worst << " (max |logit| " << amax << ")");
    // Q4_0: measured 0.009 (gptq sym). Q4_1: the file's token_embd (Q4_1, a float minimum) loads as
    // an int8 g32 table re-quantized from it (llama_gguf_model.cpp; table error <= 3.8e-3), which
    // adds to the linear layers' fp16 rounding: measured 0.105 (rtn asym) .. 0.156 (rtn sym as Q4_1).
    CHECK(worst < (c.type == 3 ? 0.2 : 5e-2));
  }
}

TEST_CASE("gguf export: Q4_1 of a float checkpoint uses ggml's rule; unknown types are typed errors") {
  const Stories& s = stories();
  GgufExportOptions opt;
  opt.type = 3;
  std::vector<uint8_t> bytes;
  REQUIRE(export_llama_gguf(s.config_text, s.tokenizer_text, {&s.file}, opt, &bytes).ok());
  io::GgufFile g;
  REQUIRE(io::parse_gguf(bytes.data(), bytes.size(), &g).ok());
  const io::GgufTensorInfo* t = g.find("blk.0.ffn_up.weight");
  REQUIRE(t->type == 3);
  const io::TensorView* f = s.file.find("model.layers.0.mlp.up_proj.weight");
  std::vector<float> w(f->numel());
  REQUIRE(io::tensor_to_f32(*f, w.data()).ok());
  std::vector<io::BlockQ4_1> blocks(w.size() / 32);
  REQUIRE(io::quantize_row_q4_1(w.data(), w.size(), blocks.data()).ok());
  CHECK(std::memcmp(t->data, blocks.data(), t->nbytes) == 0);
  opt.type = 6;  // Q5_0: readable, not writable
  CHECK(export_llama_gguf(s.config_text, s.tokenizer_text, {&s.file}, opt, &bytes).code == StatusCode::kInvalidArgument);
}
