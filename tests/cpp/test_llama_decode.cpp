// Llama model: the real stories260K greedy oracle, KV-cache consistency, forward-time input and
// context errors, and sampling (xoshiro128** stream, temperature / top-k / top-p / repetition
// penalty statistics, seeded determinism).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "stories_llama.h"
#include "webquant/causal_lm.h"

using namespace webquant;
using namespace webquant::testing;

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

TEST_CASE("llama: greedy over a vocabulary-sized row takes the first maximum; NaN errs, Inf wins") {
  // The greedy path without a repetition penalty is one SIMD pass (kernels::argmax_f32); these
  // rows put the maximum and its ties in every SIMD lane and in the scalar tail.
  const size_t vocab = 49157;
  std::vector<float> row(vocab);
  for (size_t i = 0; i < vocab; ++i) row[i] = std::sin(0.37f * static_cast<float>(i));
  Sampler greedy;
  int32_t tok = -1;
  for (size_t first : {size_t{0}, size_t{5}, size_t{11}, size_t{4099}, size_t{49150}, vocab - 1}) {
    std::vector<float> r = row;
    r[first] = 2.0f;
    for (size_t later = first + 1; later < vocab; later += 1237) r[later] = 2.0f;  // ties after it
    REQUIRE(greedy.sample(r.data(), vocab, nullptr, 0, &tok).ok());
    CHECK(tok == static_cast<int32_t>(first));
    CHECK(tok == argmax(r.data(), vocab));
    // With a repetition penalty the general path runs; penalizing other ids gives the same token.
    SamplingOptions rp;
    rp.repetition_penalty = 1.3f;
    Sampler pen(rp);
    const int32_t hist[1] = {static_cast<int32_t>((first + 1) % vocab)};
    REQUIRE(pen.sample(r.data(), vocab, hist, 1, &tok).ok());
    CHECK(tok == static_cast<int32_t>(first));
  }
  std::vector<float> r = row;
  r[30000] = INFINITY;
  r[40000] = INFINITY;
  REQUIRE(greedy.sample(r.data(), vocab, nullptr, 0, &tok).ok());
  CHECK(tok == 30000);  // +Inf is an ordinary maximum, the first one wins
  r[20000] = NAN;
  const Status st = greedy.sample(r.data(), vocab, nullptr, 0, &tok);
  CHECK(st.code == StatusCode::kNonFinite);
  CHECK(st.message.find("logit 20000 is NaN") != std::string::npos);
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
