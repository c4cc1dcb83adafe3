// Embind bindings of the Llama model (cpp/include/webquant/llama.h). The TypeScript mirror is
// web/src/models/llama-module.ts; the user-facing class is LlamaForCausalLM (web/src/models/llama.ts).
//
// Boundary conventions (as bind_core.cpp):
//  - Nothing throws. Every fallible call returns an object with {code, message}: code is a
//    webquant::StatusCode (0 = ok) and TypeScript turns a non-zero code into a WebQuantError.
//  - Pointers are byte offsets into the wasm heap passed as integers. The safetensors shards are
//    malloc'ed and filled by the caller (one HEAPU8.set each); load() converts every tensor to
//    float32 inside the model, so the caller frees the shard buffers as soon as load() returns.
//  - Logits live in a buffer owned by the handle: the pointer returned by forward() is valid until
//    the next forward / prefill / decode / load call or delete().
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model_handoff.h"
#include "js_quant.h"
#include "js_status.h"
#include "webquant/linear.h"
#include "webquant/llama.h"
#include "webquant/llama_checkpoint.h"
#include "webquant/safetensors.h"
#include "webquant/sampling.h"
#include "webquant/status.h"

namespace webquant {
namespace {

using emscripten::val;

using bindings::bad;
using bindings::error_as;
using bindings::JsStatus;
using bindings::to_js;

// Result of forward(): `ptr` holds rows * vocab floats (row-major), owned by the handle.
struct LlamaJsLogits {
  int code = 0;
  std::string message;
  uintptr_t ptr = 0;
  int rows = 0;
  int vocab = 0;
};

// Result of prefill() / decode(): the sampled next token.
struct LlamaJsStep {
  int code = 0;
  std::string message;
  int token = -1;
};

Status not_loaded() {
  return bad(StatusCode::kInvalidArgument, "the model is not loaded (load() failed or was never called)");
}


val ints_to_js(const std::vector<int>& v) {
  val out = val::array();
  for (size_t i = 0; i < v.size(); ++i) out.set(i, v[i]);
  return out;
}

// Owns one LlamaModel for its TypeScript wrapper, plus the sampler state and the token history
// (everything fed since the last reset) that the repetition penalty looks at.
class LlamaModelHandle {
 public:
  // shards: [{name, ptr, byteLength}] of safetensors files already in the heap (caller-owned).
  // maxContext: KV-cache capacity in positions (0 = max_position_embeddings).
  JsStatus load(std::string config_json, val shards, int max_context) {
    model_.reset();
    history_.clear();
    LlamaConfig config;
    Status s = parse_llama_config(config_json, &config);
    if (!s.ok()) return to_js(s);
    if (!shards.isArray() || shards["length"].as<unsigned>() == 0)
      return to_js(bad(StatusCode::kInvalidArgument, "load needs at least one safetensors shard"));
    const unsigned n = shards["length"].as<unsigned>();
    std::vector<io::SafetensorsFile> files(n);
    std::vector<const io::SafetensorsFile*> views;
    for (unsigned i = 0; i < n; ++i) {
      val shard = shards[i];
      const std::string name = shard["name"].isString() ? shard["name"].as<std::string>()
                                                          : "shard " + std::to_string(i);
      const auto ptr = static_cast<uintptr_t>(shard["ptr"].as<double>());
      const auto len = static_cast<size_t>(shard["byteLength"].as<double>());
      s = io::parse_safetensors(reinterpret_cast<const uint8_t*>(ptr), len, &files[i]);
      if (!s.ok()) return to_js(bad(s.code, name + ": " + s.message));
      views.push_back(&files[i]);
    }
    if (max_context < 0)
      return to_js(bad(StatusCode::kInvalidArgument, "maxContext must be >= 0"));
    LlamaLoadOptions options;
    options.max_context = max_context;
    // Float HF checkpoints, and webquant's quantized ones (config.json quantization_config).
    s = load_llama_checkpoint(config_json, views, &model_, options);
    if (!s.ok()) model_.reset();
    return to_js(s);
  }

