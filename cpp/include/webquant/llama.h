// Config of the Llama-family architectures (transformers' LlamaForCausalLM and the ones sharing its
// graph: mistral, qwen2). The model itself is a CausalLM (causal_lm.h) built by
// cpp/src/models/llama/llama.cpp from the shared module layer.
//
// Supported: model_type "llama", "mistral", "qwen2"; grouped-query attention (any number of KV heads
// dividing the heads), explicit head_dim, q/k/v(/o) biases (qwen2: q/k/v always; llama:
// attention_bias), mlp_bias, tied or separate lm_head, rope_scaling null/"default"/"linear"/"llama3",
// mistral's sliding_window. RoPE uses HF's rotate_half layout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

// A transformers config.json text for `config` (what parse_llama_config reads back to the same
// values), e.g. for a model imported from GGUF.
std::string llama_config_to_json(const LlamaConfig& config);

}  // namespace webquant
