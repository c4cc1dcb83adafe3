// Decoder-only causal language models of every architecture webquant runs, built from the shared
// module layer (module.h): the architecture is chosen by config.json's model_type.
//
//   model_type               HF class              graph
//   llama, mistral, qwen2    LlamaForCausalLM      RMSNorm, RoPE (rotate_half), GQA, SiLU-gated MLP
//   gpt2                     GPT2LMHeadModel       LayerNorm, learned positions, Conv1D, GELU (tanh)
//   gpt_neox                 GPTNeoXForCausalLM    LayerNorm, partial RoPE, fused per-head QKV,
//                                                  parallel (or sequential) residual, GELU
//   t5                       T5ForConditionalGeneration  encoder-decoder: T5LayerNorm (RMS), relative
//                                                  position buckets, unscaled attention, ReLU or
//                                                  gated-GELU MLP, cross-attention
//   blip                     BlipForConditionalGeneration  image-to-text: ViT vision tower (patches,
//                                                  class token, learned positions, pre-LN blocks)
//                                                  + BERT-style text decoder (post-LN, causal
//                                                  self-attention, cross-attention to the image)
//
// Encoder-decoder models (t5; ModelInfo::is_encoder_decoder): encode() runs the encoder once over
// the input ids and keeps its output and every decoder layer's cross-attention keys/values; then
// forward() runs *decoder* tokens (the first being decoder_start_token_id) over the decoder's
// self-attention KV cache, as for a decoder-only model. prefill() and generate() do both: the
// prompt is the encoder input and decoding starts from decoder_start_token_id. max_context bounds
// both the encoder input length and the decoder positions.
//
// Image-to-text models (blip; ModelInfo::image_size > 0): encode_image() runs the vision tower once
// over a preprocessed image and keeps what the decoder's cross-attention reads; the decoder is then
// driven like a decoder-only model (forward / prefill / generate over text ids, the prompt being
// the decoder's first tokens), and encode() over ids is kUnsupported.
//
// Everything computes in float32 with HF's fp32 semantics (norm statistics and softmax sums are
// accumulated in double and rounded once). Each attention layer keeps a KV cache of float32 rows
// [position][kv_head][head_dim] that grows on demand (doubling) up to max_context positions.
// forward() appends to the cache; reset() rewinds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "webquant/module.h"
#include "webquant/sampling.h"
#include "webquant/status.h"

