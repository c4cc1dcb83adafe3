// The Embind class that owns one CausalLM for its TypeScript wrapper (web/src/models/model-module.ts),
// plus the sampler state and the token history the repetition penalty looks at. Declared here so
// that other bindings files take a ModelHandle& argument (Embind passes the object itself: no
// pointer or ticket crosses into JavaScript). Bindings-internal.
#pragma once

#include <emscripten/val.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "js_status.h"
#include "webquant/causal_lm.h"
#include "webquant/sampling.h"

namespace webquant::bindings {

// Result of forward(): `ptr` holds rows * vocab floats (row-major), owned by the handle.
struct JsLogits {
  int code = 0;
  std::string message;
  uintptr_t ptr = 0;
  int rows = 0;
  int vocab = 0;
};

// Result of prefill() / decode(): the sampled next token.
struct JsStep {
  int code = 0;
  std::string message;
  int token = -1;
};

class ModelHandle {
 public:
  // shards: [{name, ptr, byteLength}] of safetensors files already in the heap (caller-owned; the
  // model copies what it keeps). maxContext: KV-cache capacity (0 = max_position_embeddings).
  // Float HF checkpoints and webquant's quantized ones (config.json quantization_config).
  // dtype: FloatType (0 float32, 1 float16, 2 bfloat16), the type the float weights are kept in.
  JsStatus load(std::string config_json, emscripten::val shards, int max_context, int dtype);
  bool loaded() const { return model_ != nullptr; }
  // {modelType, vocabSize, hiddenSize, numLayers, numHeads, numKvHeads, headDim, maxContext,
  //  tieWordEmbeddings, dtype ("float32" | "float16" | "bfloat16"), bosTokenId, eosTokenIds,
  //  isEncoderDecoder, numDecoderLayers, decoderStartTokenId, imageSize, numChannels}
  emscripten::val config() const;
  int position() const { return model_ ? model_->position() : 0; }
  void reset();
  // Runs n tokens (int32 at `tokens`) and returns the logits of the last one or of all n.
  JsLogits forward(uintptr_t tokens, size_t n, bool all_logits);
  // Sampling options for the following prefill/decode calls; reseeds the PRNG.
  JsStatus setSampling(double temperature, int top_k, double top_p, double repetition_penalty,
                       double seed);
  // Encoder-decoder models: runs the encoder over n int32 ids and rewinds the decoder.
  JsStatus encode(uintptr_t tokens, size_t n);
  // Image-to-text models: runs the vision tower over float32 CHW pixels at `pixels` (channels x
  // height x width, preprocessed) and rewinds the decoder.
  JsStatus encodeImage(uintptr_t pixels, int channels, int height, int width);
  // Decoder-only: runs n prompt tokens (continuing the cache). Encoder-decoder: the tokens are the
  // encoder input; runs decoder_start_token_id from an empty decoder cache.
  JsStep prefill(uintptr_t tokens, size_t n);
  JsStep decode(int token);
  // options: js_quant.h -> {code, message, layers: report}
  emscripten::val quantize(emscripten::val options);
  // {modules: [{name, bytes}], embedding, linear, norms, other, lmHead, total, kvCache} (bytes).
  emscripten::val memoryFootprint() const;
  // Linear modules in model order: [{name, outFeatures, inFeatures, bias, head, tied}].
  emscripten::val linearLayers() const;

  // For other bindings files (C++ only).
  CausalLM* model() const { return model_.get(); }
  void adopt(std::unique_ptr<CausalLM> m);

 private:
  JsStep sample_last();

  std::unique_ptr<CausalLM> model_;
  std::vector<float> logits_;
  std::vector<int32_t> history_;
  Sampler sampler_;  // default: greedy
};

}  // namespace webquant::bindings
