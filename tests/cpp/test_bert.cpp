// BERT (webquant/encoder_model.h) against its independent float64 reference, natively (and as
// wasm under Node): tests/fixtures/bert/<name>/ holds a synthetic checkpoint and the reference
// hidden states, pooled embeddings and MLM logits of a padded two-sequence batch, written by
// tests/web/helpers/bert-fixtures.ts from helpers/ref/bert.ts (no code shared with the engine).
// Also: padding does not change a sequence's rows, typed errors for bad inputs, every quantized
// scheme through the module layer with its bound, and save -> load of the quantized checkpoint.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "test_util.h"
#include "webquant/encoder_model.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"

using namespace webquant;
using webquant::testing::read_file;

namespace {

std::vector<double> numbers(const io::JsonValue& ref, const char* key) {
  std::vector<double> v;
  for (const io::JsonValue& x : ref.get(key)->array) v.push_back(x.number);
  return v;
}

struct Fixture {
  std::string config, bytes;
  io::SafetensorsFile file;
  size_t batch = 0, seq = 0, hidden_size = 0, vocab = 0;
  std::vector<int32_t> ids, types;
  std::vector<uint8_t> mask;
  std::vector<double> hidden, mean, cls, mlm;
  EncoderBatch view() const {
    EncoderBatch b;
    b.input_ids = ids.data();
    b.token_type_ids = types.data();
    b.attention_mask = mask.data();
    b.batch = batch;
    b.seq_len = seq;
    return b;
  }
};

std::unique_ptr<Fixture> fixture(const std::string& name) {
  auto f = std::make_unique<Fixture>();
  const std::string dir = std::string(WQ_FIXTURE_DIR) + "/bert/" + name + "/";
  f->config = read_file(dir + "config.json");
  f->bytes = read_file(dir + "model.safetensors");
  REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(f->bytes.data()), f->bytes.size(), &f->file).ok());
  io::JsonValue ref;
  REQUIRE(io::parse_json(read_file(dir + "reference.json"), &ref).ok());
  f->batch = static_cast<size_t>(ref.get("batch")->number);
  f->seq = static_cast<size_t>(ref.get("seq")->number);
  f->hidden_size = static_cast<size_t>(ref.get("hidden_size")->number);
  f->vocab = static_cast<size_t>(ref.get("vocab")->number);
  for (double v : numbers(ref, "ids")) f->ids.push_back(static_cast<int32_t>(v));
  for (double v : numbers(ref, "types")) f->types.push_back(static_cast<int32_t>(v));
  for (double v : numbers(ref, "mask")) f->mask.push_back(static_cast<uint8_t>(v));
  f->hidden = numbers(ref, "hidden");
  f->mean = numbers(ref, "mean");
  f->cls = numbers(ref, "cls");
  f->mlm = numbers(ref, "mlm");
  return f;
}

std::unique_ptr<EncoderModel> load(const Fixture& f, const std::string& config = "") {
  std::unique_ptr<EncoderModel> m;
  Status st = EncoderModel::load(config.empty() ? f.config : config, {&f.file}, &m);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
  return d;
}

// Smallest cosine similarity between matching rows of width w.
double min_cosine(const std::vector<float>& a, const std::vector<float>& b, size_t w) {
  double worst = 1;
  for (size_t r = 0; r * w < a.size(); ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t j = 0; j < w; ++j) {
      ab += double(a[r * w + j]) * b[r * w + j];
      aa += double(a[r * w + j]) * a[r * w + j];
      bb += double(b[r * w + j]) * b[r * w + j];
    }
    worst = std::min(worst, ab / std::sqrt(aa * bb));
  }
  return worst;
}

std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, from);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("bert: fp32 hidden states, embeddings and MLM logits agree with the float64 reference") {
  for (const std::string name : {"bert-mlm", "minilm"}) {
    CAPTURE(name);
    auto f = fixture(name);
    auto m = load(*f);
    CHECK(m->info().has_mlm_head == (name == "bert-mlm"));
    std::vector<float> hidden, mean, cls;
    REQUIRE(m->forward(f->view(), &hidden).ok());
    // float32 rounding through 2 layers (LayerNorm outputs of magnitude ~3). Measured max |diff|:
    // hidden 6.8e-7, mean-pooled 4.9e-8, MLM logits 7.3e-7.
    CHECK(max_abs_diff(hidden, f->hidden) < 3e-6);
    REQUIRE(m->embed(f->view(), Pooling::kMean, true, &mean).ok());
    CHECK(max_abs_diff(mean, f->mean) < 2e-7);
    REQUIRE(m->embed(f->view(), Pooling::kCls, false, &cls).ok());
    CHECK(max_abs_diff(cls, f->cls) < 3e-6);
    if (!f->mlm.empty()) {
      std::vector<int32_t> rows(f->batch * f->seq);
      for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int32_t>(i);
      std::vector<float> logits;
      REQUIRE(m->mlm_logits(f->view(), rows.data(), rows.size(), &logits).ok());
      CHECK(max_abs_diff(logits, f->mlm) < 3e-6);
    }
  }
}