  // Takes the model bind_checkpoint.cpp parked under `ticket` (streaming quantization).
  JsStatus adopt(double ticket) {
    std::unique_ptr<LlamaModel> m = bindings::take_parked_model(static_cast<uint32_t>(ticket));
    if (!m) return to_js(bad(StatusCode::kNotFound, "no parked model with ticket " + std::to_string(ticket)));
    model_ = std::move(m);
    history_.clear();
    return {};
  }

  // The model for bind_checkpoint.cpp's CheckpointWriter (0 when not loaded); use at once.
  double modelPtr() const { return static_cast<double>(reinterpret_cast<uintptr_t>(model_.get())); }

  bool loaded() const { return model_ != nullptr; }

  // {modelType, vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, headDim,
  //  intermediateSize, maxContext, bosTokenId, eosTokenIds}
  val config() const {
    val out = val::object();
    if (!model_) return out;
    const LlamaConfig& c = model_->config();
    out.set("modelType", c.model_type);
    out.set("vocabSize", c.vocab_size);
    out.set("hiddenSize", c.hidden_size);
    out.set("intermediateSize", c.intermediate_size);
    out.set("numLayers", c.num_hidden_layers);
    out.set("numHeads", c.num_attention_heads);
    out.set("numKvHeads", c.num_key_value_heads);
    out.set("headDim", c.head_dim);
    out.set("maxContext", model_->max_context());
    out.set("tieWordEmbeddings", c.tie_word_embeddings);
    out.set("bosTokenId", c.bos_token_id);
    out.set("eosTokenIds", ints_to_js(c.eos_token_ids));
    return out;
  }

  int position() const { return model_ ? model_->position() : 0; }

  void reset() {
    if (model_) model_->reset();
    history_.clear();
  }

  // Runs n tokens (int32 at `tokens`) and returns the logits of the last one or of all n.
  LlamaJsLogits forward(uintptr_t tokens, size_t n, bool all_logits) {
    if (!model_) return error_as<LlamaJsLogits>(not_loaded());
    const auto* ids = reinterpret_cast<const int32_t*>(tokens);
    Status s = model_->forward(ids, n, all_logits, &logits_);
    if (!s.ok()) return error_as<LlamaJsLogits>(s);
    history_.insert(history_.end(), ids, ids + n);
    LlamaJsLogits r;
    r.vocab = model_->config().vocab_size;
    r.rows = all_logits ? static_cast<int>(n) : 1;
    r.ptr = reinterpret_cast<uintptr_t>(logits_.data());
    return r;
  }

  // Sampling options for the following prefill/decode calls; reseeds the PRNG.
  // seed: an integer in [0, 2^53) (a JS number).
  JsStatus setSampling(double temperature, int top_k, double top_p, double repetition_penalty,
                       double seed) {
    if (!(seed >= 0 && seed == std::floor(seed) && seed <= 9007199254740991.0))
      return to_js(bad(StatusCode::kInvalidArgument,
                       "seed must be an integer in [0, 2^53) (got " + std::to_string(seed) + ")"));
    SamplingOptions o;
    o.temperature = static_cast<float>(temperature);
    o.top_k = top_k;
    o.top_p = static_cast<float>(top_p);
    o.repetition_penalty = static_cast<float>(repetition_penalty);
    o.seed = static_cast<uint64_t>(seed);
    Status s = Sampler::validate(o);
    if (!s.ok()) return to_js(s);
    sampler_ = Sampler(o);
    return {};
  }

  // Feeds n tokens (continuing the cache) and samples the next one from the last logits.
  LlamaJsStep prefill(uintptr_t tokens, size_t n) {
    if (!model_) return error_as<LlamaJsStep>(not_loaded());
    const auto* ids = reinterpret_cast<const int32_t*>(tokens);
    Status s = model_->forward(ids, n, false, &logits_);
    if (!s.ok()) return error_as<LlamaJsStep>(s);
    history_.insert(history_.end(), ids, ids + n);
    return sample_last();
  }

  // Feeds one token and samples the next.
  LlamaJsStep decode(int token) {
    if (!model_) return error_as<LlamaJsStep>(not_loaded());
    const int32_t id = token;
    Status s = model_->forward(&id, 1, false, &logits_);
    if (!s.ok()) return error_as<LlamaJsStep>(s);
    history_.push_back(id);
    return sample_last();
  }