namespace webquant {

// What callers need to know of a model, whatever its architecture.
struct ModelInfo {
  std::string model_type;  // config.json model_type
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int max_position_embeddings = 0;
  int bos_token_id = -1;            // -1 when absent
  std::vector<int> eos_token_ids;   // "eos_token_id" may be an int or a list
  bool tie_word_embeddings = false;
  bool is_encoder_decoder = false;  // t5: see encode()
  int num_decoder_layers = 0;       // encoder-decoder models (num_layers counts the encoder's)
  int decoder_start_token_id = -1;  // encoder-decoder models: the first decoder token
  // Image-to-text models (blip): the square input side in pixels and the channel count that
  // encode_image() takes; 0 for text models.
  int image_size = 0;
  int num_channels = 0;
};

struct LoadOptions {
  // KV-cache capacity in positions; 0 = max_position_embeddings. Larger is an error.
  int max_context = 0;
  // The type the model keeps its float weights in (torch's dtype): float32 (default), or float16 /
  // bfloat16, which halve the memory of the linear layers, embeddings and norms. Half weights are
  // read from F16/BF16 tensors as stored, or rounded to nearest even from other float types
  // (bit-identical to torch's .to(dtype)); activations, accumulators and the KV cache stay
  // float32. Quantized layers of a webquant checkpoint stay quantized.
  FloatType dtype = FloatType::kF32;
};

// The model types webquant runs, in a stable order ("gpt2", "gpt_neox", "llama", ...).
const std::vector<std::string>& supported_model_types();

// The architecture's internal interface (one implementation per models/<arch>/ folder).
class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual const ModelInfo& info() const = 0;
  // Declares every weight through `vb` and keeps the handles it returns.
  virtual void build(VarBuilder& vb) = 0;
  // Runs n tokens at positions pos..pos+n-1 (appending to the caches); writes the logits of the
  // last `rows` tokens ([rows, vocab]) to `logits`. Inputs are validated by the caller.
  virtual void forward(const Weights& w, const int32_t* tokens, size_t n, int pos, size_t rows,
                       float* logits) = 0;
  // Makes room in the caches for `positions` positions.
  virtual void reserve_cache(int positions) = 0;
  virtual size_t kv_cache_bytes() const = 0;
  // Encoder-decoder architectures: runs the encoder over n input ids (validated by the caller) and
  // keeps what forward() reads. Never called on a decoder-only architecture.
  virtual bool encoder_decoder() const { return false; }
  virtual void encode(const Weights& /*w*/, const int32_t* /*ids*/, size_t /*n*/) {}
  // Block-wise execution (calibration): forward() cut at its decoder blocks. An architecture that
  // supports it returns its block count (> 0) and forward(tokens) equals, op for op,
  // embed -> run_block(0) -> ... -> run_block(num_blocks() - 1) -> run_head on x, the residual
  // stream [n, hidden_size] float32 row-major. Inputs are validated by the caller.
  virtual int num_blocks() const { return 0; }
  virtual void embed(const Weights& /*w*/, const int32_t* /*tokens*/, size_t /*n*/, int /*pos*/,
                     float* /*x*/) {}
  // Runs block b in place on x (positions pos..pos+n-1, appending to that block's cache).
  virtual void run_block(const Weights& /*w*/, int /*b*/, float* /*x*/, size_t /*n*/, int /*pos*/) {}
  // Final norm and output head of the last `rows` of the n rows of x: logits [rows, vocab].
  virtual void run_head(const Weights& /*w*/, const float* /*x*/, size_t /*n*/, size_t /*rows*/,
                        float* /*logits*/) {}
  // Image-to-text architectures (info().image_size > 0, encoder_decoder() true): runs the vision
  // tower over chw [num_channels, image_size, image_size] (validated by the caller).
  virtual void encode_image(const Weights& /*w*/, const float* /*chw*/) {}
};

class CausalLM {
 public:
  // Parses config.json (model_type picks the architecture) and builds the model from `source`.
  // Errors: kUnsupported for an unknown model_type (naming the supported ones and pointing to
  // quantizeCheckpoint), kInvalidArgument for a bad config field (named), and the source's errors
  // naming the tensor. Nothing is half-loaded: *out is set only on success.
  static Status load(std::string_view config_json, WeightSource& source,
                     std::unique_ptr<CausalLM>* out, const LoadOptions& options = {});
  // Float HF checkpoint in safetensors shards.
  static Status load(std::string_view config_json,
                     const std::vector<const io::SafetensorsFile*>& shards,
                     std::unique_ptr<CausalLM>* out, const LoadOptions& options = {});
  // The weights a config declares (no data read).
  static Status layout(std::string_view config_json, ModelLayout* out, ModelInfo* info = nullptr);

  ~CausalLM();
  CausalLM(const CausalLM&) = delete;
  CausalLM& operator=(const CausalLM&) = delete;

  // Runs n >= 1 tokens at positions position() .. position()+n-1, appending their K/V to the cache.
  // logits receives the last row ([vocab]) or, with all_logits, all n rows ([n, vocab] row-major).
  // Errors (the cache is left unchanged): kInvalidArgument for n == 0, a token id outside
  // [0, vocab) (naming index and id) or position()+n > max_context ("context overflow").
  Status forward(const int32_t* tokens, size_t n, bool all_logits, std::vector<float>* logits);