TEST_CASE("bert: padding and batching do not change a sequence's rows") {
  auto f = fixture("bert-mlm");
  auto m = load(*f);
  std::vector<float> batched, alone;
  REQUIRE(m->forward(f->view(), &batched).ok());
  // Sequence 1 alone, its 6 real tokens, no padding.
  EncoderBatch b;
  b.input_ids = &f->ids[f->seq];
  b.token_type_ids = &f->types[f->seq];
  b.batch = 1;
  b.seq_len = 6;
  REQUIRE(m->forward(b, &alone).ok());
  const size_t H = f->hidden_size;
  double d = 0;
  for (size_t i = 0; i < 6 * H; ++i) d = std::max(d, double(std::fabs(alone[i] - batched[f->seq * H + i])));
  CHECK(d < 1e-5);
}

TEST_CASE("bert: bad inputs are typed errors") {
  auto f = fixture("bert-mlm");
  auto m = load(*f);
  std::vector<float> out;
  EncoderBatch b = f->view();
  std::vector<int32_t> long_ids(65, 1);
  EncoderBatch too_long;
  too_long.input_ids = long_ids.data();
  too_long.batch = 1;
  too_long.seq_len = long_ids.size();
  Status st = m->forward(too_long, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("too long") != std::string::npos);
  CHECK(st.message.find("64") != std::string::npos);

  std::vector<uint8_t> empty_mask = f->mask;
  std::fill(empty_mask.begin() + static_cast<long>(f->seq), empty_mask.end(), 0);
  b.attention_mask = empty_mask.data();
  st = m->embed(b, Pooling::kMean, true, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("sequence 1 is empty") != std::string::npos);

  std::vector<int32_t> bad_ids = f->ids;
  bad_ids[3] = 96;
  b = f->view();
  b.input_ids = bad_ids.data();
  st = m->forward(b, &out);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(st.message.find("token id 96") != std::string::npos);

  std::vector<int32_t> bad_types = f->types;
  bad_types[0] = 2;
  b = f->view();
  b.token_type_ids = bad_types.data();
  CHECK(m->forward(b, &out).code == StatusCode::kInvalidArgument);

  b = f->view();
  b.batch = 0;
  CHECK(m->forward(b, &out).code == StatusCode::kInvalidArgument);

  const int32_t row = static_cast<int32_t>(f->batch * f->seq);
  CHECK(m->mlm_logits(f->view(), &row, 1, &out).code == StatusCode::kInvalidArgument);

  auto mini = fixture("minilm");
  auto e = load(*mini);
  const int32_t zero = 0;
  st = e->mlm_logits(mini->view(), &zero, 1, &out);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("masked-LM") != std::string::npos);

  std::unique_ptr<EncoderModel> none;
  st = EncoderModel::load(replace_once(f->config, "\"absolute\"", "\"relative_key\""), {&f->file}, &none);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("position_embedding_type") != std::string::npos);
  st = EncoderModel::load(replace_once(f->config, "\"model_type\": \"bert\"", "\"model_type\": \"t5\""), {&f->file}, &none);
  CHECK(st.code == StatusCode::kUnsupported);
  CHECK(st.message.find("supported: bert") != std::string::npos);
  CHECK(none == nullptr);
}

TEST_CASE("bert: layout names, optional prefix and the tied MLM decoder") {
  auto f = fixture("bert-mlm");
  ModelLayout layout;
  EncoderInfo info;
  REQUIRE(EncoderModel::layout(f->config, &layout, &info).ok());
  CHECK(layout.optional_prefix == "bert.");
  REQUIRE(layout.linears.size() == 2 * 6 + 2);
  CHECK(layout.linears[0].name == "bert.encoder.layer.0.attention.self.query");
  CHECK(layout.linears.back().name == "cls.predictions.decoder");
  CHECK(layout.linears.back().tied_to == "bert.embeddings.word_embeddings.weight");
  CHECK(layout.linears.back().is_head);
  auto m = load(*f);
  const MemoryFootprint fp = m->memory_footprint();
  CHECK(fp.lm_head == 0);  // tied: reads the embedding
  CHECK(fp.kv_cache == 0);
  CHECK(fp.embedding == (96 + 64 + 2) * 32 * sizeof(float));
}

