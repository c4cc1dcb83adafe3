// Quantization-aware distillation (webquant/distill.h): the loss and every gradient against an
// independent float64 finite-difference reference (tests/reference/llama_distill.py ->
// tests/fixtures/distill/tiny, a tiny random Llama, and tiny-qwen2, with q/k/v biases and an untied
// head; int8 per-channel students), training on the real stories260K at 3 bits, finish() giving the
// model that was trained, the run's record in the saved checkpoint, and the typed errors.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "io/json.h"
#include "stories_checkpoint.h"
#include "test_util.h"
#include "webquant/distill.h"
#include "webquant/model_checkpoint.h"

namespace webquant {
namespace {

const std::string kFixtures = std::string(WQ_FIXTURE_DIR) + "/distill/";

struct Tiny {
  std::string config, bytes;
  io::SafetensorsFile file;
  io::JsonValue expected;
  std::unique_ptr<CausalLM> model;
};

// folder: "tiny" (llama, tied head) or "tiny-qwen2" (q/k/v biases, untied lm_head).
Tiny load_tiny(const std::string& folder = "tiny") {
  Tiny t;
  const std::string dir = kFixtures + folder + "/";
  t.config = testing::read_file(dir + "config.json");
  t.bytes = testing::read_file(dir + "model.safetensors");
  REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(t.bytes.data()), t.bytes.size(), &t.file).ok());
  REQUIRE(io::parse_json(testing::read_file(dir + "expected.json"), &t.expected).ok());
  REQUIRE(CausalLM::load(t.config, {&t.file}, &t.model).ok());
  return t;
}

ModelQuantOptions spec(LinearScheme scheme, bool asym, int group) {
  ModelQuantOptions q;
  q.default_spec.scheme = scheme;
  q.default_spec.asymmetric = asym;
  q.default_spec.group_size = group;
  return q;
}

std::vector<int32_t> tokens_of(const io::JsonValue& rows, size_t* batch, size_t* seq) {
  std::vector<int32_t> out;
  *batch = rows.array.size();
  *seq = rows.array[0].array.size();
  for (const auto& r : rows.array)
    for (const auto& v : r.array) out.push_back(static_cast<int32_t>(v.number));
  return out;
}

// Sequences the fp32 model samples (temperature 1), each starting at BOS.
std::vector<int32_t> sample(CausalLM& m, size_t count, size_t len, uint64_t seed) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < count; ++i) {
    SamplingOptions s;
    s.temperature = 1.0f;
    s.seed = seed + i;
    const int32_t bos = 1;
    std::vector<int32_t> gen;
    m.reset();
    REQUIRE(m.generate(&bos, 1, static_cast<int>(len), s, &gen).ok());
    gen.insert(gen.begin(), bos);
    gen.resize(len, 1);  // an early eos: pad with BOS (still valid text for the loss)
    out.insert(out.end(), gen.begin(), gen.end());
  }
  m.reset();
  return out;
}

