// The real karpathy/stories260K as the tests use it: the parsed files, a fresh model, token walks
// and their logits, a saved checkpoint parsed as a loader sees it, and the save -> load round trip
// every scheme must survive bit for bit. Shared by every test file that loads stories260K
// (test_checkpoint*.cpp, test_streaming.cpp, test_llama*.cpp, test_gptq*.cpp, test_half.cpp,
// test_activation_quant_model.cpp, test_gguf_q4_export.cpp). The files are read and parsed once per process.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/json.h"
#include "test_util.h"
#include "webquant/calibration.h"
#include "webquant/convert.h"
#include "webquant/causal_lm.h"
#include "webquant/llama.h"
#include "webquant/model_checkpoint.h"
#include "webquant/pack.h"
#include "webquant/safetensors.h"

namespace webquant::testing {

// The local Hub mirror's copy of the checkpoint.
inline const std::string kDir = std::string(WQ_SHARED_DIR) + "/hub/karpathy/stories260K/";

struct Stories {
  std::string config_text;
  std::string tokenizer_text;  // tokenizer.json
  std::string bytes;
  io::SafetensorsFile file;
  LlamaConfig config;
};

inline const Stories& stories() {
  static Stories* s = [] {
    auto* st = new Stories();
    st->config_text = read_file(kDir + "config.json");
    st->tokenizer_text = read_file(kDir + "tokenizer.json");
    st->bytes = read_file(kDir + "model.safetensors");
    REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(st->bytes.data()), st->bytes.size(),
                                  &st->file).ok());
    REQUIRE(parse_llama_config(st->config_text, &st->config).ok());
    return st;
  }();
  return *s;
}

inline std::unique_ptr<CausalLM> load_stories(const LoadOptions& opts = {}) {
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(stories().config_text, {&stories().file}, &m, opts);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

// n token ids: BOS, then a pseudo-random walk through the vocabulary (ids 3..511) from `seed`.
inline std::vector<int32_t> walk(size_t n, uint32_t seed) {
  std::vector<int32_t> s = {1};
  uint32_t x = seed;
  while (s.size() < n) {
    x = x * 1664525u + 1013904223u;
    s.push_back(static_cast<int32_t>(3 + (x >> 8) % 509));
  }
  return s;
}

// The checkpoint tests' fixed sequence: 40 tokens of the walk from seed 12345.
inline const std::vector<int32_t>& sequence() {
  static const std::vector<int32_t> seq = walk(40, 12345);
  return seq;
}

// Logits of every position of `seq` from a reset model: [seq.size(), vocab].
inline std::vector<float> all_logits(CausalLM& m, const std::vector<int32_t>& seq) {
  m.reset();
  std::vector<float> logits;
  Status st = m.forward(seq.data(), seq.size(), true, &logits);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return logits;
}

inline std::vector<float> all_logits(CausalLM& m) { return all_logits(m, sequence()); }

inline bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// max |a - b| over two equally long vectors (the differences taken in double: exact).
inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

// quantize_calibrated (required to succeed) whose progress steps are returned as "done/total label".
inline std::vector<std::string> quantize_calibrated_steps(CausalLM* m, const ModelQuantOptions& o,
                                                          const CalibrationOptions& c,
                                                          std::vector<LayerQuantReport>* report) {
  std::vector<std::string> labels;
  REQUIRE(quantize_calibrated(m, o, c, report, [&](int done, int total, const std::string& label) {
            labels.push_back(std::to_string(done) + "/" + std::to_string(total) + " " + label);
            return true;
          }).ok());
  return labels;
}

struct Agreement {
  double mean_kl = 0, max_kl = 0, top1 = 0;
};

// KL(p_ref || p_q) per row (natural log) and top-1 agreement over rows of [rows, vocab] logits.
inline Agreement compare_logits(const std::vector<float>& ref, const std::vector<float>& q, size_t vocab) {
  const size_t rows = ref.size() / vocab;
  Agreement a;
  size_t same = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* x = &ref[r * vocab];
    const float* y = &q[r * vocab];
    double mx = -INFINITY, my = -INFINITY;
    for (size_t i = 0; i < vocab; ++i) mx = std::max(mx, double(x[i])), my = std::max(my, double(y[i]));
    double zx = 0, zy = 0;
    for (size_t i = 0; i < vocab; ++i) zx += std::exp(x[i] - mx), zy += std::exp(y[i] - my);
    double kl = 0;
    for (size_t i = 0; i < vocab; ++i) {
      const double lp = x[i] - mx - std::log(zx), lq = y[i] - my - std::log(zy);
      kl += std::exp(lp) * (lp - lq);
    }
    a.mean_kl += kl / rows;
    a.max_kl = std::max(a.max_kl, kl);
    same += argmax(x, vocab) == argmax(y, vocab);
  }
  a.top1 = double(same) / rows;
  return a;
}

// Safetensors shards written from per-shard tensor records and parsed back.
struct Shards {
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<io::SafetensorsFile> files;  // views into bytes

  std::vector<const io::SafetensorsFile*> shards() const {
    std::vector<const io::SafetensorsFile*> v;
    for (const auto& f : files) v.push_back(&f);
    return v;
  }
};

inline Shards write_shards(const std::vector<std::vector<io::TensorRecord>>& per_shard) {
  Shards r;
  r.bytes.resize(per_shard.size());
  r.files.resize(per_shard.size());
  for (size_t s = 0; s < per_shard.size(); ++s) {
    REQUIRE(io::write_safetensors(per_shard[s], {}, &r.bytes[s]).ok());
    Status st = io::parse_safetensors(r.bytes[s].data(), r.bytes[s].size(), &r.files[s]);
    REQUIRE_MESSAGE(st.ok(), st.message);
  }
  return r;
}

