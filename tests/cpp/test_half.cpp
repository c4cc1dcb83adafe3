// Models in half precision (LoadOptions::dtype): fp16 / bf16 linear layers, embeddings and norms
// kept in the type, F16/BF16 safetensors read as stored, F32 rounded as torch's .to(), saving and
// reloading, quantizing from a half model, and the real stories260K against float32.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "stories_checkpoint.h"
#include "webquant/causal_lm.h"
#include "webquant/convert.h"
#include "webquant/linear.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"
#include "webquant/threads.h"

using namespace webquant;
using webquant::testing::all_logits;
using webquant::testing::read_file;
using webquant::testing::stories;

namespace {

std::unique_ptr<CausalLM> load(FloatType t, const std::vector<const io::SafetensorsFile*>& shards,
                               const std::string& config = stories().config_text) {
  LoadOptions o;
  o.dtype = t;
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(config, shards, &m, o);
  REQUIRE_MESSAGE(st.ok(), st.message);
  return m;
}

// <s> "Zoo" followed by ten arbitrary tokens (all logits rows are compared).
const std::vector<int32_t> kSeq = {1, 410, 469, 347, 281, 261, 443, 109, 205, 460, 18, 307, 204, 285};

std::vector<int32_t> greedy(CausalLM& m, int n) {
  m.reset();
  std::vector<int32_t> out;
  REQUIRE(m.generate(kSeq.data(), 4, n, SamplingOptions{}, &out).ok());
  return out;
}

struct Diff {
  double mean_abs = 0, max_abs = 0, mean_kl = 0;
};
Diff diff(const std::vector<float>& ref, const std::vector<float>& q, size_t vocab) {
  REQUIRE(ref.size() == q.size());
  Diff d;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double e = std::fabs(double(ref[i]) - double(q[i]));
    d.mean_abs += e / double(ref.size());
    d.max_abs = std::max(d.max_abs, e);
  }
  d.mean_kl = webquant::testing::compare_logits(ref, q, vocab).mean_kl;
  return d;
}

// A checkpoint (default stories260K) re-serialized with every tensor in `dtype` ("F16" / "BF16"),
// rounded by the core.
struct HalfFile {
  std::vector<uint8_t> bytes;
  io::SafetensorsFile file;
};
HalfFile rewrite(const std::string& dtype, const io::SafetensorsFile& src = stories().file) {
  std::vector<std::vector<uint16_t>> storage;
  std::vector<io::TensorRecord> recs;
  storage.reserve(src.tensors.size());
  for (const io::TensorView& t : src.tensors) {
    std::vector<float> f(static_cast<size_t>(t.numel()));
    REQUIRE(io::tensor_to_f32(t, f.data()).ok());
    std::vector<uint16_t> h(f.size());
    for (size_t i = 0; i < f.size(); ++i) h[i] = dtype == "F16" ? fp32_to_fp16(f[i]) : fp32_to_bf16(f[i]);
    storage.push_back(std::move(h));
    recs.push_back({t.name, dtype, t.shape, reinterpret_cast<const uint8_t*>(storage.back().data()),
                    storage.back().size() * 2});
  }
  HalfFile r;
  REQUIRE(io::write_safetensors(recs, {}, &r.bytes).ok());
  REQUIRE(io::parse_safetensors(r.bytes.data(), r.bytes.size(), &r.file).ok());
  return r;
}

struct ThreadsGuard {
  ~ThreadsGuard() { set_num_threads(1); }
};

}  // namespace

