// Embind bindings of the encoder models (cpp/include/webquant/encoder_model.h): one class,
// EncoderHandle, owning one EncoderModel. The TypeScript mirror is web/src/models/encoder-module.ts.
//
// Boundary conventions (as bind_model.cpp): nothing throws; every fallible call returns
// {code, message, ...} (code = webquant::StatusCode, 0 = ok). Batches cross as heap offsets:
// ids and token types are int32 [batch, seqLen], the mask uint8 [batch, seqLen]; a 0 offset for
// types or mask means absent (all 0 / all 1). Results (hidden states, embeddings, logits) live in
// a buffer owned by the handle: the pointer is valid until the next call or delete(). save()
// keeps its files in the handle until the next save() / clearSaved() / delete().
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "js_quant.h"
#include "js_status.h"
#include "js_val.h"
#include "webquant/encoder_model.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"

namespace webquant::bindings {
namespace {

using emscripten::val;

// JS: {code, message, ptr, rows, cols}: rows * cols float32 at ptr, owned by the handle.
struct JsMatrix {
  int code = 0;
  std::string message;
  uintptr_t ptr = 0;
  int rows = 0;
  int cols = 0;
};

Status not_loaded() {
  return bad(StatusCode::kInvalidArgument, "the encoder is not loaded (load() failed or was never called)");
}

EncoderBatch batch_of(uintptr_t ids, uintptr_t types, uintptr_t mask, size_t batch, size_t seq_len) {
  EncoderBatch b;
  b.input_ids = reinterpret_cast<const int32_t*>(ids);
  b.token_type_ids = types != 0 ? reinterpret_cast<const int32_t*>(types) : nullptr;
  b.attention_mask = mask != 0 ? reinterpret_cast<const uint8_t*>(mask) : nullptr;
  b.batch = batch;
  b.seq_len = seq_len;
  return b;
}

}  // namespace

class EncoderHandle {
 public:
  // shards: [{name, ptr, byteLength}] of safetensors files in the heap (the caller frees them after
  // the call). Float HF checkpoints and webquant's quantized ones.
  JsStatus load(std::string config_json, val shards) {
    model_.reset();
    std::vector<io::SafetensorsFile> files;
    std::vector<const io::SafetensorsFile*> views;
    Status s = parse_shards_js(shards, "load", &files, &views);
    if (!s.ok()) return to_js(s);
    s = EncoderModel::load(config_json, views, &model_);
    if (!s.ok()) model_.reset();
    return to_js(s);
  }
  bool loaded() const { return model_ != nullptr; }

  // {modelType, vocabSize, hiddenSize, numLayers, numHeads, headDim, intermediateSize,
  //  maxPositionEmbeddings, typeVocabSize, padTokenId, hasMlmHead}
  val config() const {
    val out = val::object();
    if (!model_) return out;
    const EncoderInfo& c = model_->info();
    out.set("modelType", c.model_type);
    out.set("vocabSize", c.vocab_size);
    out.set("hiddenSize", c.hidden_size);
    out.set("numLayers", c.num_layers);
    out.set("numHeads", c.num_heads);
    out.set("headDim", c.head_dim);
    out.set("intermediateSize", c.intermediate_size);
    out.set("maxPositionEmbeddings", c.max_position_embeddings);
    out.set("typeVocabSize", c.type_vocab_size);
    out.set("padTokenId", c.pad_token_id);
    out.set("hasMlmHead", c.has_mlm_head);
    return out;
  }