// A saved checkpoint, parsed as a loader would see it.
struct Saved {
  std::vector<CheckpointFile> files;
  std::vector<io::SafetensorsFile> parsed;  // one per .safetensors file, in file order
  std::string config;

  std::vector<const io::SafetensorsFile*> shards() const {
    std::vector<const io::SafetensorsFile*> v;
    for (const auto& f : parsed) v.push_back(&f);
    return v;
  }
  const CheckpointFile* file(const std::string& name) const {
    for (const auto& f : files) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
  const io::TensorView* tensor(const std::string& name) const {
    for (const auto& f : parsed) {
      if (const io::TensorView* t = f.find(name)) return t;
    }
    return nullptr;
  }
};

inline Saved save(const CausalLM& m, const CheckpointSaveOptions& opts = {},
           const std::string& config_text = stories().config_text) {
  Saved s;
  Status st = save_checkpoint(m.weights(), config_text, opts, &s.files);
  REQUIRE_MESSAGE(st.ok(), st.message);
  REQUIRE(s.files.size() >= 2);
  REQUIRE(s.files[0].name == "config.json");
  s.config.assign(s.files[0].bytes.begin(), s.files[0].bytes.end());
  size_t n = 0;
  for (const auto& f : s.files) n += f.name.size() > 12 && f.name.rfind(".safetensors") == f.name.size() - 12;
  s.parsed.resize(n);
  size_t i = 0;
  for (const auto& f : s.files) {
    if (!(f.name.size() > 12 && f.name.rfind(".safetensors") == f.name.size() - 12)) continue;
    Status p = io::parse_safetensors(f.bytes.data(), f.bytes.size(), &s.parsed[i++]);
    REQUIRE_MESSAGE(p.ok(), f.name << ": " << p.message);
  }
  return s;
}

inline std::unique_ptr<CausalLM> load_saved(const Saved& s, Status* status = nullptr) {
  std::unique_ptr<CausalLM> m;
  Status st = load_checkpoint(s.config, s.shards(), &m);
  if (status != nullptr) {
    *status = st;
    return m;
  }
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

inline io::JsonValue json(const std::string& text) {
  io::JsonValue v;
  Status st = io::parse_json(text, &v);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return v;
}

inline LinearQuantSpec spec(LinearScheme s, bool asym = false, int group = 32) {
  LinearQuantSpec q;
  q.scheme = s;
  q.asymmetric = asym;
  q.group_size = group;
  return q;
}

// Quantizes a fresh stories260K, saves, loads back: logits and every layer's integers must match.
inline void check_round_trip(const ModelQuantOptions& q, const std::string& label) {
  CAPTURE(label);
  auto m = load_stories();
  REQUIRE(m->quantize(q, nullptr).ok());
  const std::vector<float> ref = all_logits(*m);
  const Saved s = save(*m);
  auto back = load_saved(s);
  CHECK(bit_equal(all_logits(*back), ref));
  CHECK(back->memory_footprint().total == m->memory_footprint().total);
  // Saving the loaded model reproduces the checkpoint byte for byte.
  const Saved again = save(*back);
  REQUIRE(again.files.size() == s.files.size());
  for (size_t i = 0; i < s.files.size(); ++i) CHECK(again.files[i].bytes == s.files[i].bytes);
  for (const std::string& name : m->linear_names()) {
    CAPTURE(name);
    const LinearLayer* a = m->linear(name);
    const LinearLayer* b = back->linear(name);
    REQUIRE((a == nullptr) == (b == nullptr));
    if (a == nullptr) continue;
    CHECK(a->scheme() == b->scheme());
    CHECK(a->describe() == b->describe());  // the 172 fallback note included
    CHECK(a->weight_bytes() == b->weight_bytes());
    if (a->scheme() == LinearScheme::kF32) continue;
    LinearQuantizedData da, db;
    REQUIRE(a->export_quantized(&da).ok());
    REQUIRE(b->export_quantized(&db).ok());
    CHECK(da.q == db.q);
    CHECK(da.scales == db.scales);
    CHECK(da.zero_points == db.zero_points);
    CHECK(da.group_size == db.group_size);
    CHECK(da.asymmetric == db.asymmetric);
  }
}

// An editable copy of a parsed safetensors file.
struct Editable {
  struct T {
    std::string name, dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<T> tensors;
  std::map<std::string, std::string> metadata;

  explicit Editable(const io::SafetensorsFile& f) : metadata(f.metadata) {
    for (const io::TensorView& t : f.tensors) {
      tensors.push_back({t.name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
    }
  }
  T& at(const std::string& name) {
    for (T& t : tensors) {
      if (t.name == name) return t;
    }
    FAIL("no tensor " << name);
    return tensors.front();
  }
  void drop(const std::string& name) {
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].name == name) {
        tensors.erase(tensors.begin() + static_cast<long>(i));
        return;
      }
    }
    FAIL("no tensor " << name);
  }
  std::vector<uint8_t> bytes() const {
    std::vector<io::TensorRecord> r;
    for (const T& t : tensors) r.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
    std::vector<uint8_t> out;
    Status st = io::write_safetensors(r, metadata, &out);
    REQUIRE_MESSAGE(st.ok(), st.message);
    return out;
  }
};

}  // namespace webquant::testing
