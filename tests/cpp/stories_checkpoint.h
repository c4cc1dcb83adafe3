// The real karpathy/stories260K as the checkpoint tests use it: the parsed files, a fresh model,
// a fixed 40-token sequence and its logits, a saved checkpoint parsed as a loader sees it, and the
// save -> load round trip every scheme must survive bit for bit. Shared by test_checkpoint.cpp and
// test_streaming.cpp.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "io/json.h"
#include "webquant/convert.h"
#include "webquant/causal_lm.h"
#include "webquant/llama.h"
#include "webquant/model_checkpoint.h"
#include "webquant/pack.h"
#include "webquant/safetensors.h"


namespace webquant::testing {


inline const std::string kDir = std::string(WQ_SHARED_DIR) + "/hub/karpathy/stories260K/";

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot open " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Stories {
  std::string config_text;
  std::string bytes;
  io::SafetensorsFile file;
  LlamaConfig config;
};

inline const Stories& stories() {
  static Stories* s = [] {
    auto* st = new Stories();
    st->config_text = read_file(kDir + "config.json");
    st->bytes = read_file(kDir + "model.safetensors");
    REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(st->bytes.data()), st->bytes.size(),
                                  &st->file).ok());
    REQUIRE(parse_llama_config(st->config_text, &st->config).ok());
    return st;
  }();
  return *s;
}

inline std::unique_ptr<CausalLM> load_stories() {
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(stories().config_text, {&stories().file}, &m);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

// 40 token ids: BOS, then a fixed pseudo-random walk through the vocabulary.
inline const std::vector<int32_t>& sequence() {
  static const std::vector<int32_t> seq = [] {
    std::vector<int32_t> s = {1};
    uint32_t x = 12345;
    while (s.size() < 40) {
      x = x * 1664525u + 1013904223u;
      s.push_back(static_cast<int32_t>(3 + (x >> 8) % 509));
    }
    return s;
  }();
  return seq;
}

inline std::vector<float> all_logits(CausalLM& m) {
  m.reset();
  std::vector<float> logits;
  Status st = m.forward(sequence().data(), sequence().size(), true, &logits);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return logits;
}

inline bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
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

// Loads (config, one edited shard); returns the status.

}  // namespace webquant::testing
