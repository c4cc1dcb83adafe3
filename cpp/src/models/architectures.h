// The architectures webquant runs, by config.json model_type (internal). Each factory parses its
// own config fields (errors name the field) and returns an Architecture ready to build().
#pragma once

#include <memory>

#include "io/json.h"
#include "webquant/causal_lm.h"

namespace webquant::models {

// `config` is config.json parsed; `text` is its text.
Status make_llama(std::string_view text, std::unique_ptr<Architecture>* out);  // llama, mistral, qwen2
Status make_gpt2(const io::JsonValue& config, std::unique_ptr<Architecture>* out);      // gpt2
Status make_gpt_neox(const io::JsonValue& config, std::unique_ptr<Architecture>* out);  // gpt_neox
Status make_t5(const io::JsonValue& config, std::unique_ptr<Architecture>* out);        // t5
Status make_blip(const io::JsonValue& config, std::unique_ptr<Architecture>* out);      // blip

// Dispatches on model_type. kUnsupported for an unknown type, naming the supported ones.
Status make_architecture(std::string_view config_json, std::unique_ptr<Architecture>* out);

}  // namespace webquant::models
