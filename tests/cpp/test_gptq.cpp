// Calibrated quantization (calibration.h): GPTQ against an independent float64 reference written
// from the paper's update rule (inverse Hessian, no Cholesky, no lazy batches), GPTQ and AWQ
// output errors <= RTN's on the calibration activations, the input recorder, and the model-level
// pass on the real stories260K.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gptq_data.h"
#include "stories_checkpoint.h"
#include "webquant/calibration.h"
#include "webquant/causal_lm.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"

using namespace webquant;
using namespace webquant::testing;

namespace {

std::vector<double> mean_abs(const std::vector<float>& x, int n, int in) {
  std::vector<double> m(static_cast<size_t>(in), 0.0);
  for (int t = 0; t < n; ++t)
    for (int c = 0; c < in; ++c) m[static_cast<size_t>(c)] += std::fabs(static_cast<double>(x[static_cast<size_t>(t) * in + c])) / n;
  return m;
}

std::unique_ptr<LinearLayer> rtn(const std::vector<float>& w, int out, int in, const LinearQuantSpec& spec) {
  std::unique_ptr<LinearLayer> l;
  REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, spec, &l, nullptr).ok());
  return l;
}

// GPTQ from the paper (Frantar et al. 2022, eq. 3 and the OBS update), in float64: quantize column
// i, spread its error over the later columns through the inverse Hessian of the columns not yet
// quantized, remove column i from that inverse. Symmetric per-group scales max|w| / qmax taken at
// the start of each group from the updated weights.
void gptq_reference(std::vector<double> w, int out, int in, std::vector<double> h, int bits, int group,
                    double damp, std::vector<int>* codes, std::vector<double>* scales) {
  const size_t C = static_cast<size_t>(in);
  std::vector<double> inv = damped_inverse(std::move(h), C, damp);
  const int qmax = (1 << (bits - 1)) - 1, qmin = -(1 << (bits - 1));
  const size_t ng = C / static_cast<size_t>(group);
  codes->assign(static_cast<size_t>(out) * C, 0);
  scales->assign(static_cast<size_t>(out) * ng, 0.0);
  for (size_t i = 0; i < C; ++i) {
    for (size_t r = 0; r < static_cast<size_t>(out); ++r) {
      if (i % group == 0) {
        double amax = 0;
        for (size_t j = i; j < i + group; ++j) amax = std::max(amax, std::fabs(w[r * C + j]));
        (*scales)[r * ng + i / group] = static_cast<float>(amax / qmax);
      }
      const double s = (*scales)[r * ng + i / group];
      const int q = static_cast<int>(std::min<double>(qmax, std::max<double>(qmin, std::nearbyint(w[r * C + i] / s))));
      (*codes)[r * C + i] = q;
      const double e = (w[r * C + i] - s * q) / inv[i * C + i];
      for (size_t j = i + 1; j < C; ++j) w[r * C + j] -= e * inv[i * C + j];
    }
    downdate_inverse(&inv, C, i);
  }
}

}  // namespace

TEST_CASE("gptq: matches the float64 reference on a small layer") {
  const int out = 8, in = 64, n = 256;
  const auto x = make_x(n, in, 1);
  const auto w = make_w(out, in, 2);
  const auto h = hessian(x, n, in);
  for (int block : {128, 16, 1}) {
    CAPTURE(block);
    GptqOptions opt;
    opt.block_size = block;
    std::unique_ptr<LinearLayer> l;
    REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), {LinearScheme::kW4A16, false, 32}, opt, &l, nullptr).ok());
    LinearQuantizedData d;
    REQUIRE(l->export_quantized(&d).ok());
    std::vector<int> codes;
    std::vector<double> scales;
    gptq_reference(std::vector<double>(w.begin(), w.end()), out, in, h, 4, 32, 0.01, &codes, &scales);
    int same = 0;
    for (size_t i = 0; i < codes.size(); ++i) same += d.q[i] == codes[i];
    CHECK(same == static_cast<int>(codes.size()));
    for (size_t i = 0; i < scales.size(); ++i) CHECK(d.scales[i] == doctest::Approx(scales[i]).epsilon(1e-5));
  }
}

