// Llama's RoPE frequency scalings (internal): rope_scaling "linear" divides inv_freq by the
// factor; "llama3" applies transformers' _compute_llama3_parameters.
#pragma once

#include <vector>

#include "webquant/llama.h"

namespace webquant::models {

// Rescales inv_freq (head_dim/2 entries from nn::Rotary::init) as cfg.rope_type asks.
void rescale_llama_rope(const LlamaConfig& cfg, std::vector<float>* inv_freq);

}  // namespace webquant::models