  // Encoder-decoder models: runs the encoder over ids[0..n) and rewinds the decoder (position 0).
  // Errors: kUnsupported for a decoder-only model; kInvalidArgument for n == 0, an id outside the
  // vocabulary or n > max_context ("input too long"); the previous encoding is kept on error.
  Status encode(const int32_t* ids, size_t n);
  // Image-to-text models: runs the vision tower over a preprocessed image chw [channels, height,
  // width] float32 (channels = info().num_channels, height = width = info().image_size) and
  // rewinds the decoder (position 0). Errors: kUnsupported for a text model; kInvalidArgument for
  // a null image, another size or channel count (naming both) or a NaN / Inf value (naming its
  // index); the previous encoding is kept on error.
  Status encode_image(const float* chw, int channels, int height, int width);
  // True once encode() / encode_image() succeeded (forward() of these models needs it).
  bool encoded() const { return encoded_; }
  // Starts a generation from an empty decoder cache and writes the next-token logits ([vocab]):
  // decoder-only, forward(prompt) after reset(); encoder-decoder, encode(prompt) then forward of
  // decoder_start_token_id; image-to-text, forward(prompt) after reset() over the encoded image.
  Status prefill(const int32_t* prompt, size_t n, std::vector<float>* logits);

  void reset() { pos_ = 0; }  // forget the (decoder) cache (memory is kept for reuse)
  int position() const { return pos_; }
  int max_context() const { return max_ctx_; }
  const ModelInfo& info() const { return arch_->info(); }
  // LoadOptions::dtype the model was loaded with.
  FloatType dtype() const { return weights_.dtype(); }
  // The config.json text the model was built from.
  const std::string& config_json() const { return config_json_; }

  Weights& weights() { return weights_; }
  const Weights& weights() const { return weights_; }
  Status quantize(const ModelQuantOptions& options, std::vector<LayerQuantReport>* report) {
    return weights_.quantize(options, report);
  }
  MemoryFootprint memory_footprint() const;
  // Shorthands for weights().linear_names() / linear() / replace_linear().
  std::vector<std::string> linear_names() const { return weights_.linear_names(); }
  const LinearLayer* linear(std::string_view name) const { return weights_.linear(name); }
  Status replace_linear(std::string_view name, std::unique_ptr<LinearLayer> layer) {
    return weights_.replace_linear(name, std::move(layer));
  }

  // Block-wise execution, for calibration (calibration.h): the forward pass cut at the decoder
  // blocks, on the residual stream x [n, hidden_size] float32 row-major. num_blocks() is 0 when the
  // architecture does not support it (t5). Every call runs positions 0..n-1 from an empty cache
  // (block b's cache rows are overwritten) and leaves position() at 0, so
  //   run_head(run_block(L-1, ... run_block(0, embed_tokens(t))))  ==  reset(); forward(t)
  // bit for bit. Errors: kUnsupported (num_blocks() == 0), kInvalidArgument (n == 0, n >
  // max_context, a token outside the vocabulary, a block outside [0, num_blocks()), null output).
  int num_blocks() const { return arch_->num_blocks(); }
  Status embed_tokens(const int32_t* tokens, size_t n, std::vector<float>* x);
  Status run_block(int block, float* x, size_t n);
  // logits: the last row ([vocab]) or, with all_logits, all n rows.
  Status run_head(const float* x, size_t n, bool all_logits, std::vector<float>* logits);

  // Greedy / sampled continuation: feeds `prompt` (continuing the cache), then generates up to
  // max_new_tokens, stopping after an eos token (which is appended) or when the context is full.
  // Encoder-decoder models: `prompt` is the encoder input and decoding starts afresh (prefill());
  // out receives the generated decoder tokens (without decoder_start_token_id). Image-to-text
  // models: `prompt` is the decoder's prompt (bos + text ids), over the image encoded last.
  Status generate(const int32_t* prompt, size_t n_prompt, int max_new_tokens,
                  const SamplingOptions& sampling, std::vector<int32_t>* out);

 private:
  CausalLM() = default;
  Status check_blockwise(size_t n, const char* what);  // also grows the caches, rewinds to 0
  std::unique_ptr<Architecture> arch_;
  Weights weights_;
  int pos_ = 0;
  int max_ctx_ = 0;
  int cache_cap_ = 0;
  bool encoded_ = false;
  std::string config_json_;
};

}  // namespace webquant