TEST_CASE("half linear layers: f16/bf16 weights, f32 math, half the bytes, threads bit-identical") {
  const int out = 37, in = 203;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(size_t(out) * in), b(out), x(size_t(5) * in);
  for (float& v : w) v = nd(rng);
  for (float& v : b) v = nd(rng);
  for (float& v : x) v = nd(rng);
  for (LinearScheme s : {LinearScheme::kF16, LinearScheme::kBF16}) {
    const bool bf = s == LinearScheme::kBF16;
    const std::string scheme_name = linear_scheme_name(s);
    CAPTURE(scheme_name);
    std::unique_ptr<LinearLayer> layer;
    std::string note = "x";
    REQUIRE(make_linear_quantized(w.data(), out, in, b.data(), {s, false, 0}, &layer, &note).ok());
    CHECK(note.empty());
    CHECK(layer->scheme() == s);
    CHECK(layer->describe() == (bf ? "bf16" : "f16"));
    CHECK(layer->weight_bytes() == size_t(out) * in * 2 + size_t(out) * 4);
    LinearQuantizedData d;
    CHECK(layer->export_quantized(&d).code == StatusCode::kUnsupported);
    // The weights are W rounded to the type (torch's .to()), the bias too.
    std::vector<float> wd(w.size());
    layer->dequantize_weight(wd.data());
    for (size_t i = 0; i < w.size(); ++i) {
      const float r = bf ? bf16_to_fp32(fp32_to_bf16(w[i])) : fp16_to_fp32(fp32_to_fp16(w[i]));
      REQUIRE(std::memcmp(&wd[i], &r, 4) == 0);
    }
    // y = x dq(W)^T + b against a double reference, for decode (m = 1, 2) and prefill (m = 5).
    for (size_t m : {size_t(1), size_t(2), size_t(5)}) {
      std::vector<float> y(m * out);
      layer->forward(x.data(), m, y.data());
      for (size_t i = 0; i < m; ++i) {
        for (int j = 0; j < out; ++j) {
          double ref = layer->bias()[size_t(j)], mag = std::fabs(ref);
          for (int c = 0; c < in; ++c) {
            ref += double(x[i * in + c]) * wd[size_t(j) * in + c];
            mag += std::fabs(double(x[i * in + c]) * wd[size_t(j) * in + c]);
          }
          REQUIRE_MESSAGE(std::fabs(y[i * out + j] - ref) <= 1e-5 * mag, "m=" << m << " row " << i << " out " << j);
        }
      }
      // Bit-identical whatever the thread count.
      ThreadsGuard guard;
      set_num_threads(3);
      std::vector<float> y3(m * out);
      layer->forward(x.data(), m, y3.data());
      set_num_threads(1);
      CHECK(std::memcmp(y.data(), y3.data(), y.size() * 4) == 0);
    }
  }
  // Half layers are float layers: they have no quantized form and can't be built from one.
  CHECK(is_float_scheme(LinearScheme::kF16));
  CHECK(!is_float_scheme(LinearScheme::kW8A16));
  LinearQuantizedData bad;
  bad.scheme = LinearScheme::kF16;
  bad.out_features = bad.in_features = 1;
  std::unique_ptr<LinearLayer> l;
  CHECK(make_linear_from_quantized(bad, &l).code == StatusCode::kInvalidArgument);
}

TEST_CASE("float type names follow torch") {
  FloatType t;
  CHECK((parse_float_type("float16", &t) && t == FloatType::kF16));
  CHECK((parse_float_type("bfloat16", &t) && t == FloatType::kBF16));
  CHECK((parse_float_type("float32", &t) && t == FloatType::kF32));
  CHECK(!parse_float_type("float64", &t));
  CHECK(std::string(float_type_name(FloatType::kBF16)) == "bfloat16");
  LoadOptions o;
  o.dtype = static_cast<FloatType>(9);
  std::unique_ptr<CausalLM> m;
  Status st = CausalLM::load(stories().config_text, {&stories().file}, &m, o);
  CHECK(st.code == StatusCode::kInvalidArgument);
  CHECK(m == nullptr);
}

