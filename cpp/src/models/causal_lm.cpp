// CausalLM (webquant/causal_lm.h): architecture dispatch, input checks, the KV-cache growth
// policy and generation; the graph itself lives in models/<arch>/.
#include "webquant/causal_lm.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "models/architectures.h"
#include "models/config_fields.h"

namespace webquant {

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> types = {"blip", "gpt2", "gpt_neox", "llama", "mistral", "qwen2", "t5"};
  return types;
}

namespace {

Status check_ids(const char* what, const int32_t* ids, size_t n, int vocab) {
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return Status::Error(StatusCode::kInvalidArgument,
                           std::string(what) + ": token " + std::to_string(i) + " has id " +
                               std::to_string(ids[i]) + ", outside the vocabulary [0, " +
                               std::to_string(vocab) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

namespace models {

Status make_architecture(std::string_view config_json, std::unique_ptr<Architecture>* out) {
  io::JsonValue root;
  WQ_RETURN_IF_ERROR(config::parse_object(config_json, &root));
  std::string type;
  WQ_RETURN_IF_ERROR(config::read_string(root, "model_type", &type));
  if (type.empty()) return config::bad("missing 'model_type'");
  if (type == "llama" || type == "mistral" || type == "qwen2") return make_llama(config_json, out);
  if (type == "gpt2") return make_gpt2(root, out);
  if (type == "gpt_neox") return make_gpt_neox(root, out);
  if (type == "t5") return make_t5(root, out);
  if (type == "blip") return make_blip(root, out);
  std::string list;
  for (const std::string& t : supported_model_types()) list += (list.empty() ? "" : ", ") + t;
  return Status::Error(StatusCode::kUnsupported,
                       "model_type '" + type + "' is not supported; supported: " + list +
                           " (quantizeCheckpoint quantizes the weights of any model type)");
}

}  // namespace models

CausalLM::~CausalLM() = default;

Status CausalLM::layout(std::string_view config_json, ModelLayout* out, ModelInfo* info) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "layout: out is null");
  std::unique_ptr<Architecture> arch;
  WQ_RETURN_IF_ERROR(models::make_architecture(config_json, &arch));
  Weights w;
  VarBuilder vb(&w, nullptr);
  arch->build(vb);
  WQ_RETURN_IF_ERROR(vb.status());
  *out = w.layout();
  if (info != nullptr) *info = arch->info();
  return Status::Ok();
}

Status CausalLM::load(std::string_view config_json, WeightSource& source,
                      std::unique_ptr<CausalLM>* out, const LoadOptions& options) {
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "load: out is null");
  std::unique_ptr<Architecture> arch;
  WQ_RETURN_IF_ERROR(models::make_architecture(config_json, &arch));
  const int max_pos = arch->info().max_position_embeddings;
  if (options.max_context < 0 || options.max_context > max_pos) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "load: max_context " + std::to_string(options.max_context) +
                             " must be in [0, max_position_embeddings = " + std::to_string(max_pos) + "]");
  }
  const int dt = static_cast<int>(options.dtype);
  if (dt < 0 || dt > static_cast<int>(FloatType::kBF16)) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "load: dtype " + std::to_string(dt) + " is not float32, float16 or bfloat16");
  }
  source.set_dtype(options.dtype);
  std::unique_ptr<CausalLM> m(new CausalLM());
  VarBuilder vb(&m->weights_, &source);
  arch->build(vb);
  WQ_RETURN_IF_ERROR(vb.status());
  m->arch_ = std::move(arch);
  m->config_json_ = std::string(config_json);
  m->max_ctx_ = options.max_context ? options.max_context : max_pos;
  *out = std::move(m);
  return Status::Ok();
}

Status CausalLM::load(std::string_view config_json,
                      const std::vector<const io::SafetensorsFile*>& shards,
                      std::unique_ptr<CausalLM>* out, const LoadOptions& options) {
  SafetensorsSource source(shards);
  return load(config_json, source, out, options);
}

