// Config-driven Llama-family causal language model (transformers' LlamaForCausalLM and the
// architectures that share its graph), with a KV cache and model-level weight quantization.
//
// Supported: model_type "llama", "mistral", "qwen2"; grouped-query attention (any number of KV heads
// dividing the heads), explicit head_dim, q/k/v(/o) biases (qwen2: q/k/v always; llama:
// attention_bias), mlp_bias, tied or separate lm_head, rope_scaling null/"default"/"linear"/"llama3",
// mistral's sliding_window. F32, F16 and BF16 checkpoints in one or several safetensors shards.
// Everything computes in float32 (HF's fp32 semantics): RMSNorm sums of squares and softmax sums
// are accumulated in double and rounded once.
//
// Forward graph per layer (HF names):
//   h = x + o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))),  n1 = input_layernorm(x)
//   x' = h + down_proj(silu(gate_proj(n2)) * up_proj(n2)),                  n2 = post_attention_layernorm(h)
// then logits = lm_head(norm(x)). RoPE uses HF's rotate_half layout: for i < d/2,
//   q'[i] = q[i] cos - q[i + d/2] sin,  q'[i + d/2] = q[i + d/2] cos + q[i] sin,
//   angle = float(pos) * inv_freq[i],  inv_freq[i] = 1 / theta^(2i/d)   (float32, as HF).
//
// KV cache: per layer one float32 buffer for K and one for V, laid out [position][kv_head][head_dim]
// (a position's row is the k_proj / v_proj output after RoPE), so appending a token writes one
// contiguous row. Buffers grow on demand (doubling) up to max_context positions, so a 8192-position
// model does not reserve its whole window up front. forward() appends; reset() only rewinds.
//
// Quantization plugs in at the linear layers: every q/k/v/o/gate/up/down projection and lm_head is
// a webquant::LinearLayer (linear.h) owned by the model under its HF module name
// ("model.layers.3.mlp.down_proj", "lm_head"). quantize() swaps them for make_linear_quantized()
// layers by name pattern; forward() only ever calls LinearLayer::forward (prefill with m = n rows,
// decode with m = 1). The embedding and the norms stay float32. A tied lm_head that is not
// quantized has no LinearLayer: logits are computed against the embedding matrix itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webquant/linear.h"
#include "webquant/safetensors.h"
#include "webquant/sampling.h"
#include "webquant/status.h"

namespace webquant {

struct LlamaConfig {
  std::string model_type;  // "llama", "mistral" or "qwen2"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;  // default: num_attention_heads
  int head_dim = 0;             // default: hidden_size / num_attention_heads
  int vocab_size = 0;
  int max_position_embeddings = 0;
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // q/k/v_proj have biases (qwen2 always; llama when attention_bias)
  bool o_bias = false;    // o_proj has a bias (llama when attention_bias)
  bool mlp_bias = false;  // gate/up/down_proj have biases (llama mlp_bias)
  int sliding_window = 0;  // mistral: attend to the last W positions (0 = unlimited)
  int bos_token_id = -1;             // -1 when absent
  std::vector<int> eos_token_ids;    // "eos_token_id" may be an int or a list

  // rope_scaling: "none" (null / "default"), "linear" (inv_freq / factor) or "llama3".
  std::string rope_type = "none";
  float rope_factor = 1.0f;
  float rope_low_freq_factor = 1.0f;   // llama3
  float rope_high_freq_factor = 4.0f;  // llama3
  int rope_original_max_position_embeddings = 8192;  // llama3