// The loss and every gradient of the tiny fixture `folder` against its float64 reference.
void check_gradients(const std::string& folder) {
  CAPTURE(folder);
  Tiny t = load_tiny(folder);
  std::unique_ptr<QuantDistiller> d;
  REQUIRE(QuantDistiller::create(t.model.get(), spec(LinearScheme::kW8A16, false, 0), {}, &d).ok());
  size_t batch = 0, seq = 0;
  const std::vector<int32_t> tokens = tokens_of(*t.expected.get("tokens"), &batch, &seq);
  float loss = 0.0f;
  std::vector<std::vector<float>> grads;
  Status s = d->loss_and_gradients(tokens.data(), batch, seq, &loss, &grads);
  REQUIRE_MESSAGE(s.ok(), s.message);
  const double ref_loss = t.expected.get("loss")->number;
  CHECK(std::fabs(loss - ref_loss) <= 2e-3 * ref_loss);
  const std::vector<std::string> names = d->trained_names();
  REQUIRE(names.size() == 2 * 7 + 2 * 2 + 1);
  const io::JsonValue* ref = t.expected.get("grads");
  double worst = 0.0;
  for (size_t k = 0; k < names.size(); ++k) {
    const io::JsonValue* g = ref->get(names[k]);
    REQUIRE_MESSAGE(g != nullptr, names[k]);
    REQUIRE(g->array.size() == grads[k].size());
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < grads[k].size(); ++i) {
      const double e = grads[k][i] - g->array[i].number;
      num += e * e;
      den += g->array[i].number * g->array[i].number;
    }
    const double rel = std::sqrt(num / den);
    worst = std::max(worst, rel);
    CHECK_MESSAGE(rel < 3e-4, names[k] << ": relative gradient error " << rel);
  }
  MESSAGE("worst relative gradient error " << worst);
  // Nothing changed: the same call gives the same loss.
  float again = 0.0f;
  REQUIRE(d->evaluate(tokens.data(), batch, seq, &again).ok());
  CHECK(again == loss);
}

}  // namespace

TEST_CASE("distill: the KL loss and every gradient match the float64 finite-difference reference") {
  check_gradients("tiny");        // llama, tied head
  check_gradients("tiny-qwen2");  // qwen2: frozen q/k/v biases, untied lm_head
}

TEST_CASE("distill: training the int3 stories260K student lowers its KL on held-out text, and finish() gives that student") {
  auto m = testing::load_stories();
  const size_t seq = 32, kTrain = 64, kBatch = 4;
  const int kSteps = 40;
  const std::vector<int32_t> train = sample(*m, kTrain, seq, 100);
  const std::vector<int32_t> held = sample(*m, 4, seq, 1);
  std::vector<float> teacher_logits;  // of the held-out text, before the model changes
  for (size_t b = 0; b < 4; ++b) {
    std::vector<float> l;
    m->reset();
    REQUIRE(m->forward(held.data() + b * seq, seq, true, &l).ok());
    teacher_logits.insert(teacher_logits.end(), l.begin(), l.end());
  }
  ModelQuantOptions q = spec(LinearScheme::kW3A16, true, 32);
  DistillOptions o;
  o.total_steps = kSteps;
  o.learning_rate = 1e-3f;
  std::unique_ptr<QuantDistiller> d;
  REQUIRE(QuantDistiller::create(m.get(), q, o, &d).ok());
  float before = 0.0f, after = 0.0f, first = 0.0f;
  REQUIRE(d->evaluate(held.data(), 4, seq, &before).ok());
  for (int step = 0; step < kSteps; ++step) {
    const size_t b = (static_cast<size_t>(step) * kBatch) % kTrain;
    float l = 0.0f;
    Status s = d->step(train.data() + b * seq, kBatch, seq, &l);
    REQUIRE_MESSAGE(s.ok(), s.message);
    if (step == 0) first = l;
  }
  REQUIRE(d->evaluate(held.data(), 4, seq, &after).ok());
  MESSAGE("held-out KL before " << before << ", after " << kSteps << " steps " << after << " (first training loss " << first << ")");
  CHECK(after < 0.55f * before);  // measured 0.449 -> 0.210
  CHECK(d->steps() == kSteps);

  std::vector<LayerQuantReport> report;
  REQUIRE(d->finish(&report).ok());
  CHECK(m->linear("model.layers.0.mlp.up_proj")->scheme() == LinearScheme::kW3A16);
  // The quantized model's KL on the held-out text is the student's.
  const size_t V = 512;
  double kl = 0.0;
  for (size_t b = 0; b < 4; ++b) {
    std::vector<float> l;
    m->reset();
    REQUIRE(m->forward(held.data() + b * seq, seq, true, &l).ok());
    for (size_t r = 0; r < seq; ++r) {
      const float* t = &teacher_logits[(b * seq + r) * V];
      const float* s = &l[r * V];
      double mt = t[0], ms = s[0];
      for (size_t i = 1; i < V; ++i) { mt = std::max(mt, double(t[i])); ms = std::max(ms, double(s[i])); }
      double zt = 0, zs = 0;
      for (size_t i = 0; i < V; ++i) { zt += std::exp(t[i] - mt); zs += std::exp(s[i] - ms); }
      for (size_t i = 0; i < V; ++i) {
        const double lt = t[i] - mt - std::log(zt), ls = s[i] - ms - std::log(zs);
        kl += std::exp(lt) * (lt - ls);
      }
    }
  }
  kl /= static_cast<double>(4 * seq);
  CHECK(std::fabs(kl - after) <= 1e-3 * after);
  float again = 0.0f;
  CHECK(d->evaluate(held.data(), 4, seq, &again).code == StatusCode::kInvalidArgument);
  CHECK(d->finish(nullptr).code == StatusCode::kInvalidArgument);
}

