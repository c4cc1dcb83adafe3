// Encoder-only models (BERT family), built from the shared module layer (module.h): the
// architecture is chosen by config.json's model_type.
//
//   model_type   HF classes                      graph
//   bert         BertModel, BertForMaskedLM      word + position + token-type embeddings, LayerNorm,
//                                                post-LayerNorm blocks (bidirectional attention with
//                                                a key mask, GELU MLP), optional masked-LM head
//
// Inputs are batches of B sequences padded to one length S, row-major [B, S]: token ids, an
// attention mask (1 = token, 0 = padding; padding keys are never attended to, as HF's extended
// mask does) and token-type ids (segment A = 0 / B = 1; all 0 when absent). Positions are
// 0..S-1 in every sequence (absolute learned position embeddings), so padding goes at the end.
// Every row is computed, padding rows included (as HF does); poolings only read mask = 1 rows.
// Everything computes in float32 with HF's fp32 semantics (norm statistics and softmax sums are
// accumulated in double and rounded once).
//
// Weight names are the HF state-dict names of BertForMaskedLM: "bert.embeddings.*",
// "bert.encoder.layer.N.*", "cls.predictions.*". Checkpoints of BertModel (e.g.
// sentence-transformers/all-MiniLM-L6-v2) store the "bert." names without the prefix
// ("embeddings.word_embeddings.weight"); both load (ModelLayout::optional_prefix). The pooler
// (pooler.dense) is not used by any head here and is ignored when present.
//
// The masked-LM head (cls.predictions) is declared when config.json's "architectures" names
// BertForMaskedLM or BertForPreTraining:
//   logits = decoder(LayerNorm(act(transform.dense(h)))) + cls.predictions.bias
// where the decoder is tied to bert.embeddings.word_embeddings.weight (unless config.json has
// "tie_word_embeddings": false; then cls.predictions.decoder.weight is read). The decoder is the
// model's output head: ModelQuantOptions excludes it by default, like lm_head.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "webquant/module.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {

// What callers need to know of an encoder.
struct EncoderInfo {
  std::string model_type;            // "bert"
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int head_dim = 0;
  int intermediate_size = 0;
  int max_position_embeddings = 0;   // the longest sequence S
  int type_vocab_size = 0;           // token-type ids are in [0, type_vocab_size)
  int pad_token_id = 0;
  bool has_mlm_head = false;         // fill-mask is available
};

// One batch: B sequences of S tokens, row-major [B, S]. Pointers are not owned and must hold
// batch * seq_len values; token_type_ids and attention_mask may be null (all 0 / all 1).
struct EncoderBatch {
  const int32_t* input_ids = nullptr;
  const int32_t* token_type_ids = nullptr;
  const uint8_t* attention_mask = nullptr;
  size_t batch = 0;
  size_t seq_len = 0;
};

// Sentence-embedding pooling over the token rows of a sequence (sentence-transformers' Pooling):
// kMean averages the rows with attention_mask = 1; kCls takes row 0 ([CLS]).
enum class Pooling : int { kMean = 0, kCls = 1 };

// The encoder model types webquant runs ("bert").
const std::vector<std::string>& supported_encoder_types();

// The internal interface of an encoder architecture (one implementation per models/<arch>/).
class EncoderArchitecture {
 public:
  virtual ~EncoderArchitecture() = default;
  virtual const EncoderInfo& info() const = 0;
  virtual void build(VarBuilder& vb) = 0;
  // Last hidden states [B * S, hidden] of a validated batch.
  virtual void forward(const Weights& w, const EncoderBatch& batch, float* hidden) = 0;
  // Masked-LM logits [n, vocab] of n hidden rows [n, hidden] (only when info().has_mlm_head).
  virtual void mlm_logits(const Weights& w, const float* hidden, size_t n, float* logits) = 0;
};

class EncoderModel {
 public:
  // Parses config.json (model_type picks the architecture) and builds the model from `source`.
  // Errors: kUnsupported for an unknown model_type or position_embedding_type, kInvalidArgument
  // for a bad config field (named), and the source's errors naming the tensor. *out is set only
  // on success.
  static Status load(std::string_view config_json, WeightSource& source, std::unique_ptr<EncoderModel>* out);
  // A float HF checkpoint, or webquant's quantized format (model_checkpoint.h) when config.json or
  // the shards' __metadata__ carry quantization_config. The shard buffers may be freed afterwards.
  static Status load(std::string_view config_json, const std::vector<const io::SafetensorsFile*>& shards,
                     std::unique_ptr<EncoderModel>* out);
  // The weights a config declares (no data read).
  static Status layout(std::string_view config_json, ModelLayout* out, EncoderInfo* info = nullptr);

  ~EncoderModel();
  EncoderModel(const EncoderModel&) = delete;
  EncoderModel& operator=(const EncoderModel&) = delete;

  // Last hidden states [B, S, hidden] (row-major) into *hidden. Errors (kInvalidArgument, naming
  // the sequence and position): empty batch, S > max_position_embeddings ("too long"), a token
  // id outside [0, vocab), a token-type id outside [0, type_vocab_size), a mask value other than
  // 0/1, a sequence whose mask has no 1.
  Status forward(const EncoderBatch& batch, std::vector<float>* hidden);
  // Sentence embeddings [B, hidden]: pooled last hidden states, L2-normalized when `normalize`
  // (x / max(|x|, 1e-12), torch.nn.functional.normalize). Errors as forward().
  Status embed(const EncoderBatch& batch, Pooling pooling, bool normalize, std::vector<float>* out);
  // Masked-LM logits [n_rows, vocab] for the rows `rows[i]` (flat index b * S + s) of the batch.
  // Errors: kUnsupported without a masked-LM head, kInvalidArgument for no rows or a row out of
  // range, and forward()'s.
  Status mlm_logits(const EncoderBatch& batch, const int32_t* rows, size_t n_rows, std::vector<float>* logits);

  const EncoderInfo& info() const { return arch_->info(); }
  const std::string& config_json() const { return config_json_; }
  Weights& weights() { return weights_; }
  const Weights& weights() const { return weights_; }
  Status quantize(const ModelQuantOptions& options, std::vector<LayerQuantReport>* report) {
    return weights_.quantize(options, report);
  }
  // kv_cache is 0 (encoders keep none).
  MemoryFootprint memory_footprint() const { return weights_.memory_footprint(); }

 private:
  EncoderModel() = default;
  Status check(const EncoderBatch& batch) const;
  std::unique_ptr<EncoderArchitecture> arch_;
  Weights weights_;
  std::string config_json_;
  std::vector<float> hidden_;  // scratch for embed / mlm_logits
};

}  // namespace webquant
