// The quantization_config schema of webquant's checkpoints (internal, shared by checkpoint.cpp):
// writing it from the layers' descriptions and parsing / validating it against a model layout.
// Format and error contract in webquant/model_checkpoint.h.
#pragma once

#include <string>
#include <vector>

#include "io/json.h"
#include "quant/checkpoint_format.h"
#include "webquant/model_checkpoint.h"

namespace webquant::ckpt {

// {"quant_method": "webquant", "version", "packing", "default", "layers"} for `layers`.
io::JsonValue quantization_config_json(const std::vector<CheckpointLayer>& layers);
// The quantization_config object inside `root`: root itself when it has quant_method, else its
// "quantization_config" member (nullptr when absent).
const io::JsonValue* qconfig_of(const io::JsonValue& root);
// One CheckpointLayer per linear of `model`, in layout order (see parse_quantization_config).
Status parse_qconfig_value(const io::JsonValue& q, const ModelLayout& model,
                           std::vector<CheckpointLayer>* layers);

}  // namespace webquant::ckpt