Status CausalLM::forward(const int32_t* tokens, size_t n, bool all_logits, std::vector<float>* logits) {
  const ModelInfo& mi = info();
  if (n == 0 || tokens == nullptr) {
    return Status::Error(StatusCode::kInvalidArgument, "forward: no tokens given");
  }
  if (logits == nullptr) return Status::Error(StatusCode::kInvalidArgument, "forward: logits is null");
  WQ_RETURN_IF_ERROR(check_ids("forward", tokens, n, mi.vocab_size));
  if (arch_->encoder_decoder() && !encoded_) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "forward: " + mi.model_type +
                             (mi.image_size > 0 ? " is an image-to-text model: encode_image() an image first"
                                                : " is an encoder-decoder model: encode() the input first"));
  }
  if (n > static_cast<size_t>(max_ctx_ - pos_)) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "forward: context overflow: position " + std::to_string(pos_) + " + " +
                             std::to_string(n) + " tokens exceeds the maximum context of " +
                             std::to_string(max_ctx_) + " positions (call reset())");
  }
  // Grow the caches (doubling, capped at max_context) so that they hold pos_ + n rows.
  const int need = pos_ + static_cast<int>(n);
  if (need > cache_cap_) {
    cache_cap_ = std::max(need, std::min(max_ctx_, std::max(16, cache_cap_ * 2)));
    arch_->reserve_cache(cache_cap_);
  }
  const size_t rows = all_logits ? n : 1;
  logits->resize(rows * static_cast<size_t>(mi.vocab_size));
  arch_->forward(weights_, tokens, n, pos_, rows, logits->data());
  pos_ = need;
  return Status::Ok();
}

Status CausalLM::check_blockwise(size_t n, const char* what) {
  if (arch_->num_blocks() == 0)
    return Status::Error(StatusCode::kUnsupported, std::string(what) + ": " + info().model_type + " does not run block by block");
  if (n == 0) return Status::Error(StatusCode::kInvalidArgument, std::string(what) + ": no tokens given");
  if (n > static_cast<size_t>(max_ctx_))
    return Status::Error(StatusCode::kInvalidArgument, std::string(what) + ": " + std::to_string(n) + " tokens exceed the maximum context of " + std::to_string(max_ctx_) + " positions");
  if (static_cast<int>(n) > cache_cap_) {
    cache_cap_ = std::max(static_cast<int>(n), std::min(max_ctx_, std::max(16, cache_cap_ * 2)));
    arch_->reserve_cache(cache_cap_);
  }
  pos_ = 0;
  return Status::Ok();
}

Status CausalLM::embed_tokens(const int32_t* tokens, size_t n, std::vector<float>* x) {
  if (tokens == nullptr || x == nullptr) return Status::Error(StatusCode::kInvalidArgument, "embed_tokens: null argument");
  WQ_RETURN_IF_ERROR(check_blockwise(n, "embed_tokens"));
  WQ_RETURN_IF_ERROR(check_ids("forward", tokens, n, info().vocab_size));
  x->resize(n * static_cast<size_t>(info().hidden_size));
  arch_->embed(weights_, tokens, n, 0, x->data());
  return Status::Ok();
}

Status CausalLM::run_block(int block, float* x, size_t n) {
  if (x == nullptr) return Status::Error(StatusCode::kInvalidArgument, "run_block: x is null");
  WQ_RETURN_IF_ERROR(check_blockwise(n, "run_block"));
  if (block < 0 || block >= arch_->num_blocks())
    return Status::Error(StatusCode::kInvalidArgument, "run_block: block " + std::to_string(block) + " is outside [0, " + std::to_string(arch_->num_blocks()) + ")");
  arch_->run_block(weights_, block, x, n, 0);
  return Status::Ok();
}

Status CausalLM::run_head(const float* x, size_t n, bool all_logits, std::vector<float>* logits) {
  if (x == nullptr || logits == nullptr) return Status::Error(StatusCode::kInvalidArgument, "run_head: null argument");
  WQ_RETURN_IF_ERROR(check_blockwise(n, "run_head"));
  const size_t rows = all_logits ? n : 1;
  logits->resize(rows * static_cast<size_t>(info().vocab_size));
  arch_->run_head(weights_, x, n, rows, logits->data());
  return Status::Ok();
}