TEST_CASE("distill: typed errors") {
  Tiny t = load_tiny();
  std::unique_ptr<QuantDistiller> d;
  ModelQuantOptions q = spec(LinearScheme::kW8A16, false, 0);
  DistillOptions bad;
  bad.learning_rate = 0.0f;
  CHECK(QuantDistiller::create(t.model.get(), q, bad, &d).code == StatusCode::kInvalidArgument);
  ModelQuantOptions head = q;
  head.exclude.clear();
  CHECK(QuantDistiller::create(t.model.get(), head, {}, &d).code == StatusCode::kUnsupported);
  ModelQuantOptions gptq = q;
  gptq.method = QuantMethod::kGptq;
  CHECK(QuantDistiller::create(t.model.get(), gptq, {}, &d).code == StatusCode::kUnsupported);
  ModelQuantOptions emb = q;
  emb.embeddings = q.default_spec;
  CHECK(QuantDistiller::create(t.model.get(), emb, {}, &d).code == StatusCode::kUnsupported);
  ModelQuantOptions a8 = spec(LinearScheme::kW8A8, false, 0);
  CHECK(QuantDistiller::create(t.model.get(), a8, {}, &d).code == StatusCode::kUnsupported);
  ModelQuantOptions pruned = q;
  pruned.prune.kind = PruneSpec::Kind::k2of4;
  CHECK(QuantDistiller::create(t.model.get(), pruned, {}, &d).code == StatusCode::kUnsupported);
  ModelQuantOptions hqq = spec(LinearScheme::kW4A16, true, 8);
  hqq.method = QuantMethod::kHqq;
  REQUIRE(QuantDistiller::create(t.model.get(), hqq, {}, &d).ok());
  std::vector<int32_t> tok = {1, 5, 40, 3};  // 40 >= vocab 32
  float l = 0.0f;
  CHECK(d->step(tok.data(), 1, 4, &l).code == StatusCode::kInvalidArgument);
  CHECK(d->step(tok.data(), 0, 4, &l).code == StatusCode::kInvalidArgument);
  std::vector<int32_t> long_seq(65, 1);  // max_position_embeddings 64
  CHECK(d->step(long_seq.data(), 1, 65, &l).code == StatusCode::kInvalidArgument);
  tok[2] = 4;
  CHECK(d->step(tok.data(), 1, 4, &l).ok());
  // A quantized model cannot be a teacher.
  REQUIRE(t.model->quantize(q, nullptr).ok());
  CHECK(QuantDistiller::create(t.model.get(), q, {}, &d).code == StatusCode::kUnsupported);
  // A half model neither.
  LoadOptions half;
  half.dtype = FloatType::kF16;
  std::unique_ptr<CausalLM> h;
  REQUIRE(CausalLM::load(t.config, {&t.file}, &h, half).ok());
  CHECK(QuantDistiller::create(h.get(), q, {}, &d).code == StatusCode::kUnsupported);
}

}  // namespace webquant

