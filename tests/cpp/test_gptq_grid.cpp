// GPTQ onto a fixed grid (calibration.h: gptq_round_on_grid, GptqGrid::kHqq): against an
// independent float64 reference written from the paper's update rule (inverse Hessian, no
// Cholesky), HQQ code for code when the Hessian is diagonal, output error on correlated
// activations below HQQ's, RTN's and GPTQ's on RTN's grid, typed errors, and the model-level pass
// on the real stories260K (saved and reloaded bit for bit).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "gptq_data.h"
#include "stories_checkpoint.h"
#include "webquant/calibration.h"
#include "webquant/causal_lm.h"
#include "webquant/hqq.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"

using namespace webquant;
using namespace webquant::testing;

namespace {

// The paper's rule in float64 on a fixed grid: columns in `order`; round column i onto its group's
// (s, z); spread the error through the inverse Hessian of the columns not yet rounded; remove
// column i from that inverse (Gauss-Jordan inverse, rank-one downdate; no Cholesky).
std::vector<int> reference_on_grid(std::vector<double> w, int out, int in, std::vector<double> h, int bits,
                                   int group, const std::vector<float>& s, const std::vector<float>& z,
                                   double damp, const std::vector<size_t>& order) {
  const size_t C = size_t(in);
  std::vector<double> inv = damped_inverse(std::move(h), C, damp);
  const double qmax = (1 << bits) - 1;
  const size_t ng = C / size_t(group);
  std::vector<int> codes(size_t(out) * C, 0);
  std::vector<bool> done(C, false);
  for (size_t i : order) {
    for (size_t r = 0; r < size_t(out); ++r) {
      const double sc = s[r * ng + i / group], zc = z[r * ng + i / group];
      const double u = std::min(qmax, std::max(0.0, std::nearbyint(w[r * C + i] / sc + zc)));
      codes[r * C + i] = int(u);
      const double e = (w[r * C + i] - sc * (u - zc)) / inv[i * C + i];
      for (size_t j = 0; j < C; ++j)
        if (!done[j] && j != i) w[r * C + j] -= e * inv[i * C + j];
    }
    done[i] = true;
    downdate_inverse(&inv, C, i);
  }
  return codes;
}

}  // namespace

TEST_CASE("gptq grid: matches the float64 reference on a fixed grid (in order and act-order)") {
  const int out = 8, in = 64, n = 256, bits = 4, G = 32;
  const auto x = make_x(n, in, 21);
  const auto w = make_w(out, in, 22);
  const auto h = hessian(x, n, in);
  std::vector<uint8_t> u0(w.size());
  std::vector<float> s(out * (in / G)), z(s.size());
  REQUIRE(hqq_quantize(w.data(), out, in, G, bits, HqqParams(), u0.data(), s.data(), z.data(), nullptr).ok());
  for (bool act : {false, true}) {
    CAPTURE(act);
    GptqOptions opt;
    opt.act_order = act;
    std::vector<uint8_t> u(w.size());
    REQUIRE(gptq_round_on_grid(w.data(), out, in, h.data(), bits, G, s.data(), z.data(), opt, u.data()).ok());
    std::vector<size_t> order(in);
    std::iota(order.begin(), order.end(), size_t{0});
    if (act) std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return h[a * in + a] > h[b * in + b]; });
    const auto ref = reference_on_grid(std::vector<double>(w.begin(), w.end()), out, in, h, bits, G, s, z, 0.01, order);
    int same = 0;
    for (size_t i = 0; i < ref.size(); ++i) same += int(u[i]) == ref[i];
    CHECK(same == int(ref.size()));
    CHECK(u != u0);  // the error feedback moved codes off HQQ's nearest ones
  }
}

TEST_CASE("gptq grid: with a diagonal Hessian it is HQQ, code for code") {
  const int out = 6, in = 96;
  const auto w = make_w(out, in, 23);
  std::vector<double> h(size_t(in) * in, 0.0);
  for (int i = 0; i < in; ++i) h[size_t(i) * in + i] = 1.0 + i % 5;
  for (int bits : {4, 3, 2}) {
    CAPTURE(bits);
    const LinearScheme scheme = bits == 4 ? LinearScheme::kW4A16 : bits == 3 ? LinearScheme::kW3A16 : LinearScheme::kW2A16;
    for (bool updated : {false, true}) {  // no feedback: the updated groups are the original ones
      CAPTURE(updated);
      GptqOptions opt;
      opt.grid = GptqGrid::kHqq;
      opt.grid_from_updated = updated;
      std::unique_ptr<LinearLayer> g, hq;
      REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), {scheme, true, 32}, opt, &g, nullptr).ok());
      REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, {scheme, true, 32, QuantMethod::kHqq}, &hq, nullptr).ok());
      LinearQuantizedData a, b;
      REQUIRE(g->export_quantized(&a).ok());
      REQUIRE(hq->export_quantized(&b).ok());
      CHECK(a.method == QuantMethod::kHqq);  // the float-zero form
      CHECK(a.q == b.q);
      CHECK(a.scales == b.scales);
      CHECK(a.zero_points_f == b.zero_points_f);
      CHECK(g->describe() == hq->describe());
    }
  }
}