TEST_CASE("half dtype: F32 weights are rounded as torch's .to(), F16/BF16 ones kept bit for bit") {
  for (FloatType t : {FloatType::kF16, FloatType::kBF16}) {
    const bool bf = t == FloatType::kBF16;
    const std::string type_name = float_type_name(t);
    CAPTURE(type_name);
    auto m = load(t, {&stories().file});
    CHECK(m->dtype() == t);
    const Weights& w = m->weights();
    const io::TensorView* emb = stories().file.find("model.embed_tokens.weight");
    std::vector<float> f(static_cast<size_t>(emb->numel()));
    REQUIRE(io::tensor_to_f32(*emb, f.data()).ok());
    const Weights::Param* p = w.find_param("model.embed_tokens.weight");
    REQUIRE(p != nullptr);
    CHECK(p->type == t);
    CHECK(p->data.empty());
    REQUIRE(p->half.size() == f.size());
    for (size_t i = 0; i < f.size(); ++i) REQUIRE(p->half[i] == (bf ? fp32_to_bf16(f[i]) : fp32_to_fp16(f[i])));
    CHECK(w.find_param("model.norm.weight")->type == t);
    CHECK(m->linear("model.layers.0.mlp.down_proj")->scheme() == float_type_scheme(t));

    // The same model from a file already in the type: identical bits, hence identical logits.
    HalfFile h = rewrite(bf ? "BF16" : "F16");
    auto m2 = load(t, {&h.file});
    const Weights::Param* p2 = m2->weights().find_param("model.embed_tokens.weight");
    CHECK(std::memcmp(p2->half.data(), p->half.data(), p->half.size() * 2) == 0);
    CHECK(all_logits(*m, kSeq) == all_logits(*m2, kSeq));
    // A float32 model over the same (half-valued) weights computes the same math.
    auto f32 = load(FloatType::kF32, {&h.file});
    const Diff d = diff(all_logits(*f32, kSeq), all_logits(*m, kSeq), 512);
    MESSAGE(type_name << " kernels vs f32 kernels on the same weights: max |dlogit| " << d.max_abs);
    CHECK(d.max_abs < 5e-5);  // measured 1.1e-5 (f16), 1.2e-5 (bf16)
  }
}

TEST_CASE("stories260K in float16 and bfloat16 vs float32: memory, logits, greedy generation") {
  auto f32 = load(FloatType::kF32, {&stories().file});
  const std::vector<float> ref = all_logits(*f32, kSeq);
  const std::vector<int32_t> ref_gen = greedy(*f32, 40);
  const MemoryFootprint mf = f32->memory_footprint();
  for (FloatType t : {FloatType::kF16, FloatType::kBF16}) {
    const std::string type_name = float_type_name(t);
    CAPTURE(type_name);
    auto m = load(t, {&stories().file});
    const MemoryFootprint h = m->memory_footprint();
    CHECK(h.embedding * 2 == mf.embedding);
    CHECK(h.norms * 2 == mf.norms);
    CHECK(h.linear * 2 == mf.linear);  // no biases in Llama
    CHECK(h.total * 2 == mf.total);
    const Diff d = diff(ref, all_logits(*m, kSeq), 512);
    MESSAGE(type_name << ": mean |dlogit| " << d.mean_abs << ", max " << d.max_abs
                               << ", mean KL " << d.mean_kl);
    // Measured: float16 mean 1.8e-3, max 1.2e-2, KL 2.2e-6; bfloat16 mean 2.0e-2, max 0.106,
    // KL 1.9e-4 (bounds about twice these).
    if (t == FloatType::kF16) {
      CHECK(d.mean_abs < 3.5e-3);
      CHECK(d.max_abs < 2.5e-2);
      CHECK(d.mean_kl < 5e-6);
    } else {
      CHECK(d.mean_abs < 4e-2);
      CHECK(d.max_abs < 0.2);
      CHECK(d.mean_kl < 4e-4);
    }
    const std::vector<int32_t> gen = greedy(*m, 40);
    size_t agree = 0;
    while (agree < gen.size() && agree < ref_gen.size() && gen[agree] == ref_gen[agree]) ++agree;
    MESSAGE(type_name << ": greedy agrees with float32 for " << agree << " of 40 tokens");
    CHECK(agree >= (t == FloatType::kF16 ? 40u : 12u));  // measured 40 and 14
  }
}