  // Last hidden states [batch * seqLen, hidden].
  JsMatrix forward(uintptr_t ids, uintptr_t types, uintptr_t mask, size_t batch, size_t seq_len) {
    if (!model_) return error_as<JsMatrix>(not_loaded());
    return result(model_->forward(batch_of(ids, types, mask, batch, seq_len), &out_), model_->info().hidden_size);
  }
  // pooling: 0 mean, 1 cls -> [batch, hidden].
  JsMatrix embed(uintptr_t ids, uintptr_t types, uintptr_t mask, size_t batch, size_t seq_len, int pooling,
                 bool normalize) {
    if (!model_) return error_as<JsMatrix>(not_loaded());
    if (pooling != 0 && pooling != 1) return error_as<JsMatrix>(bad(StatusCode::kInvalidArgument, "pooling must be 0 (mean) or 1 (cls)"));
    return result(model_->embed(batch_of(ids, types, mask, batch, seq_len), static_cast<Pooling>(pooling), normalize, &out_),
                  model_->info().hidden_size);
  }
  // rows: nRows int32 flat row indices -> [nRows, vocab].
  JsMatrix mlmLogits(uintptr_t ids, uintptr_t types, uintptr_t mask, size_t batch, size_t seq_len, uintptr_t rows,
                     size_t n_rows) {
    if (!model_) return error_as<JsMatrix>(not_loaded());
    return result(model_->mlm_logits(batch_of(ids, types, mask, batch, seq_len), reinterpret_cast<const int32_t*>(rows),
                                     n_rows, &out_),
                  model_->info().vocab_size);
  }

  // options and result as ModelHandle::quantize (js_quant.h).
  val quantize(val options) {
    Status s = model_ ? Status::Ok() : not_loaded();
    ModelQuantOptions mq;
    if (s.ok()) s = quant_options_from_js(options, &mq);
    std::vector<LayerQuantReport> report;
    if (s.ok()) s = model_->quantize(mq, &report);
    return quant_result_js(s, report);
  }
  val memoryFootprint() const { return model_ ? footprint_js(model_->memory_footprint()) : val::object(); }
  val linearLayers() const { return model_ ? linear_layers_js(model_->weights().layout()) : val::array(); }

  // webquant's checkpoint format (model_checkpoint.h) of the current model -> {code, message,
  // files: [{name, ptr, byteLength}]}; maxShardBytes 0 = one file.
  val save(double max_shard_bytes) {
    return save_checkpoint_js(model_ ? &model_->weights() : nullptr, model_ ? model_->config_json() : std::string(),
                              max_shard_bytes, not_loaded(), &saved_);
  }
  void clearSaved() { saved_ = std::vector<CheckpointFile>(); }

 private:
  JsMatrix result(const Status& s, int cols) {
    if (!s.ok()) return error_as<JsMatrix>(s);
    JsMatrix m;
    m.ptr = reinterpret_cast<uintptr_t>(out_.data());
    m.cols = cols;
    m.rows = static_cast<int>(out_.size() / static_cast<size_t>(cols));
    return m;
  }

  std::unique_ptr<EncoderModel> model_;
  std::vector<float> out_;
  std::vector<CheckpointFile> saved_;
};

}  // namespace webquant::bindings

EMSCRIPTEN_BINDINGS(webquant_encoder) {
  using namespace emscripten;
  using webquant::bindings::EncoderHandle;
  using webquant::bindings::JsMatrix;
  value_object<JsMatrix>("WqMatrix")
      .field("code", &JsMatrix::code)
      .field("message", &JsMatrix::message)
      .field("ptr", &JsMatrix::ptr)
      .field("rows", &JsMatrix::rows)
      .field("cols", &JsMatrix::cols);
  class_<EncoderHandle>("EncoderHandle")
      .constructor<>()
      .function("load", &EncoderHandle::load)
      .function("loaded", &EncoderHandle::loaded)
      .function("config", &EncoderHandle::config)
      .function("forward", &EncoderHandle::forward)
      .function("embed", &EncoderHandle::embed)
      .function("mlmLogits", &EncoderHandle::mlmLogits)
      .function("quantize", &EncoderHandle::quantize)
      .function("memoryFootprint", &EncoderHandle::memoryFootprint)
      .function("linearLayers", &EncoderHandle::linearLayers)
      .function("save", &EncoderHandle::save)
      .function("clearSaved", &EncoderHandle::clearSaved);
  function("supportedEncoderTypes",
           optional_override([]() { return webquant::bindings::array_val(webquant::supported_encoder_types()); }));
}