TEST_CASE("gptq grid hqq: output error on the calibration activations below HQQ's, RTN's and GPTQ's on RTN's grid") {
  const int out = 48, in = 128, n = 512;
  const auto x = make_x(n, in, 24);
  const auto w = make_w(out, in, 25);
  const auto h = hessian(x, n, in);
  for (int bits : {4, 3}) {
    const LinearScheme scheme = bits == 4 ? LinearScheme::kW4A16 : LinearScheme::kW3A16;
    for (bool act : {false, true}) {
      CAPTURE(bits);
      CAPTURE(act);
      const LinearQuantSpec spec{scheme, true, 32};
      auto err = [&](const LinearLayer& l) { return layer_output_error(dequant(l).data(), w.data(), out, in, h.data()); };
      std::unique_ptr<LinearLayer> rtn, hqq, gptq, both;
      REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, spec, &rtn, nullptr).ok());
      REQUIRE(make_linear_quantized(w.data(), out, in, nullptr, {scheme, true, 32, QuantMethod::kHqq}, &hqq, nullptr).ok());
      GptqOptions opt;
      opt.act_order = act;
      REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), spec, opt, &gptq, nullptr).ok());
      opt.grid = GptqGrid::kHqq;
      REQUIRE(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), spec, opt, &both, nullptr).ok());
      const double e_rtn = err(*rtn), e_hqq = err(*hqq), e_gptq = err(*gptq), e_both = err(*both);
      MESSAGE("bits " << bits << " act " << act << ": rtn " << e_rtn << " hqq " << e_hqq << " gptq " << e_gptq << " gptq on hqq grid " << e_both);
      // Measured: int4 0.06 / 0.03 of RTN's (in order / act-order), 0.87-0.92 of GPTQ's on RTN's
      // grid natively; int3 0.04 / 0.02 of RTN's, 0.87 of GPTQ's. The wasm build draws other
      // synthetic weights (libc++'s distributions): int4 in order there is 0.975 of GPTQ's.
      CHECK(e_both < 0.1 * e_rtn);
      CHECK(e_both < 0.1 * e_hqq);
      CHECK(e_both < 0.99 * e_gptq);
      // The layer computes what its dequantized weights say, and rebuilds from its integer form.
      LinearQuantizedData d;
      REQUIRE(both->export_quantized(&d).ok());
      std::unique_ptr<LinearLayer> back;
      REQUIRE(make_linear_from_quantized(d, &back).ok());
      std::vector<float> y(size_t(4) * out), y2(y.size()), yref(y.size(), 0.0f);
      both->forward(x.data(), 4, y.data());
      back->forward(x.data(), 4, y2.data());
      CHECK(y2 == y);
      const auto wd = dequant(*both);
      for (int t = 0; t < 4; ++t)
        for (int r = 0; r < out; ++r)
          for (int k = 0; k < in; ++k) yref[size_t(t) * out + r] += x[size_t(t) * in + k] * wd[size_t(r) * in + k];
      for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(yref[i]).epsilon(1e-3).scale(1e-2));
    }
  }
}

