// Embind bindings of the causal language models (cpp/include/webquant/causal_lm.h), every
// architecture through one class. The TypeScript mirror is web/src/models/model-module.ts.
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

#include "js_quant.h"
#include "js_status.h"
#include "js_val.h"
#include "model_handle.h"
#include "webquant/calibration.h"
#include "webquant/causal_lm.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant::bindings {
namespace {

using emscripten::val;

Status not_loaded() {
  return bad(StatusCode::kInvalidArgument, "the model is not loaded (load() failed or was never called)");
}

}  // namespace

JsStatus ModelHandle::load(std::string config_json, val shards, int max_context, int dtype) {
  model_.reset();
  history_.clear();
  if (!shards.isArray() || shards["length"].as<unsigned>() == 0)
    return to_js(bad(StatusCode::kInvalidArgument, "load needs at least one safetensors shard"));
  if (max_context < 0) return to_js(bad(StatusCode::kInvalidArgument, "maxContext must be >= 0"));
  if (dtype < 0 || dtype > static_cast<int>(FloatType::kBF16))
    return to_js(bad(StatusCode::kInvalidArgument, "dtype must be float32, float16 or bfloat16"));
  std::vector<io::SafetensorsFile> files;
  std::vector<const io::SafetensorsFile*> views;
  Status s = parse_shards_js(shards, "load", &files, &views);
  if (!s.ok()) return to_js(s);
  LoadOptions options;
  options.max_context = max_context;
  options.dtype = static_cast<FloatType>(dtype);
  s = load_checkpoint(config_json, views, &model_, options);
  if (!s.ok()) model_.reset();
  return to_js(s);
}

void ModelHandle::adopt(std::unique_ptr<CausalLM> m) {
  model_ = std::move(m);
  history_.clear();
}

val ModelHandle::config() const {
  val out = val::object();
  if (!model_) return out;
  const ModelInfo& c = model_->info();
  out.set("modelType", c.model_type);
  out.set("vocabSize", c.vocab_size);
  out.set("hiddenSize", c.hidden_size);
  out.set("numLayers", c.num_layers);
  out.set("numHeads", c.num_heads);
  out.set("numKvHeads", c.num_kv_heads);
  out.set("headDim", c.head_dim);
  out.set("maxContext", model_->max_context());
  out.set("tieWordEmbeddings", c.tie_word_embeddings);
  out.set("dtype", std::string(float_type_name(model_->dtype())));
  out.set("bosTokenId", c.bos_token_id);
  out.set("eosTokenIds", array_val(c.eos_token_ids));
  out.set("isEncoderDecoder", c.is_encoder_decoder);
  out.set("numDecoderLayers", c.num_decoder_layers);
  out.set("decoderStartTokenId", c.decoder_start_token_id);
  out.set("imageSize", c.image_size);
  out.set("numChannels", c.num_channels);
  return out;
}

void ModelHandle::reset() {
  if (model_) model_->reset();
  history_.clear();
}

JsLogits ModelHandle::forward(uintptr_t tokens, size_t n, bool all_logits) {
  if (!model_) return error_as<JsLogits>(not_loaded());
  const auto* ids = reinterpret_cast<const int32_t*>(tokens);
  Status s = model_->forward(ids, n, all_logits, &logits_);
  if (!s.ok()) return error_as<JsLogits>(s);
  history_.insert(history_.end(), ids, ids + n);
  JsLogits r;
  r.vocab = model_->info().vocab_size;
  r.rows = all_logits ? static_cast<int>(n) : 1;
  r.ptr = reinterpret_cast<uintptr_t>(logits_.data());
  return r;
}