TEST_CASE("half models: save keeps the dtype and reloads identically; quantizing from half works") {
  for (FloatType t : {FloatType::kF16, FloatType::kBF16}) {
    const std::string type_name = float_type_name(t);
    CAPTURE(type_name);
    auto m = load(t, {&stories().file});
    const std::vector<float> before = all_logits(*m, kSeq);
    std::vector<CheckpointFile> files;
    REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
    const std::string cfg(files[0].bytes.begin(), files[0].bytes.end());
    CHECK(cfg.find(std::string("\"torch_dtype\":\"") + float_type_name(t) + "\"") != std::string::npos);
    io::SafetensorsFile st;
    REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &st).ok());
    const char* want = t == FloatType::kBF16 ? "BF16" : "F16";
    for (const io::TensorView& v : st.tensors) CHECK_MESSAGE(v.dtype == want, v.name);
    CHECK(files[1].bytes.size() < stories().bytes.size() / 2 + 8192);
    std::unique_ptr<CausalLM> back;
    LoadOptions o;
    o.dtype = t;
    REQUIRE(load_checkpoint(cfg, {&st}, &back, o).ok());
    CHECK(back->dtype() == t);
    CHECK(all_logits(*back, kSeq) == before);

    // int8 from the half weights: the layers quantize, the excluded tied head keeps reading the
    // half embedding, and the result tracks the half model.
    ModelQuantOptions q;
    std::vector<LayerQuantReport> report;
    REQUIRE(m->quantize(q, &report).ok());
    CHECK(report.front().scheme == "w8a16 g32 sym");
    CHECK(report.back().tied);
    const Diff d = diff(before, all_logits(*m, kSeq), 512);
    MESSAGE(type_name << " -> int8: mean KL " << d.mean_kl);
    CHECK(d.mean_kl < 3e-3);  // measured 7.8e-4 (f16), 1.5e-3 (bf16)
    // A quantized half model saves and reloads too (the embedding stays in the type).
    REQUIRE(save_checkpoint(m->weights(), m->config_json(), {}, &files).ok());
    io::SafetensorsFile qst;
    REQUIRE(io::parse_safetensors(files[1].bytes.data(), files[1].bytes.size(), &qst).ok());
    CHECK(qst.find("model.embed_tokens.weight")->dtype == want);
    const std::string qcfg(files[0].bytes.begin(), files[0].bytes.end());
    REQUIRE(load_checkpoint(qcfg, {&qst}, &back, o).ok());
    CHECK(all_logits(*back, kSeq) == all_logits(*m, kSeq));
  }
}

TEST_CASE("half dtype on GPT-2 (Conv1D, biases, learned positions) and GPT-NeoX (fused QKV, partial rotary)") {
  for (const std::string name : {"gpt2", "gpt_neox"}) {
    const std::string dir = std::string(WQ_FIXTURE_DIR) + "/arch/" + name + "/";
    const std::string config = read_file(dir + "config.json"), bytes = read_file(dir + "model.safetensors");
    io::SafetensorsFile file;
    REQUIRE(io::parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &file).ok());
    const std::vector<int32_t> ids = {1, 7, 42, 3, 90, 15, 8};  // vocab 96
    for (FloatType t : {FloatType::kF16, FloatType::kBF16}) {
      const std::string type_name = name + " " + float_type_name(t);
      CAPTURE(type_name);
      auto half = load(t, {&file}, config);
      // The same rounded values (weights and biases) in a float32 model: the same math.
      HalfFile h = rewrite(t == FloatType::kBF16 ? "BF16" : "F16", file);
      auto ref = load(FloatType::kF32, {&h.file}, config);
      const std::vector<float> a = all_logits(*ref, ids), b = all_logits(*half, ids);
      double max_ref = 0;
      for (float v : a) max_ref = std::max(max_ref, double(std::fabs(v)));
      const Diff d = diff(a, b, a.size() / ids.size());
      MESSAGE(type_name << ": half kernels vs f32 kernels on the same values: max |dlogit| " << d.max_abs
                        << " (largest logit " << max_ref << ")");
      CHECK(d.max_abs < 5e-6);  // measured 6.6e-7 .. 9.5e-7 (logits up to 3.4)
      const MemoryFootprint hf = half->memory_footprint();
      const MemoryFootprint ff = load(FloatType::kF32, {&file}, config)->memory_footprint();
      CHECK(hf.embedding * 2 == ff.embedding);
      CHECK(hf.norms * 2 == ff.norms);
      CHECK(hf.linear * 2 > ff.linear);              // biases stay float32 (values rounded to the type)
      CHECK(hf.linear < ff.linear / 2 + ff.linear / 20);
    }
  }
}