TEST_CASE("gptq: with a diagonal Hessian it is round-to-nearest, code for code") {
  const int out = 6, in = 96;
  const auto w = make_w(out, in, 3);
  std::vector<double> h(static_cast<size_t>(in) * in, 0.0);
  for (int i = 0; i < in; ++i) h[static_cast<size_t>(i) * in + i] = 1.0 + i % 7;
  for (LinearQuantSpec spec : {LinearQuantSpec{LinearScheme::kW4A16, false, 32}, LinearQuantSpec{LinearScheme::kW2A16, true, 32},
                               LinearQuantSpec{LinearScheme::kW8A16, false, 0}, LinearQuantSpec{LinearScheme::kW4A8, true, 64}}) {
    std::unique_ptr<LinearLayer> g;
    std::string note;
    REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), spec, {}, &g, &note).ok());
    LinearQuantizedData a, b;
    REQUIRE(g->export_quantized(&a).ok());
    REQUIRE(rtn(w, out, in, spec)->export_quantized(&b).ok());
    CHECK(a.q == b.q);
    CHECK(a.scales == b.scales);
    CHECK(a.zero_points == b.zero_points);
    CHECK(g->describe() == rtn(w, out, in, spec)->describe());
    if (spec.group_size == 64) CHECK(note.find("96 is not a multiple of group_size 64") != std::string::npos);
  }
}

TEST_CASE("gptq and awq: output error on the calibration activations <= RTN's") {
  const int out = 48, in = 128, n = 512;
  const auto x = make_x(n, in, 4);
  const auto w = make_w(out, in, 5);
  const auto h = hessian(x, n, in);
  const auto ma = mean_abs(x, n, in);
  struct Case {
    LinearQuantSpec spec;
    bool act_order;
  };
  for (const Case& c : {Case{{LinearScheme::kW4A16, false, 32}, false}, Case{{LinearScheme::kW4A16, true, 32}, true},
                        Case{{LinearScheme::kW2A16, true, 32}, false}, Case{{LinearScheme::kW8A16, false, 0}, false},
                        Case{{LinearScheme::kW4A16, false, 128}, true}, Case{{LinearScheme::kW8A8, false, 32}, false}}) {
    CAPTURE(static_cast<int>(c.spec.scheme));
    CAPTURE(c.spec.group_size);
    CAPTURE(c.act_order);
    const double e_rtn = layer_output_error(dequant(*rtn(w, out, in, c.spec)).data(), w.data(), out, in, h.data());
    GptqOptions opt;
    opt.act_order = c.act_order;
    std::unique_ptr<LinearLayer> g, a;
    REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), c.spec, opt, &g, nullptr).ok());
    const double e_gptq = layer_output_error(dequant(*g).data(), w.data(), out, in, h.data());
    double alpha = -1;
    REQUIRE(awq_quantize_linear(w.data(), out, in, nullptr, h.data(), ma.data(), c.spec, {}, &a, nullptr, &alpha).ok());
    const double e_awq = layer_output_error(dequant(*a).data(), w.data(), out, in, h.data());
    MESSAGE("rtn " << e_rtn << " gptq " << e_gptq << " awq " << e_awq << " (alpha " << alpha << ")");
    CHECK(e_gptq < 0.1 * e_rtn);  // measured 0.03..0.05
    CHECK(e_awq < 0.6 * e_rtn);  // measured 0.42..0.51 (alpha = 0, plain RTN, bounds it by 1)
    // The layer computes what its dequantized weights say (AWQ: through its input scales).
    std::vector<float> y(static_cast<size_t>(4) * out), yref(static_cast<size_t>(4) * out, 0.0f);
    a->forward(x.data(), 4, y.data());
    const auto da = dequant(*a);
    for (int t = 0; t < 4; ++t)
      for (int r = 0; r < out; ++r)
        for (int k = 0; k < in; ++k) yref[static_cast<size_t>(t) * out + r] += x[static_cast<size_t>(t) * in + k] * da[static_cast<size_t>(r) * in + k];
    if (c.spec.scheme != LinearScheme::kW8A8)  // A8 layers also round their inputs
      for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(yref[i]).epsilon(1e-4).scale(1e-3));
    // Its integer form (with the input scales) rebuilds the same layer.
    LinearQuantizedData d;
    REQUIRE(a->export_quantized(&d).ok());
    CHECK(d.input_scales.empty() == (alpha == 0.0));
    std::unique_ptr<LinearLayer> back;
    REQUIRE(make_linear_from_quantized(d, &back).ok());
    std::vector<float> y2(y.size());
    back->forward(x.data(), 4, y2.data());
    CHECK(y2 == y);
  }
}