JsStatus ModelHandle::setSampling(double temperature, int top_k, double top_p,
                                  double repetition_penalty, double seed) {
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

JsStatus ModelHandle::encode(uintptr_t tokens, size_t n) {
  if (!model_) return to_js(not_loaded());
  Status s = model_->encode(reinterpret_cast<const int32_t*>(tokens), n);
  if (s.ok()) history_.clear();
  return to_js(s);
}

JsStatus ModelHandle::encodeImage(uintptr_t pixels, int channels, int height, int width) {
  if (!model_) return to_js(not_loaded());
  Status s = model_->encode_image(reinterpret_cast<const float*>(pixels), channels, height, width);
  if (s.ok()) history_.clear();
  return to_js(s);
}

JsStep ModelHandle::prefill(uintptr_t tokens, size_t n) {
  if (!model_) return error_as<JsStep>(not_loaded());
  const auto* ids = reinterpret_cast<const int32_t*>(tokens);
  if (model_->info().is_encoder_decoder) {  // encoder input; decoding starts afresh
    Status s = model_->prefill(ids, n, &logits_);
    if (!s.ok()) return error_as<JsStep>(s);
    history_.assign(1, model_->info().decoder_start_token_id);
    return sample_last();
  }
  Status s = model_->forward(ids, n, false, &logits_);
  if (!s.ok()) return error_as<JsStep>(s);
  history_.insert(history_.end(), ids, ids + n);
  return sample_last();
}

JsStep ModelHandle::decode(int token) {
  if (!model_) return error_as<JsStep>(not_loaded());
  const int32_t id = token;
  Status s = model_->forward(&id, 1, false, &logits_);
  if (!s.ok()) return error_as<JsStep>(s);
  history_.push_back(id);
  return sample_last();
}

val ModelHandle::quantize(val options) {
  Status s = model_ ? Status::Ok() : not_loaded();
  ModelQuantOptions mq;
  if (s.ok()) s = quant_options_from_js(options, &mq);
  CalibrationOptions calib;
  if (s.ok()) s = calibration_from_js(options, &mq, &calib);
  std::vector<LayerQuantReport> report;
  if (s.ok()) {
    const emscripten::val progress = options["progress"];
    s = quantize_calibrated(model_.get(), mq, calib, &report,
                            progress.isUndefined() ? CalibrationProgress() : [&progress](int done, int total, const std::string& label) {
                              return !progress(done, total, label).isFalse();
                            });
  }
  return quant_result_js(s, report);
}

val ModelHandle::memoryFootprint() const {
  if (!model_) return val::object();
  return footprint_js(model_->memory_footprint());
}

val ModelHandle::linearLayers() const {
  if (!model_) return val::array();
  return linear_layers_js(model_->weights().layout());
}

JsStep ModelHandle::sample_last() {
  JsStep r;
  int32_t token = -1;
  Status s = sampler_.sample(logits_.data(), logits_.size(), history_.data(), history_.size(), &token);
  if (!s.ok()) return error_as<JsStep>(s);
  r.token = token;
  return r;
}

}  // namespace webquant::bindings

EMSCRIPTEN_BINDINGS(webquant_model) {
  using namespace emscripten;
  using namespace webquant;
  using bindings::JsLogits;
  using bindings::JsStep;
  using bindings::ModelHandle;

  // JsStatus is registered by bind_core.cpp (js_status.h).
  value_object<JsLogits>("WqLogits")
      .field("code", &JsLogits::code)
      .field("message", &JsLogits::message)
      .field("ptr", &JsLogits::ptr)
      .field("rows", &JsLogits::rows)
      .field("vocab", &JsLogits::vocab);
  value_object<JsStep>("WqStep")
      .field("code", &JsStep::code)
      .field("message", &JsStep::message)
      .field("token", &JsStep::token);

  class_<ModelHandle>("ModelHandle")
      .constructor<>()
      .function("load", &ModelHandle::load)
      .function("loaded", &ModelHandle::loaded)
      .function("config", &ModelHandle::config)
      .function("position", &ModelHandle::position)
      .function("reset", &ModelHandle::reset)
      .function("forward", &ModelHandle::forward)
      .function("setSampling", &ModelHandle::setSampling)
      .function("encode", &ModelHandle::encode)
      .function("encodeImage", &ModelHandle::encodeImage)
      .function("prefill", &ModelHandle::prefill)
      .function("decode", &ModelHandle::decode)
      .function("quantize", &ModelHandle::quantize)
      .function("memoryFootprint", &ModelHandle::memoryFootprint)
      .function("linearLayers", &ModelHandle::linearLayers);
  function("supportedModelTypes", optional_override([]() { return bindings::array_val(supported_model_types()); }));
}