TEST_CASE("gptq grid: bad input is a typed error") {
  const int out = 4, in = 64;
  const auto w = make_w(out, in, 26);
  std::vector<double> h(size_t(in) * in, 0.0);
  for (int i = 0; i < in; ++i) h[size_t(i) * in + i] = 1.0;
  GptqOptions opt;
  opt.grid = GptqGrid::kHqq;
  std::unique_ptr<LinearLayer> l;
  Status s = gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), {LinearScheme::kW4A16, false, 32}, opt, &l, nullptr);
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(s.message.find("asymmetric") != std::string::npos);
  s = gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), {LinearScheme::kW8A16, true, 32}, opt, &l, nullptr);
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(s.message.find("w8a16") != std::string::npos);
  CHECK(l == nullptr);
  opt.grid = static_cast<GptqGrid>(7);
  CHECK(gptq_quantize_linear(w.data(), out, in, nullptr, h.data(), {LinearScheme::kW4A16, true, 32}, opt, &l, nullptr).code == StatusCode::kInvalidArgument);
  std::vector<float> sc(out * 2, 0.01f), z(out * 2, 7.5f);
  std::vector<uint8_t> u(w.size());
  opt.grid = GptqGrid::kRtn;
  CHECK(gptq_round_on_grid(w.data(), out, in, h.data(), 4, 32, sc.data(), z.data(), opt, u.data()).ok());
  CHECK(gptq_round_on_grid(w.data(), out, in, h.data(), 4, in + 1, sc.data(), z.data(), opt, u.data()).code == StatusCode::kInvalidArgument);
  CHECK(gptq_round_on_grid(w.data(), out, in, h.data(), 4, 0, sc.data(), z.data(), opt, u.data()).code == StatusCode::kInvalidArgument);
  CHECK(gptq_round_on_grid(w.data(), out, in, h.data(), 9, 32, sc.data(), z.data(), opt, u.data()).code == StatusCode::kInvalidArgument);
  sc[3] = 0.0f;
  CHECK(gptq_round_on_grid(w.data(), out, in, h.data(), 4, 32, sc.data(), z.data(), opt, u.data()).code == StatusCode::kInvalidArgument);
  sc[3] = 0.01f;
  z[1] = NAN;
  CHECK(gptq_round_on_grid(w.data(), out, in, h.data(), 4, 32, sc.data(), z.data(), opt, u.data()).code == StatusCode::kInvalidArgument);
  z[1] = 7.5f;
  auto bad = w;
  bad[5] = INFINITY;
  CHECK(gptq_round_on_grid(bad.data(), out, in, h.data(), 4, 32, sc.data(), z.data(), opt, u.data()).code == StatusCode::kNonFinite);
  opt.dampening = -1;
  CHECK(gptq_round_on_grid(w.data(), out, in, h.data(), 4, 32, sc.data(), z.data(), opt, u.data()).code == StatusCode::kInvalidArgument);
  opt.dampening = 0;
  std::vector<double> zero(size_t(in) * in, 0.0);
  zero[0] = 1.0;
  zero[1] = zero[size_t(in)] = 2.0;  // [[1, 2], [2, 1]]: not positive definite
  zero[size_t(in) + 1] = 1.0;
  CHECK(gptq_round_on_grid(w.data(), out, in, zero.data(), 4, 32, sc.data(), z.data(), opt, u.data()).code == StatusCode::kInvalidArgument);
}

TEST_CASE("gptq grid hqq over stories260K: float-zero layers, saved and reloaded bit for bit") {
  for (int bits : {4, 3}) {
    CAPTURE(bits);
    std::unique_ptr<CausalLM> m = load_stories();
    ModelQuantOptions o;
    o.method = QuantMethod::kGptq;
    o.default_spec = {bits == 4 ? LinearScheme::kW4A16 : LinearScheme::kW3A16, true, 32};
    CalibrationOptions c;
    c.tokens = walk(96, 5);
    c.sequence_length = 48;
    c.gptq.grid = GptqGrid::kHqq;
    c.gptq.act_order = true;
    std::vector<LayerQuantReport> report;
    REQUIRE(quantize_calibrated(m.get(), o, c, &report).ok());
    REQUIRE(report.size() == 36);
    for (const auto& r : report) {
      if (r.name == "lm_head") continue;
      CAPTURE(r.name);
      CHECK(r.method == QuantMethod::kGptq);
      CHECK(r.bits == bits);
      CHECK(r.scheme.find("hqq float zero") != std::string::npos);
      CHECK(r.group_size == (r.in_features == 172 ? 172 : 32));
    }
    std::vector<CheckpointFile> files;
    REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
    const std::string cfg(files[0].bytes.begin(), files[0].bytes.end());
    io::SafetensorsFile sf;
    REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &sf).ok());
    std::unique_ptr<CausalLM> back;
    REQUIRE(load_checkpoint(cfg, {&sf}, &back).ok());
    const auto t = walk(24, 77);
    std::vector<float> a, b;
    REQUIRE(m->forward(t.data(), t.size(), true, &a).ok());
    REQUIRE(back->forward(t.data(), t.size(), true, &b).ok());
    CHECK(a == b);
  }
}