namespace webquant {

TEST_CASE("distill: quantize_distilled samples its own text, reports progress, and stops cleanly") {
  auto m = testing::load_stories();
  ModelQuantOptions q;
  q.default_spec.scheme = LinearScheme::kW3A16;
  q.default_spec.asymmetric = true;
  q.default_spec.group_size = 32;
  DistillRun run;
  run.steps = 6;
  run.batch = 2;
  run.seq_len = 24;
  run.samples = 4;
  // Stopped at step 3: an error, and the model is still float.
  int seen = 0;
  Status s = quantize_distilled(m.get(), q, run, nullptr, [&](int step, int total, float loss) {
    CHECK(total == 6);
    CHECK(loss > 0.0f);
    seen = step;
    return step < 3;
  });
  CHECK(s.code == StatusCode::kAborted);
  CHECK(seen == 3);
  CHECK(m->linear("model.layers.0.mlp.up_proj")->scheme() == LinearScheme::kF32);
  // Too few given tokens for one sequence.
  std::vector<int32_t> few(10, 5);
  run.tokens = few.data();
  run.count = few.size();
  CHECK(quantize_distilled(m.get(), q, run, nullptr).code == StatusCode::kInvalidArgument);
  run.tokens = nullptr;
  run.steps = 0;
  CHECK(quantize_distilled(m.get(), q, run, nullptr).code == StatusCode::kInvalidArgument);
  run.steps = 6;
  std::vector<LayerQuantReport> report;
  REQUIRE(quantize_distilled(m.get(), q, run, &report).ok());
  CHECK(report.size() == 5 * 7 + 1);  // every linear, the excluded head included
  CHECK(m->linear("model.layers.4.self_attn.q_proj")->scheme() == LinearScheme::kW3A16);

  // The run's record: in quantization_config, and back from the saved checkpoint with the same
  // logits bit for bit; re-saving the loaded model keeps it.
  io::JsonValue rec;
  REQUIRE(io::parse_json(m->weights().distillation_record(), &rec).ok());
  CHECK(rec.get("steps")->number == 6);
  CHECK(rec.get("batch")->number == 2);
  CHECK(rec.get("sequence_length")->number == 24);
  CHECK(rec.get("learning_rate")->number == 0.0005);
  CHECK(rec.get("schedule")->string == "cosine");
  CHECK(rec.get("data")->string == "self-generated");
  CHECK(rec.get("sequences")->number == 4);
  CHECK(rec.get("seed")->number == 1);
  CHECK(rec.get("last_loss")->number < rec.get("first_loss")->number);
  std::vector<CheckpointFile> files;
  REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
  const std::string config(files[0].bytes.begin(), files[0].bytes.end());
  io::JsonValue cfg;
  REQUIRE(io::parse_json(config, &cfg).ok());
  REQUIRE(cfg.get("quantization_config")->get("distillation") != nullptr);
  CHECK(io::write_json(*cfg.get("quantization_config")->get("distillation")) == m->weights().distillation_record());
  io::SafetensorsFile st;
  REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &st).ok());
  std::unique_ptr<CausalLM> back;
  REQUIRE(load_checkpoint(config, {&st}, &back).ok());
  CHECK(back->weights().distillation_record() == m->weights().distillation_record());
  const std::vector<int32_t> ids = {1, 403, 261, 379, 302, 301, 1, 54, 410};
  std::vector<float> a, b;
  m->reset();
  REQUIRE(m->forward(ids.data(), ids.size(), true, &a).ok());
  REQUIRE(back->forward(ids.data(), ids.size(), true, &b).ok());
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == b[i]);
  CHECK(model_quantization_config(back->weights()).find("\"distillation\":{") != std::string::npos);
  // A record that is not an object is corrupt data.
  std::string bad = config;
  bad.replace(bad.find("\"distillation\":{"), 16, "\"distillation\":7,\"x\":{");
  io::SafetensorsFile no_meta = st;
  no_meta.metadata.erase("quantization_config");
  CHECK(load_checkpoint(bad, {&no_meta}, &back).code == StatusCode::kCorruptData);
}

}  // namespace webquant