  // options: {default: {scheme, asymmetric, groupSize}, exclude: string[],
  //           overrides: [{pattern, scheme, asymmetric, groupSize}]}
  // -> {code, message, layers: [{name, outFeatures, inFeatures, quantized, scheme, bytesBefore,
  //     bytesAfter, note}]}; on error `layers` lists the layers handled so far.
  val quantize(val options) {
    val out = val::object();
    auto fail = [&out](const Status& s) {
      out.set("code", static_cast<int>(s.code));
      out.set("message", s.message);
      out.set("layers", val::array());
      return out;
    };
    if (!model_) return fail(not_loaded());
    ModelQuantOptions mq;
    Status s = bindings::quant_options_from_js(options, &mq);
    if (!s.ok()) return fail(s);
    std::vector<LayerQuantReport> report;
    s = model_->quantize(mq, &report);
    out.set("code", static_cast<int>(s.code));
    out.set("message", s.message);
    out.set("layers", bindings::quant_report_js(report));
    return out;
  }

  // {modules: [{name, bytes}], embedding, linear, norms, lmHead, total, kvCache} (bytes).
  val memoryFootprint() const {
    val out = val::object();
    if (!model_) return out;
    const MemoryFootprint f = model_->memory_footprint();
    val modules = val::array();
    for (size_t i = 0; i < f.modules.size(); ++i) {
      val m = val::object();
      m.set("name", f.modules[i].name);
      m.set("bytes", static_cast<double>(f.modules[i].bytes));
      modules.set(i, m);
    }
    out.set("modules", modules);
    out.set("embedding", static_cast<double>(f.embedding));
    out.set("linear", static_cast<double>(f.linear));
    out.set("norms", static_cast<double>(f.norms));
    out.set("lmHead", static_cast<double>(f.lm_head));
    out.set("total", static_cast<double>(f.total));
    out.set("kvCache", static_cast<double>(f.kv_cache));
    return out;
  }

 private:
  LlamaJsStep sample_last() {
    LlamaJsStep r;
    int32_t token = -1;
    Status s = sampler_.sample(logits_.data(), logits_.size(), history_.data(), history_.size(),
                               &token);
    if (!s.ok()) return error_as<LlamaJsStep>(s);
    r.token = token;
    return r;
  }

  std::unique_ptr<LlamaModel> model_;
  std::vector<float> logits_;
  std::vector<int32_t> history_;
  Sampler sampler_;  // default: greedy
};

}  // namespace
}  // namespace webquant

EMSCRIPTEN_BINDINGS(webquant_llama) {
  using namespace emscripten;
  using namespace webquant;

  // JsStatus is registered by bind_core.cpp (js_status.h).
  value_object<LlamaJsLogits>("WqLlamaLogits")
      .field("code", &LlamaJsLogits::code)
      .field("message", &LlamaJsLogits::message)
      .field("ptr", &LlamaJsLogits::ptr)
      .field("rows", &LlamaJsLogits::rows)
      .field("vocab", &LlamaJsLogits::vocab);
  value_object<LlamaJsStep>("WqLlamaStep")
      .field("code", &LlamaJsStep::code)
      .field("message", &LlamaJsStep::message)
      .field("token", &LlamaJsStep::token);

  class_<LlamaModelHandle>("LlamaModelHandle")
      .constructor<>()
      .function("load", &LlamaModelHandle::load)
      .function("adopt", &LlamaModelHandle::adopt)
      .function("modelPtr", &LlamaModelHandle::modelPtr)
      .function("loaded", &LlamaModelHandle::loaded)
      .function("config", &LlamaModelHandle::config)
      .function("position", &LlamaModelHandle::position)
      .function("reset", &LlamaModelHandle::reset)
      .function("forward", &LlamaModelHandle::forward)
      .function("setSampling", &LlamaModelHandle::setSampling)
      .function("prefill", &LlamaModelHandle::prefill)
      .function("decode", &LlamaModelHandle::decode)
      .function("quantize", &LlamaModelHandle::quantize)
      .function("memoryFootprint", &LlamaModelHandle::memoryFootprint);
}