Status CausalLM::encode(const int32_t* ids, size_t n) {
  const ModelInfo& mi = info();
  if (!arch_->encoder_decoder()) {
    return Status::Error(StatusCode::kUnsupported, "encode: " + mi.model_type + " is a decoder-only model");
  }
  if (mi.image_size > 0) {
    return Status::Error(StatusCode::kUnsupported, "encode: " + mi.model_type + " takes an image: use encode_image()");
  }
  if (n == 0 || ids == nullptr) return Status::Error(StatusCode::kInvalidArgument, "encode: the input is empty");
  if (n > static_cast<size_t>(max_ctx_)) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "encode: input too long: " + std::to_string(n) + " tokens exceed the maximum of " +
                             std::to_string(max_ctx_));
  }
  WQ_RETURN_IF_ERROR(check_ids("encode", ids, n, mi.vocab_size));
  arch_->encode(weights_, ids, n);
  encoded_ = true;
  pos_ = 0;
  return Status::Ok();
}

Status CausalLM::encode_image(const float* chw, int channels, int height, int width) {
  const ModelInfo& mi = info();
  if (mi.image_size <= 0) {
    return Status::Error(StatusCode::kUnsupported, "encode_image: " + mi.model_type + " is a text model");
  }
  if (chw == nullptr) return Status::Error(StatusCode::kInvalidArgument, "encode_image: the image is null");
  if (channels != mi.num_channels || height != mi.image_size || width != mi.image_size) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "encode_image: the image is " + std::to_string(channels) + " x " + std::to_string(height) +
                             " x " + std::to_string(width) + " (channels x height x width); " + mi.model_type +
                             " takes " + std::to_string(mi.num_channels) + " x " + std::to_string(mi.image_size) +
                             " x " + std::to_string(mi.image_size) + " (preprocess it first)");
  }
  const size_t n = static_cast<size_t>(channels) * static_cast<size_t>(height) * static_cast<size_t>(width);
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(chw[i])) {
      return Status::Error(StatusCode::kInvalidArgument,
                           "encode_image: pixel value " + std::to_string(i) + " is not finite");
    }
  }
  arch_->encode_image(weights_, chw);
  encoded_ = true;
  pos_ = 0;
  return Status::Ok();
}

Status CausalLM::prefill(const int32_t* prompt, size_t n, std::vector<float>* logits) {
  if (!arch_->encoder_decoder() || info().image_size > 0) {
    reset();
    return forward(prompt, n, false, logits);
  }
  WQ_RETURN_IF_ERROR(encode(prompt, n));
  const int32_t start = info().decoder_start_token_id;
  return forward(&start, 1, false, logits);
}

MemoryFootprint CausalLM::memory_footprint() const {
  MemoryFootprint f = weights_.memory_footprint();
  f.kv_cache = arch_->kv_cache_bytes();
  return f;
}

Status CausalLM::generate(const int32_t* prompt, size_t n_prompt, int max_new_tokens,
                          const SamplingOptions& sampling, std::vector<int32_t>* out) {
  WQ_RETURN_IF_ERROR(Sampler::validate(sampling));
  if (out == nullptr) return Status::Error(StatusCode::kInvalidArgument, "generate: out is null");
  if (max_new_tokens < 0) {
    return Status::Error(StatusCode::kInvalidArgument, "generate: max_new_tokens must be >= 0");
  }
  const std::vector<int>& eos_ids = info().eos_token_ids;
  Sampler sampler(sampling);
  std::vector<float> logits;
  std::vector<int32_t> history;
  if (arch_->encoder_decoder() && info().image_size == 0) {  // the penalty looks at the decoder's tokens
    WQ_RETURN_IF_ERROR(prefill(prompt, n_prompt, &logits));
    history.push_back(info().decoder_start_token_id);
  } else {
    history.assign(prompt, prompt + n_prompt);
    if (info().image_size > 0) reset();  // a caption starts afresh over the encoded image
    WQ_RETURN_IF_ERROR(forward(prompt, n_prompt, false, &logits));
  }
  for (int t = 0; t < max_new_tokens; ++t) {
    int32_t tok = 0;
    WQ_RETURN_IF_ERROR(sampler.sample(logits.data(), logits.size(), history.data(), history.size(), &tok));
    out->push_back(tok);
    history.push_back(tok);
    const bool eos = std::find(eos_ids.begin(), eos_ids.end(), tok) != eos_ids.end();
    if (eos || t + 1 == max_new_tokens || pos_ >= max_ctx_) break;
    WQ_RETURN_IF_ERROR(forward(&tok, 1, false, &logits));
  }
  return Status::Ok();
}

}  // namespace webquant
