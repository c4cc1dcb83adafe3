// Fast calibration (issue 11): the block-wise forward pass equals forward() bit for bit on every
// decoder architecture; block-wise calibration equals the whole-model passes layer for layer; the
// SIMD Gram matrix and the blocked Cholesky / triangular inverse against their plain references.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "quant/calibration_internal.h"
#include "test_util.h"
#include "webquant/calibration.h"
#include "webquant/causal_lm.h"
#include "webquant/safetensors.h"

using namespace webquant;
using webquant::testing::read_file;

namespace {

struct Checkpoint {
  std::string name, config, bytes;
  io::SafetensorsFile file;
  int vocab = 0;
};

// The real stories260K (llama) and the synthetic gpt2 / gpt_neox fixtures of test_architectures.
std::vector<Checkpoint>& checkpoints() {
  static std::vector<Checkpoint>* all = [] {
    auto* v = new std::vector<Checkpoint>();
    const std::string fx = std::string(WQ_FIXTURE_DIR) + "/arch/";
    const std::pair<std::string, std::string> dirs[] = {
        {"stories260K", std::string(WQ_SHARED_DIR) + "/hub/karpathy/stories260K/"},
        {"gpt2", fx + "gpt2/"},
        {"gpt_neox", fx + "gpt_neox/"},
        {"gpt_neox-sequential", fx + "gpt_neox-sequential/"}};
    for (const auto& [name, dir] : dirs) {
      v->emplace_back();
      Checkpoint& c = v->back();
      c.name = name;
      c.config = read_file(dir + "config.json");
      c.bytes = read_file(dir + "model.safetensors");
      REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(c.bytes.data()), c.bytes.size(), &c.file).ok());
    }
    return v;
  }();
  return *all;
}

std::unique_ptr<CausalLM> load(const Checkpoint& c) {
  std::unique_ptr<CausalLM> m;
  const Status st = CausalLM::load(c.config, {&c.file}, &m);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

std::vector<int32_t> walk(size_t n, uint32_t x, int vocab) {
  std::vector<int32_t> s;
  while (s.size() < n) {
    x = x * 1664525u + 1013904223u;
    s.push_back(static_cast<int32_t>((x >> 8) % static_cast<uint32_t>(vocab)));
  }
  return s;
}

}  // namespace

TEST_CASE("blockwise: embed -> run_block... -> run_head equals forward() bit for bit") {
  for (const Checkpoint& c : checkpoints()) {
    CAPTURE(c.name);
    auto m = load(c);
    REQUIRE(m->num_blocks() == m->info().num_layers);
    const auto t = walk(19, 5, m->info().vocab_size);
    std::vector<float> ref, x, got;
    REQUIRE(m->forward(t.data(), t.size(), true, &ref).ok());
    REQUIRE(m->embed_tokens(t.data(), t.size(), &x).ok());
    REQUIRE(x.size() == t.size() * static_cast<size_t>(m->info().hidden_size));
    for (int b = 0; b < m->num_blocks(); ++b) REQUIRE(m->run_block(b, x.data(), t.size()).ok());
    REQUIRE(m->run_head(x.data(), t.size(), true, &got).ok());
    CHECK(got == ref);
    REQUIRE(m->run_head(x.data(), t.size(), false, &got).ok());
    CHECK(std::equal(got.begin(), got.end(), ref.end() - static_cast<long>(got.size())));
    CHECK(m->position() == 0);
    // Typed errors, nothing changed.
    CHECK(m->run_block(m->num_blocks(), x.data(), t.size()).code == StatusCode::kInvalidArgument);
    CHECK(m->run_block(-1, x.data(), t.size()).code == StatusCode::kInvalidArgument);
    CHECK(m->run_block(0, x.data(), 0).code == StatusCode::kInvalidArgument);
    CHECK(m->run_block(0, nullptr, 3).code == StatusCode::kInvalidArgument);
    const int32_t bad[2] = {0, m->info().vocab_size};
    CHECK(m->embed_tokens(bad, 2, &x).code == StatusCode::kInvalidArgument);
    CHECK(m->embed_tokens(t.data(), static_cast<size_t>(m->max_context()) + 1, &x).code == StatusCode::kInvalidArgument);
  }
}