  int q_dim() const { return num_attention_heads * head_dim; }
  int kv_dim() const { return num_key_value_heads * head_dim; }
};

// Parses and validates a transformers config.json. Errors: kCorruptData (not JSON),
// kUnsupported ("model_type 'X' is not supported; supported: llama, mistral, qwen2", an unsupported
// rope_scaling type or hidden_act), kInvalidArgument (a missing or non-positive size, heads not
// dividing, odd head_dim, ...), each naming the field.
Status parse_llama_config(std::string_view json_text, LlamaConfig* out);

struct LlamaLoadOptions {
  // KV-cache capacity in positions; 0 = max_position_embeddings. Larger than
  // max_position_embeddings is an error.
  int max_context = 0;
};

// Per-layer line of a quantize() report.
struct LayerQuantReport {
  std::string name;        // "model.layers.0.self_attn.q_proj", "lm_head"
  int out_features = 0;
  int in_features = 0;
  bool quantized = false;  // false when excluded (the layer is left as it was)
  std::string scheme;      // LinearLayer::describe() of the layer after the call
  size_t bytes_before = 0;  // weights + scales + bias; 0 for a tied lm_head without its own copy
  size_t bytes_after = 0;
  std::string note;        // fallback (e.g. group size does not divide), exclusion, tying
};

struct ModelQuantOptions {
  LinearQuantSpec default_spec;
  // Name patterns: an exact module name or a glob where '*' matches any run of characters
  // ("*.mlp.down_proj", "model.layers.0.*"). Excluded layers are left untouched.
  std::vector<std::string> exclude = {"lm_head"};
  // (pattern, spec); the first matching pattern wins over default_spec. A spec with scheme kF32
  // turns the layer back into float32 (from its current, possibly already quantized, weights).
  std::vector<std::pair<std::string, LinearQuantSpec>> overrides;
};

// True when `name` matches `pattern` ('*' = any run of characters, including none and dots).
bool module_name_matches(std::string_view pattern, std::string_view name);

// The spec ModelQuantOptions gives the layer `name`: false when an exclude pattern matches (spec
// untouched), else true with the first matching override or default_spec in *spec.
bool resolve_layer_spec(const ModelQuantOptions& options, std::string_view name,
                        LinearQuantSpec* spec);

// One linear module of a config, as LlamaModel holds it.
struct LlamaLinearInfo {
  std::string name;  // HF module name ("model.layers.0.self_attn.q_proj", "lm_head")
  int out_features = 0;
  int in_features = 0;
  bool has_bias = false;
};

// The linear modules of `config` in model order: q, k, v, o, gate, up, down per layer, lm_head
// last (listed also when tied).
std::vector<LlamaLinearInfo> llama_linear_layout(const LlamaConfig& config);

// Everything a model is made of, built elsewhere (a quantized checkpoint, a streaming quantizer)
// and handed to LlamaModel::assemble, which takes ownership without copying.
struct LlamaParts {
  std::vector<float> embed;                       // [vocab, hidden]
  std::vector<float> final_norm;                  // [hidden]
  std::vector<std::vector<float>> input_norms;    // per layer, [hidden]
  std::vector<std::vector<float>> post_norms;     // per layer, [hidden]
  // One per llama_linear_layout() entry, same order. The lm_head entry may be null when the
  // config ties it to the embedding (logits then read the embedding).
  std::vector<std::unique_ptr<LinearLayer>> linears;
};

// A float32 parameter that is not part of a linear layer (embedding, norms), viewed in place.
struct LlamaFloatParam {
  std::string name;            // HF tensor name, e.g. "model.layers.0.input_layernorm.weight"
  std::vector<int64_t> shape;  // [vocab, hidden] or [hidden]
  const float* data = nullptr;  // owned by the model; valid while it lives and is not reloaded
  size_t numel = 0;
};

struct ModuleBytes {
  std::string name;
  size_t bytes = 0;
};

// Like the course's compute_module_sizes / get_memory_footprint: bytes of parameters per module.
struct MemoryFootprint {
  std::vector<ModuleBytes> modules;  // embed_tokens, every linear (lm_head last), every norm
  size_t embedding = 0;
  size_t linear = 0;    // all linear layers except lm_head
  size_t norms = 0;
  size_t lm_head = 0;   // 0 when tied and not quantized (it shares the embedding)
  size_t total = 0;     // embedding + linear + norms + lm_head (the parameters)
  size_t kv_cache = 0;  // currently allocated KV-cache bytes (not part of total)
};

class LlamaModel {
 public:
  // Builds a model from HF tensors found by name across `shards` (the first shard holding a name
  // wins; unknown extra tensors are ignored). Errors: kNotFound naming a missing tensor,
  // kShapeMismatch naming the tensor with expected and actual shapes, kUnsupported for a dtype
  // other than F32/F16/BF16, kInvalidArgument for bad options.
  static Status load(const LlamaConfig& config,
                     const std::vector<const io::SafetensorsFile*>& shards,
                     std::unique_ptr<LlamaModel>* out, const LlamaLoadOptions& options = {});

  // Builds a model from parts (see LlamaParts). Errors: kShapeMismatch naming the parameter whose
  // size or linear shape disagrees with the config, kInvalidArgument for a missing (null) linear
  // other than a tied lm_head, a bias the config does not expect or lacks, bad options.
  static Status assemble(const LlamaConfig& config, LlamaParts parts,
                         std::unique_ptr<LlamaModel>* out, const LlamaLoadOptions& options = {});

  ~LlamaModel();
  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  // Runs n >= 1 tokens at positions position() .. position()+n-1, appending their K/V to the cache.
  // logits receives the last row ([vocab]) or, with all_logits, all n rows ([n, vocab] row-major).
  // Errors (the cache is left unchanged): kInvalidArgument for n == 0, a token id outside
  // [0, vocab) (naming index and id) or position()+n > max_context ("context overflow").
  Status forward(const int32_t* tokens, size_t n, bool all_logits, std::vector<float>* logits);

  void reset() { pos_ = 0; }       // forget the cache (memory is kept for reuse)
  int position() const { return pos_; }
  int max_context() const { return max_ctx_; }
  const LlamaConfig& config() const { return cfg_; }

  // Replaces linear layers by name (see ModelQuantOptions). `report` (optional) receives one
  // entry per linear layer, in model order. Errors from make_linear_quantized are returned with
  // the layer name; layers handled before the error keep their new form.
  Status quantize(const ModelQuantOptions& options, std::vector<LayerQuantReport>* report);

  MemoryFootprint memory_footprint() const;

  // The embedding, the per-layer norms (input then post_attention) and the final norm, in that
  // order, as views into the model (for saving).
  std::vector<LlamaFloatParam> float_params() const;

  // Linear layers by HF module name, in model order (q, k, v, o, gate, up, down per layer; lm_head
  // last). linear() returns nullptr for an unknown name and for a tied, unquantized lm_head.
  std::vector<std::string> linear_names() const;
  const LinearLayer* linear(const std::string& name) const;
  // Swaps in a layer built elsewhere (e.g. loaded from a quantized checkpoint). Its shape must
  // match (kShapeMismatch), the name must exist (kNotFound). Takes ownership.
  Status replace_linear(const std::string& name, std::unique_ptr<LinearLayer> layer);

  // Greedy / sampled continuation helper: feeds `prompt` (continuing the cache), then generates up
  // to max_new_tokens, stopping after an eos token (which is appended) or when the context is
  // full. Appends the new ids to *out; the caller's history for the repetition penalty is
  // the prompt plus the generated tokens.
  Status generate(const int32_t* prompt, size_t n_prompt, int max_new_tokens,
                  const SamplingOptions& sampling, std::vector<int32_t>* out);

 private:
  LlamaModel() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  LlamaConfig cfg_;
  int pos_ = 0;
  int max_ctx_ = 0;
};

}  // namespace webquant
