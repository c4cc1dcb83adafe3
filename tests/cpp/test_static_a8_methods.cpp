// Static int8 activations beyond W8A8 per channel: the static W4A8 layer and the fused input
// scales (against a float64 reference, the row path and the input-scaled wrapper it replaces),
// static W4A8 / W8A8 g32 over the real stories260K with save -> load bit for bit, and SmoothQuant
// combined with GPTQ and AWQ (their layer output error against SmoothQuant + RTN's on the float
// model's calibration activations).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant/calibration_internal.h"
#include "stories_checkpoint.h"
#include "webquant/activation_quant.h"
#include "webquant/calibration.h"

using namespace webquant;
using webquant::testing::load_saved;
using webquant::testing::load_stories;
using webquant::testing::save;

namespace {

std::vector<float> gauss(size_t n, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

std::vector<int32_t> walk(size_t n, uint32_t x) {
  std::vector<int32_t> s = {1};
  while (s.size() < n) {
    x = x * 1664525u + 1013904223u;
    s.push_back(static_cast<int32_t>(3 + (x >> 8) % 509));
  }
  return s;
}

std::vector<float> logits_of(CausalLM* m, const std::vector<int32_t>& t) {
  std::vector<float> l;
  m->reset();
  REQUIRE(m->forward(t.data(), t.size(), false, &l).ok());
  m->reset();
  return l;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0.0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("static w4a8 / w8a8 g32 layer: float64 reference, fused input scales, row path, save form, errors") {
  const int out = 12, in = 64;
  const std::vector<float> w = gauss(size_t(out) * in, 0.05f, 5);
  std::vector<float> bias(out);
  for (int j = 0; j < out; ++j) bias[j] = 0.01f * j;
  std::vector<float> s_in(in);  // SmoothQuant-like input scales in [0.5, 2)
  for (int c = 0; c < in; ++c) s_in[c] = 0.5f + 1.5f * float((c * 37) % 64) / 64.0f;
  struct Case {
    LinearScheme scheme;
    bool asym;
    int group;
  };
  for (const Case cs : {Case{LinearScheme::kW4A8, false, 32}, Case{LinearScheme::kW4A8, true, 32},
                        Case{LinearScheme::kW4A8, false, 0}, Case{LinearScheme::kW8A8, false, 32},
                        Case{LinearScheme::kW8A8, true, 32}}) {
    for (bool scaled : {false, true}) {
      CAPTURE(linear_scheme_name(cs.scheme));
      CAPTURE(cs.asym);
      CAPTURE(cs.group);
      CAPTURE(scaled);
      std::unique_ptr<LinearLayer> dyn;
      REQUIRE(make_linear_quantized(w.data(), out, in, bias.data(), {cs.scheme, cs.asym, cs.group}, &dyn, nullptr).ok());
      LinearQuantizedData d;
      REQUIRE(dyn->export_quantized(&d).ok());
      const float s = 0.02f;
      d.activation_scale = s;
      if (scaled) d.input_scales = s_in;
      std::unique_ptr<LinearLayer> st;
      REQUIRE(make_linear_from_quantized(d, &st).ok());
      CHECK(st->scheme() == cs.scheme);
      CHECK(st->describe().find("activations int8 static (scale 0.02)") != std::string::npos);
      CHECK(st->describe().rfind(linear_scheme_name(cs.scheme), 0) == 0);
      // Five rows (values beyond 127 s = 2.54 clamp) against float64:
      // y = s * clamp(round(float(x * (1 / s_in)) / s)) W^T + b, W = scale * (q - z).
      const size_t m = 5;
      const std::vector<float> x = gauss(m * in, 1.2f, 9);
      std::vector<float> y(m * out);
      st->forward(x.data(), m, y.data());
      const int G = d.group_size, groups = in / G;
      for (size_t t = 0; t < m; ++t)
        for (int j = 0; j < out; ++j) {
          double acc = bias[j];
          for (int c = 0; c < in; ++c) {
            const float v = scaled ? x[t * in + c] * (1.0f / s_in[c]) : x[t * in + c];
            const double q = std::max(-127.0, std::min(127.0, double(std::nearbyint(v / s))));
            const size_t p = size_t(j) * groups + c / G;
            acc += double(s) * q * double(d.scales[p]) * double(d.q[size_t(j) * in + c] - d.zero_points[p]);
          }
          CHECK(y[t * out + j] == doctest::Approx(acc).epsilon(1e-5).scale(1.0));
        }
      // The fused input scales equal the input-scaled wrapper over the plain static layer.
      if (scaled) {
        LinearQuantizedData plain = d;
        plain.input_scales.clear();
        std::unique_ptr<LinearLayer> inner;
        REQUIRE(make_linear_from_quantized(plain, &inner).ok());
        auto wrapped = calib_detail::make_linear_input_scaled(std::move(inner), s_in);
        std::vector<float> yw(m * out);
        wrapped->forward(x.data(), m, yw.data());
        CHECK(same_bits(yw, y));
        std::vector<float> wa(size_t(out) * in), wb(size_t(out) * in);
        wrapped->dequantize_weight(wa.data());
        st->dequantize_weight(wb.data());
        CHECK(same_bits(wa, wb));
      }
      // The row path (fused q/k/v in decode) is bit-identical to forward, in panels of 4 rows.
      REQUIRE(st->has_forward_rows());
      LinearRowsInput rin;
      st->prepare_rows(x.data(), &rin);
      std::vector<float> yr(out);
      st->forward_rows(rin, 0, 4, yr.data(), nullptr);
      st->forward_rows(rin, 4, out, yr.data() + 4, nullptr);
      CHECK(same_bits(yr, std::vector<float>(y.begin(), y.begin() + out)));
      // The integer form round-trips with the scale and the input scales.
      LinearQuantizedData back;
      REQUIRE(st->export_quantized(&back).ok());
      CHECK(back.scheme == cs.scheme);
      CHECK(back.activation_scale == s);
      CHECK(back.input_scales == d.input_scales);
      CHECK(back.q == d.q);
      CHECK(back.scales == d.scales);
      CHECK(back.zero_points == d.zero_points);
      // A NaN (or an Inf) row gives non-finite outputs for that row only.
      std::vector<float> xn = x;
      xn[3] = NAN;
      xn[in + 7] = INFINITY;
      st->forward(xn.data(), 3, y.data());
      CHECK(std::isnan(y[0]));
      CHECK(std::isnan(y[out]));
      CHECK(std::isfinite(y[2 * out]));
    }
  }
  std::unique_ptr<LinearLayer> l;
  REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, {LinearScheme::kW4A16, false, 32}, &l, nullptr).ok());
  LinearQuantizedData d;
  REQUIRE(l->export_quantized(&d).ok());
  d.activation_scale = 0.1f;
  CHECK(make_linear_from_quantized(d, &l).code == StatusCode::kInvalidArgument);  // w4a16
  d.scheme = LinearScheme::kW4A8;
  REQUIRE(make_linear_from_quantized(d, &l).ok());
  d.input_scales.assign(in, 1.0f);
  d.input_scales[5] = 0.0f;
  CHECK(make_linear_from_quantized(d, &l).code == StatusCode::kInvalidArgument);
  d.input_scales.assign(in - 1, 1.0f);
  CHECK(make_linear_from_quantized(d, &l).code == StatusCode::kShapeMismatch);
}

TEST_CASE("static w4a8 g32 and w8a8 g32 over stories260K: close to dynamic, saved and reloaded bit for bit") {
  const std::vector<int32_t> t = walk(24, 99);
  auto f = load_stories();
  const std::vector<float> ref = logits_of(f.get(), t);
  for (const LinearScheme scheme : {LinearScheme::kW4A8, LinearScheme::kW8A8}) {
    for (bool smooth : {false, true}) {
      CAPTURE(linear_scheme_name(scheme));
      CAPTURE(smooth);
      ModelQuantOptions o;
      o.default_spec = {scheme, false, 32};
      double dyn_err = 0.0;
      {
        auto m = load_stories();
        REQUIRE(m->quantize(o, nullptr).ok());
        dyn_err = max_abs_diff(logits_of(m.get(), t), ref);
      }
      auto m = load_stories();
      CalibrationOptions c;
      c.tokens = walk(128, 11);
      c.sequence_length = 32;
      c.activations.static_int8 = true;
      c.activations.smoothquant = smooth;
      std::vector<LayerQuantReport> report;
      REQUIRE(quantize_calibrated(m.get(), o, c, &report).ok());
      REQUIRE(report.size() == 36);
      size_t n_static = 0;
      for (const auto& r : report) {
        if (r.note == "excluded") continue;
        ++n_static;
        CHECK(r.activation_scale > 0.0f);
        CHECK(r.scheme.find("activations int8 static") != std::string::npos);
      }
      CHECK(n_static == 35);
      const std::vector<float> got = logits_of(m.get(), t);
      const double err = max_abs_diff(got, ref);
      MESSAGE(std::string(linear_scheme_name(scheme)), " g32 smooth ", smooth, ": static max |dlogit| ", err, " (dynamic ", dyn_err, ")");
      // Measured (native, 24 tokens): w4a8 g32 static 2.81 / with smoothquant 2.25 (dynamic 2.82);
      // w8a8 g32 static 0.57 / with smoothquant 0.195 (dynamic 0.176).
      const double bound = scheme == LinearScheme::kW4A8 ? (smooth ? 2.9 : 3.4) : (smooth ? 0.3 : 0.75);
      CHECK(err < bound);
      const webquant::testing::Saved s = save(*m);
      CHECK(s.config.find("\"activations\":\"int8-static\"") != std::string::npos);
      CHECK(s.config.find(scheme == LinearScheme::kW4A8 ? "\"scheme\":\"w4a8\"" : "\"scheme\":\"w8a8\"") != std::string::npos);
      auto back = load_saved(s);
      CHECK(same_bits(logits_of(back.get(), t), got));
      const webquant::testing::Saved again = save(*back);
      REQUIRE(again.files.size() == s.files.size());
      for (size_t i = 0; i < s.files.size(); ++i) CHECK(again.files[i].bytes == s.files[i].bytes);
    }
  }
}

namespace {

// Effective weight of a linear of a (smoothed) model in the float model's coordinates: the
// dequantized weight (W' diag(1 / s) for layers with input scales) times 1 / s of a norm that took
// the smoothing (g' = g / s), read off the two models' norm weights.
std::vector<float> effective_weight(const CausalLM& m, const CausalLM& f, const std::string& name) {
  const LinearLayer* l = m.linear(name);
  REQUIRE(l != nullptr);
  std::vector<float> w(size_t(l->out_features) * l->in_features);
  l->dequantize_weight(w.data());
  const std::string block = name.substr(0, name.find(".", name.find("layers.") + 7));
  std::string norm;
  if (name.find("q_proj") != std::string::npos || name.find("k_proj") != std::string::npos || name.find("v_proj") != std::string::npos)
    norm = block + ".input_layernorm.weight";
  if (name.find("gate_proj") != std::string::npos || name.find("up_proj") != std::string::npos)
    norm = block + ".post_attention_layernorm.weight";
  if (norm.empty()) return w;
  const auto* gm = m.weights().find_param(norm);
  const auto* gf = f.weights().find_param(norm);
  REQUIRE(gm != nullptr);
  REQUIRE(gf != nullptr);
  const size_t C = size_t(l->in_features);
  for (size_t r = 0; r < size_t(l->out_features); ++r)
    for (size_t c = 0; c < C; ++c) w[r * C + c] *= gm->data[c] / gf->data[c];
  return w;
}

}  // namespace

TEST_CASE("smoothquant + gptq / awq: weight method on the smoothed weights, static observers after; output error <= smoothquant + rtn") {
  CalibrationOptions c;
  c.tokens = walk(256, 21);
  c.sequence_length = 64;
  c.activations.smoothquant = true;
  c.activations.static_int8 = true;
  // The float model's Hessians (its inputs) of every linear, over the calibration tokens.
  auto f = load_stories();
  const std::vector<std::string> names = f->linear_names();
  std::vector<size_t> all;
  for (size_t i = 0; i < f->weights().num_linears(); ++i)
    if (f->weights().linear_at(i).layer != nullptr) all.push_back(i);
  std::vector<std::vector<double>> h(f->weights().num_linears());
  {
    CalibrationStatsRequest req;
    req.hessian = true;
    LinearInputRecorder rec(f->weights(), all, req);
    for (size_t s = 0; s < c.tokens.size(); s += 64) {
      std::vector<float> l;
      f->reset();
      REQUIRE(f->forward(c.tokens.data() + s, 64, false, &l).ok());
    }
    f->reset();
    for (size_t i : all) h[i] = rec.stats(i).hessian;
  }
  for (const LinearQuantSpec spec : {LinearQuantSpec{LinearScheme::kW4A8, false, 32}, LinearQuantSpec{LinearScheme::kW8A8, false, 0}}) {
    CAPTURE(linear_scheme_name(spec.scheme));
    ModelQuantOptions o;
    o.default_spec = spec;
    double err[3] = {0, 0, 0};
    std::vector<float> logits[3];
    const std::vector<int32_t> t = walk(24, 99);
    for (int k = 0; k < 3; ++k) {
      o.method = k == 0 ? QuantMethod::kRtn : k == 1 ? QuantMethod::kGptq : QuantMethod::kAwq;
      CAPTURE(quant_method_name(o.method));
      auto m = load_stories();
      std::vector<LayerQuantReport> report;
      std::vector<std::string> labels;
      const Status st = quantize_calibrated(m.get(), o, c, &report, [&](int d, int tot, const std::string& label) {
        labels.push_back(std::to_string(d) + "/" + std::to_string(tot) + " " + label);
        return true;
      });
      REQUIRE_MESSAGE(st.ok(), st.message);
      REQUIRE(report.size() == 36);
      REQUIRE(!labels.empty());
      CHECK(labels.back().substr(0, labels.back().find(' ')) == std::to_string(labels.size()) + "/" + std::to_string(labels.size()));
      for (const auto& r : report) {
        if (r.note == "excluded") continue;
        CAPTURE(r.name);
        CHECK(r.activation_scale > 0.0f);
        CHECK(r.note.rfind("smoothquant alpha 0.50, ", 0) == 0);
        if (k > 0) {
          CHECK(r.note.find("static activations: minmax observer on the quantized model") != std::string::npos);
          CHECK(r.note.find(std::string(quant_method_name(o.method)) + " on ") != std::string::npos);
          CHECK(m->weights().linear_method(r.name) == o.method);
        }
      }
      for (size_t i : all) {
        const std::string& name = f->weights().linear_at(i).info.name;
        if (name == "lm_head") continue;
        const LinearLayer* fl = f->linear(name);
        std::vector<float> wf(size_t(fl->out_features) * fl->in_features);
        fl->dequantize_weight(wf.data());
        const std::vector<float> we = effective_weight(*m, *f, name);
        err[k] += layer_output_error(we.data(), wf.data(), fl->out_features, fl->in_features, h[i].data());
      }
      logits[k] = logits_of(m.get(), t);
      if (k == 1) {  // saved with its method, input scales and static scales; reloaded bit for bit
        const webquant::testing::Saved s = save(*m);
        CHECK(s.config.find("\"method\":\"gptq\"") != std::string::npos);
        auto back = load_saved(s);
        CHECK(same_bits(logits_of(back.get(), t), logits[k]));
      }
    }
    const std::vector<float> ref = logits_of(f.get(), t);
    MESSAGE(std::string(linear_scheme_name(spec.scheme)), ": summed layer output error smoothquant + rtn ", err[0], ", + gptq ", err[1], ", + awq ", err[2],
            "; max |dlogit| ", max_abs_diff(logits[0], ref), " / ", max_abs_diff(logits[1], ref), " / ", max_abs_diff(logits[2], ref));
    // Measured (native): w4a8 g32 rtn 6535, gptq 1900, awq 5713; w8a8 rtn 24.2, gptq 6.87, awq 21.0.
    CHECK(err[1] <= err[0]);
    CHECK(err[2] <= err[0]);
    CHECK(err[1] <= 0.5 * err[0]);
  }
}

TEST_CASE("static activations with gptq / awq: typed errors") {
  ModelQuantOptions o;
  o.default_spec = {LinearScheme::kW4A8, false, 32};
  o.method = QuantMethod::kGptq;
  CalibrationOptions c;
  c.tokens = walk(64, 3);
  c.activations.static_int8 = true;
  c.gptq.grid = GptqGrid::kHqq;
  auto m = load_stories();
  const std::vector<int32_t> t = walk(8, 5);
  const std::vector<float> before = logits_of(m.get(), t);
  Status st = quantize_calibrated(m.get(), o, c, nullptr);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("grid 'hqq'") != std::string::npos);
  c.gptq.grid = GptqGrid::kRtn;
  o.default_spec = {LinearScheme::kW4A16, false, 32};
  st = quantize_calibrated(m.get(), o, c, nullptr);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("need scheme w8a8 or w4a8 (got w4a16)") != std::string::npos);
  o.method = QuantMethod::kHqq;
  o.default_spec = {LinearScheme::kW4A8, false, 32};
  st = quantize_calibrated(m.get(), o, c, nullptr);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(same_bits(logits_of(m.get(), t), before));
}
