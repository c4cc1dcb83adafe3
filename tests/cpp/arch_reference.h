// What test_t5.cpp and test_blip.cpp share: the encoder-decoder reference fixtures
// (tests/fixtures/arch/<name>/: config.json, model.safetensors and the float64 reference's
// reference.json, written by tests/web/helpers/*-fixtures.ts), relative logit differences, and the
// check of every quantized scheme through the module layer (report, footprint, save/load).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "io/json.h"
#include "test_util.h"
#include "webquant/causal_lm.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"

namespace webquant::testing {

// The files of tests/fixtures/arch/<name> and the reference's decoder ids and logits.
struct ArchReference {
  std::string config, bytes;
  io::SafetensorsFile file;
  io::JsonValue ref;             // reference.json
  std::vector<int32_t> decoder;  // the decoder ids the logits are of
  int vocab = 0;
  std::vector<double> logits;  // [decoder, vocab]
};

inline std::vector<int32_t> json_ints(const io::JsonValue& ref, const char* key) {
  std::vector<int32_t> out;
  for (const io::JsonValue& v : ref.get(key)->array) out.push_back(static_cast<int32_t>(v.number));
  return out;
}

// Reads and parses tests/fixtures/arch/<name> into *f.
inline void load_arch_reference(const std::string& name, ArchReference* f) {
  const std::string dir = std::string(WQ_FIXTURE_DIR) + "/arch/" + name + "/";
  f->config = read_file(dir + "config.json");
  f->bytes = read_file(dir + "model.safetensors");
  REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(f->bytes.data()), f->bytes.size(), &f->file).ok());
  REQUIRE(io::parse_json(read_file(dir + "reference.json"), &f->ref).ok());
  f->decoder = json_ints(f->ref, "decoder");
  f->vocab = static_cast<int>(f->ref.get("vocab")->number);
  for (const io::JsonValue& v : f->ref.get("logits")->array) f->logits.push_back(v.number);
  REQUIRE(f->logits.size() == f->decoder.size() * static_cast<size_t>(f->vocab));
}

// A model of tests/fixtures/arch/<name> (config.json + model.safetensors), float32.
inline std::unique_ptr<CausalLM> load_arch_model(const std::string& name) {
  const std::string dir = std::string(WQ_FIXTURE_DIR) + "/arch/" + name + "/";
  const std::string bytes = read_file(dir + "model.safetensors");
  io::SafetensorsFile file;
  REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &file).ok());
  std::unique_ptr<CausalLM> m;
  REQUIRE(CausalLM::load(read_file(dir + "config.json"), {&file}, &m).ok());
  return m;
}

// max |a - ref| / max |ref| over rows [first, first + rows) of the reference.
inline double rel_diff(const std::vector<float>& a, const ArchReference& f, size_t first, size_t rows) {
  double d = 0, mx = 0;
  const size_t V = static_cast<size_t>(f.vocab);
  for (size_t i = 0; i < rows * V; ++i) {
    const double r = f.logits[first * V + i];
    d = std::max(d, std::fabs(a[i] - r));
    mx = std::max(mx, std::fabs(r));
  }
  return d / mx;
}

// max |a - b| / max |b|.
inline double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0, mx = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d = std::max(d, static_cast<double>(std::fabs(a[i] - b[i])));
    mx = std::max(mx, static_cast<double>(std::fabs(b[i])));
  }
  return d / mx;
}

struct SchemeCase {
  LinearScheme scheme;
  int group;
  bool asym;
  double bound;  // max |logit - fp32| / max |fp32|, about twice the value measured
};

// For each case, quantizes a fresh load() with the case's scheme and checks: every linear layer is
// in the report and quantized with that scheme but `excluded_head`, which the default excludes
// and which keeps its float32 bytes (empty: options.exclude is cleared, the head is quantized too);
// fewer linear bytes than float32; logits(model) moved from float32's by more than 0 and less than
// the case's bound; and save -> load gives the same logits bit for bit.
inline void check_quantized_schemes(const std::function<std::unique_ptr<CausalLM>()>& load,
                                    const std::function<std::vector<float>(CausalLM&)>& logits,
                                    const std::vector<SchemeCase>& cases, const std::string& excluded_head) {
  auto ref_model = load();
  const std::vector<float> fp32 = logits(*ref_model);
  for (const SchemeCase& c : cases) {
    CAPTURE(static_cast<int>(c.scheme));
    auto m = load();
    ModelQuantOptions q;
    q.default_spec = {c.scheme, c.asym, c.group};
    if (excluded_head.empty()) q.exclude = {};  // the lm_head too
    std::vector<LayerQuantReport> report;
    REQUIRE(m->quantize(q, &report).ok());
    CHECK(report.size() == m->linear_names().size());
    for (const LayerQuantReport& r : report) {
      const bool head = !excluded_head.empty() && r.name == excluded_head;
      CHECK(r.quantized == !head);
      if (!head) CHECK(r.scheme_id == c.scheme);
    }
    const MemoryFootprint fp = m->memory_footprint();
    CHECK(fp.linear < ref_model->memory_footprint().linear);
    if (!excluded_head.empty()) CHECK(fp.lm_head == ref_model->memory_footprint().lm_head);
    const std::vector<float> ql = logits(*m);
    const double d = rel_diff(ql, fp32);
    MESSAGE("scheme " << std::string(linear_scheme_name(c.scheme)) << ": max |logit - fp32| / max |fp32| = " << d);
    CHECK(d > 0);
    CHECK(d < c.bound);
    // Save and load back: the same logits bit for bit.
    std::vector<CheckpointFile> files;
    REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
    REQUIRE(files.size() == 2);
    io::SafetensorsFile st;
    REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &st).ok());
    const std::string config(files[0].bytes.begin(), files[0].bytes.end());
    std::unique_ptr<CausalLM> back;
    Status s = load_checkpoint(config, {&st}, &back);
    REQUIRE_MESSAGE(s.ok(), s.message);
    CHECK(logits(*back) == ql);
  }
}

}  // namespace webquant::testing