TEST_CASE("bert: every quantized scheme, its bound vs fp32, and save -> load bit for bit") {
  auto f = fixture("bert-mlm");
  auto ref = load(*f);
  std::vector<float> want, want_logits;
  REQUIRE(ref->embed(f->view(), Pooling::kMean, true, &want).ok());
  std::vector<int32_t> rows = {1, 4, 10};
  REQUIRE(ref->mlm_logits(f->view(), rows.data(), rows.size(), &want_logits).ok());
  struct Case {
    LinearQuantSpec spec;
    double min_cos;  // smallest cosine of the mean-pooled embeddings vs fp32
  };
  // Measured on this fixture (32-wide synthetic layers, std 0.15): w8a16 per channel 0.999968,
  // w8a8 0.999957, w8a16 g16 asym 0.999984, w4a16 g16 0.990974, w4a8 g16 asym 0.994789, w2a16 g16
  // 0.677779 (bounds leave a few times the measured loss 1 - cos).
  const Case cases[] = {
      {{LinearScheme::kW8A16, false, 0}, 0.9998},   {{LinearScheme::kW8A8, false, 0}, 0.9998},
      {{LinearScheme::kW8A16, true, 16}, 0.9999},   {{LinearScheme::kW4A16, false, 16}, 0.96},
      {{LinearScheme::kW4A8, true, 16}, 0.97},      {{LinearScheme::kW2A16, false, 16}, 0.4},
  };
  for (const Case& c : cases) {
    CAPTURE(static_cast<int>(c.spec.scheme));
    CAPTURE(c.spec.group_size);
    auto m = load(*f);
    ModelQuantOptions q;
    q.default_spec = c.spec;
    std::vector<LayerQuantReport> report;
    REQUIRE(m->quantize(q, &report).ok());
    REQUIRE(report.size() == 14);
    for (size_t i = 0; i + 1 < report.size(); ++i) CHECK(report[i].quantized);
    CHECK_FALSE(report.back().quantized);  // cls.predictions.decoder, excluded by default
    CHECK(report.back().name == "cls.predictions.decoder");
    CHECK(m->memory_footprint().linear < ref->memory_footprint().linear);
    std::vector<float> got;
    REQUIRE(m->embed(f->view(), Pooling::kMean, true, &got).ok());
    const double cos = min_cosine(got, want, f->hidden_size);
    INFO("min cosine " << cos);
    CHECK(cos > c.min_cos);
    CHECK(cos < 1.0);

    std::vector<CheckpointFile> files;
    REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
    REQUIRE(files.size() == 2);
    io::SafetensorsFile st;
    REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &st).ok());
    const std::string cfg(files[0].bytes.begin(), files[0].bytes.end());
    std::unique_ptr<EncoderModel> back;
    Status s = EncoderModel::load(cfg, {&st}, &back);
    REQUIRE_MESSAGE(s.ok(), s.message);
    std::vector<float> again, l1, l2;
    REQUIRE(back->embed(f->view(), Pooling::kMean, true, &again).ok());
    CHECK(again == got);
    REQUIRE(m->mlm_logits(f->view(), rows.data(), rows.size(), &l1).ok());
    REQUIRE(back->mlm_logits(f->view(), rows.data(), rows.size(), &l2).ok());
    CHECK(l1 == l2);
  }
}

TEST_CASE("bert: a BertModel checkpoint with bare names (no 'bert.' prefix) saves with the full names and loads back") {
  auto f = fixture("minilm");
  CHECK(f->file.find("embeddings.word_embeddings.weight") != nullptr);
  auto m = load(*f);
  std::vector<float> want;
  REQUIRE(m->embed(f->view(), Pooling::kMean, true, &want).ok());
  std::vector<CheckpointFile> files;
  REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
  io::SafetensorsFile st;
  REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &st).ok());
  CHECK(st.find("bert.embeddings.word_embeddings.weight") != nullptr);
  const std::string cfg(files[0].bytes.begin(), files[0].bytes.end());
  std::unique_ptr<EncoderModel> back;
  REQUIRE(EncoderModel::load(cfg, {&st}, &back).ok());
  std::vector<float> got;
  REQUIRE(back->embed(f->view(), Pooling::kMean, true, &got).ok());
  CHECK(got == want);
}