TEST_CASE("gptq and awq: bad input is a typed error") {
  const int out = 4, in = 32;
  const auto w = make_w(out, in, 6);
  std::vector<double> h(static_cast<size_t>(in) * in, 0.0), ma(in, 1.0);
  for (int i = 0; i < in; ++i) h[static_cast<size_t>(i) * in + i] = 1.0;
  std::unique_ptr<LinearLayer> l;
  CHECK(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), {LinearScheme::kF32, false, 0}, {}, &l, nullptr).code == StatusCode::kInvalidArgument);
  GptqOptions bad;
  bad.block_size = 0;
  CHECK(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), {LinearScheme::kW4A16, false, 32}, bad, &l, nullptr).code == StatusCode::kInvalidArgument);
  bad = {};
  bad.dampening = -1;
  CHECK(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), {LinearScheme::kW4A16, false, 32}, bad, &l, nullptr).code == StatusCode::kInvalidArgument);
  auto hn = h;
  hn[5] = NAN;
  CHECK(gptq_quantize_linear(w.data(), out, in, nullptr, hn.data(), {LinearScheme::kW4A16, false, 32}, {}, &l, nullptr).code == StatusCode::kNonFinite);
  auto hneg = h;
  for (int i = 0; i < in; ++i) hneg[static_cast<size_t>(i) * in + i] = i == 3 ? -50.0 : 1.0;
  const Status s = gptq_quantize_linear(w.data(), out, in, nullptr, hneg.data(), {LinearScheme::kW4A16, false, 32}, {}, &l, nullptr);
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(s.message.find("positive definite") != std::string::npos);
  AwqOptions ab;
  ab.grid = 0;
  CHECK(awq_quantize_linear(w.data(), out, in, nullptr, h.data(), ma.data(), {LinearScheme::kW4A16, false, 32}, ab, &l, nullptr, nullptr).code == StatusCode::kInvalidArgument);
  CHECK(l == nullptr);
  LinearQuantizedData d;
  REQUIRE(rtn(w, out, in, {LinearScheme::kW4A16, false, 32})->export_quantized(&d).ok());
  d.input_scales.assign(in, 1.0f);
  d.input_scales[7] = 0.0f;
  CHECK(make_linear_from_quantized(d, &l).code == StatusCode::kInvalidArgument);
  d.input_scales.resize(3);
  CHECK(make_linear_from_quantized(d, &l).code == StatusCode::kShapeMismatch);
}

namespace {

// Records every input of one linear layer (a second, trivially correct observer).
struct Capture final : LinearInputObserver {
  size_t layer;
  std::vector<float> rows;
  void observe(size_t linear, const float* x, size_t m) override {
    if (linear != layer) return;
    rows.insert(rows.end(), x, x + m * 64);
  }
};

}  // namespace

TEST_CASE("calibration: the recorder's X^T X and mean |x| equal those of the captured inputs; q/k/v share one") {
  auto m = load_stories();
  Weights& w = m->weights();
  const auto names = w.linear_names();
  size_t q = 0;
  while (names[q] != "model.layers.1.self_attn.q_proj") ++q;
  const auto tokens = walk(40, 7);
  std::vector<float> logits;
  Capture cap;
  cap.layer = q;
  w.set_input_observer(&cap);
  REQUIRE(m->forward(tokens.data(), tokens.size(), false, &logits).ok());
  w.set_input_observer(nullptr);
  m->reset();
  REQUIRE(cap.rows.size() == 40 * 64);
  {
    CalibrationStatsRequest what;
    what.hessian = what.mean_abs = true;
    LinearInputRecorder rec(w, {q, q + 1, q + 2, q + 3}, what);
    REQUIRE(m->forward(tokens.data(), 20, false, &logits).ok());
    REQUIRE(m->forward(tokens.data() + 20, 20, false, &logits).ok());
    const LayerInputStats& sq = rec.stats(q);
    const LayerInputStats& sv = rec.stats(q + 2);
    CHECK(&sq == &sv);  // v_proj reads q_proj's input
    CHECK(rec.stats(q + 3).rows == 40);  // o_proj: its own input
    CHECK(&rec.stats(q + 3) != &sq);
    REQUIRE(sq.rows == 40);
    const auto h = hessian(cap.rows, 40, 64);
    const auto ma = mean_abs(cap.rows, 40, 64);
    // float32 sums of the products per tile of tokens (accumulate_gram): relative to the
    // Cauchy-Schwarz bound sqrt(H_ii H_jj) of each entry (measured below 1e-7).
    double worst = 0.0;
    for (size_t i = 0; i < 64; ++i)
      for (size_t j = 0; j < 64; ++j)
        worst = std::max(worst, std::fabs(sq.hessian[i * 64 + j] - h[i * 64 + j]) / std::sqrt(h[i * 64 + i] * h[j * 64 + j]));
    MESSAGE("recorder X^T X vs float64: worst relative difference " << worst);
    CHECK(worst < 1e-6);
    for (size_t i = 0; i < ma.size(); ++i) CHECK(sq.mean_abs[i] == doctest::Approx(ma[i]).epsilon(1e-6));
  }
  CHECK(m->forward(tokens.data(), 1, false, &logits).ok());  // the recorder removed itself
}