TEST_CASE("blockwise: calibration equals the whole-model passes, layer for layer (gptq, awq; head included)") {
  for (const Checkpoint& c : checkpoints()) {
    for (QuantMethod method : {QuantMethod::kGptq, QuantMethod::kAwq}) {
      for (bool with_head : {false, true}) {
        CAPTURE(c.name);
        CAPTURE(static_cast<int>(method));
        CAPTURE(with_head);
        auto a = load(c), b = load(c);
        ModelQuantOptions o;
        o.method = method;
        o.default_spec = {LinearScheme::kW4A16, false, 32};
        if (with_head) o.exclude.clear();
        CalibrationOptions cal;
        cal.tokens = walk(70, 17, a->info().vocab_size);
        cal.sequence_length = 24;  // 24 + 24 + 22
        cal.gptq.act_order = with_head;
        std::vector<LayerQuantReport> ra, rb;
        std::vector<std::string> la, lb;
        const Status sa = quantize_calibrated(a.get(), o, cal, &ra, [&](int d, int t, const std::string& l) {
          la.push_back(std::to_string(d) + "/" + std::to_string(t) + " " + l);
          return true;
        });
        REQUIRE_MESSAGE(sa.ok(), sa.message);
        cal.blockwise = false;
        const Status sb = quantize_calibrated(b.get(), o, cal, &rb, [&](int d, int t, const std::string& l) {
          lb.push_back(std::to_string(d) + "/" + std::to_string(t) + " " + l);
          return true;
        });
        REQUIRE_MESSAGE(sb.ok(), sb.message);
        CHECK(la == lb);
        REQUIRE(ra.size() == rb.size());
        int quantized = 0;
        for (size_t i = 0; i < ra.size(); ++i) {
          CAPTURE(ra[i].name);
          CHECK(ra[i].name == rb[i].name);
          CHECK(ra[i].note == rb[i].note);
          CHECK(ra[i].scheme == rb[i].scheme);
          if (ra[i].note == "excluded") continue;
          ++quantized;
          LinearQuantizedData da, db;
          REQUIRE(a->linear(ra[i].name)->export_quantized(&da).ok());
          REQUIRE(b->linear(ra[i].name)->export_quantized(&db).ok());
          CHECK(da.q == db.q);
          CHECK(da.scales == db.scales);
          CHECK(da.zero_points == db.zero_points);
          CHECK(da.input_scales == db.input_scales);
        }
        CHECK(quantized == static_cast<int>(ra.size()) - (with_head ? 0 : 1));
        // The models compute the same logits afterwards.
        const auto t = walk(9, 3, a->info().vocab_size);
        std::vector<float> ya, yb;
        REQUIRE(a->prefill(t.data(), t.size(), &ya).ok());
        REQUIRE(b->prefill(t.data(), t.size(), &yb).ok());
        CHECK(ya == yb);
      }
    }
  }
}

TEST_CASE("blockwise: calibration errors keep their form") {
  auto m = load(checkpoints()[0]);
  ModelQuantOptions o;
  o.method = QuantMethod::kGptq;
  o.default_spec = {LinearScheme::kW4A16, false, 32};
  CalibrationOptions c;
  c.tokens = {1, 2, 100000};
  const Status s = quantize_calibrated(m.get(), o, c, nullptr);
  CHECK(s.code == StatusCode::kInvalidArgument);
  CHECK(s.message.find("calibration: ") == 0);
  CHECK(m->linear("model.layers.0.self_attn.q_proj")->scheme() == LinearScheme::kF32);  // nothing done
}

TEST_CASE("gptq linear algebra: SIMD Gram matrix and blocked factor against the plain references") {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (size_t c : {size_t{1}, size_t{5}, size_t{43}, size_t{64}, size_t{130}}) {
    for (size_t m : {size_t{1}, size_t{7}, size_t{128}, size_t{300}}) {
      CAPTURE(c);
      CAPTURE(m);
      std::vector<float> x(m * c);
      for (float& v : x) v = nd(rng) * (1.0f + static_cast<float>(&v - x.data()) * 1e-3f);
      std::vector<double> h(c * c, 0.0), r(c * c, 0.0);
      std::vector<float> work;
      calib_detail::accumulate_gram(x.data(), m, c, h.data(), &work);
      calib_detail::accumulate_gram__ref(x.data(), m, c, r.data());
      double worst = 0.0;
      for (size_t i = 0; i < c; ++i)
        for (size_t j = i; j < c; ++j) {
          // relative to the Cauchy-Schwarz bound sqrt(H_ii H_jj) of the entry
          const double scale = std::sqrt(r[i * c + i] * r[j * c + j]);
          worst = std::max(worst, std::fabs(h[i * c + j] - r[i * c + j]) / scale);
        }
      CHECK(worst < 2e-6);
    }
  }
  for (int n : {1, 2, 3, 4, 5, 9, 64, 131}) {
    CAPTURE(n);
    const size_t N = static_cast<size_t>(n), T = N + 20;
    std::vector<float> x(T * N);
    for (float& v : x) v = nd(rng);
    std::vector<double> h(N * N, 0.0);
    calib_detail::accumulate_gram__ref(x.data(), T, N, h.data());
    for (size_t i = 0; i < N; ++i) {
      h[i * N + i] += 0.01 * static_cast<double>(T);
      for (size_t j = 0; j < i; ++j) h[i * N + j] = h[j * N + i];
    }
    std::vector<float> u, ur;
    REQUIRE(calib_detail::upper_cholesky_of_inverse(h, n, &u));
    REQUIRE(calib_detail::upper_cholesky_of_inverse__ref(h, n, &ur));
    float umax = 0.0f, worst = 0.0f;
    for (size_t i = 0; i < N * N; ++i) {
      umax = std::max(umax, std::fabs(ur[i]));
      worst = std::max(worst, std::fabs(u[i] - ur[i]));
    }
    CHECK(worst <= 1e-6f * umax);
    // U^T U H = I.
    std::vector<double> uu(N * N, 0.0);
    for (size_t l = 0; l < N; ++l)
      for (size_t i = l; i < N; ++i)
        for (size_t k = l; k < N; ++k) uu[i * N + k] += static_cast<double>(u[l * N + i]) * u[l * N + k];
    double off = 0.0;
    for (size_t i = 0; i < N; ++i)
      for (size_t j = 0; j < N; ++j) {
        double v = 0.0;
        for (size_t k = 0; k < N; ++k) v += uu[i * N + k] * h[k * N + j];
        off = std::max(off, std::fabs(v - (i == j ? 1.0 : 0.0)));
      }
    CHECK(off < 1e-4);
  }
  std::vector<double> neg = {1.0, 2.0, 2.0, 1.0};  // indefinite
  std::vector<float> u;
  CHECK_FALSE(calib_detail::upper_cholesky_of_inverse(neg, 2, &u));
  CHECK_FALSE(calib_detail::upper_cholesky_of_inverse__ref(neg, 2, &u));
}