TEST_CASE("calibration: GPTQ and AWQ over stories260K, block by block") {
  for (QuantMethod method : {QuantMethod::kGptq, QuantMethod::kAwq}) {
    CAPTURE(static_cast<int>(method));
    auto m = load_stories();
    ModelQuantOptions o;
    o.method = method;
    o.default_spec = {LinearScheme::kW4A16, false, 32};
    CalibrationOptions c;
    c.tokens = walk(96, 11);
    c.sequence_length = 32;
    std::vector<LayerQuantReport> report;
    const std::vector<std::string> labels = testing::quantize_calibrated_steps(m.get(), o, c, &report);
    REQUIRE(report.size() == 36);  // 5 layers x 7 + lm_head
    CHECK(labels.size() == 5 + 35);  // a pass per block (none for the excluded head) + 35 layers
    CHECK(labels.front() == "1/40 calibration pass: model.layers.0");
    CHECK(labels.back() == "40/40 model.layers.4.mlp.down_proj");
    for (const auto& r : report) {
      CAPTURE(r.name);
      if (r.name == "lm_head") {
        CHECK(r.note == "excluded");
        CHECK(r.method == QuantMethod::kRtn);
        continue;
      }
      CHECK(r.method == method);
      CHECK(r.bits == 4);
      CHECK(r.note.find(std::string(quant_method_name(method)) + " on 96 calibration tokens") == 0);
      CHECK(r.group_size == (r.in_features == 172 ? 172 : 32));
    }
    std::vector<float> logits;
    const auto t = walk(20, 99);
    REQUIRE(m->forward(t.data(), t.size(), false, &logits).ok());
    for (float v : logits) REQUIRE(std::isfinite(v));
    // Saved and loaded back: the method per layer, AWQ's input scales, bit-identical logits.
    std::vector<CheckpointFile> files;
    REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
    REQUIRE(files.size() == 2);
    const std::string config(files[0].bytes.begin(), files[0].bytes.end());
    CHECK(config.find(std::string("\"method\":\"") + quant_method_name(method) + "\"") != std::string::npos);
    CHECK((config.find("\"input_scales\":true") != std::string::npos) == (method == QuantMethod::kAwq));
    io::SafetensorsFile sf;
    REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &sf).ok());
    std::unique_ptr<CausalLM> back;
    const Status ls = load_checkpoint(config, {&sf}, &back);
    REQUIRE_MESSAGE(ls.ok(), ls.message);
    std::vector<float> logits2;
    m->reset();
    REQUIRE(m->forward(t.data(), t.size(), false, &logits).ok());
    REQUIRE(back->forward(t.data(), t.size(), false, &logits2).ok());
    CHECK(logits2 == logits);
    CHECK(back->weights().linear_method("model.layers.2.mlp.down_proj") == method);
    CHECK(back->weights().linear_method("lm_head") == QuantMethod::kRtn);
    // The plain path refuses a calibrated method.
    CHECK(m->quantize(o, &report).code == StatusCode::kInvalidArgument);
    c.tokens.clear();
    CHECK(quantize_calibrated(m.get(), o, c, &report).code == StatusCode::kInvalidArgument);
    c.tokens = {1, 2, 100000};
    const Status s = quantize_calibrated(m.get(), o, c, &report);
    CHECK(s.code == StatusCode::kInvalidArgument);
    CHECK(s.message.find("calibration: ") == 0);
  }
  auto m = load_stories();
  ModelQuantOptions o;
  o.method = QuantMethod::kGptq;
  o.default_spec = {LinearScheme::kW4A16, false, 32};
  CalibrationOptions c;
  c.tokens = walk(64, 3);
  CHECK(quantize_calibrated(m.get(), o, c, nullptr, [](int done, int, const std::string&) { return done < 3; }).code == StatusCode::kAborted);
}
