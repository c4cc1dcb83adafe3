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
// `tables` (quantized embedding tables, name = the module) go under "embeddings" when not empty;
// `distillation` (Weights::distillation_record, a JSON object) under "distillation" when not "".
io::JsonValue quantization_config_json(const std::vector<CheckpointLayer>& layers,
                                       const std::vector<CheckpointLayer>& tables = {},
                                       const std::string& distillation = "");
// The quantization_config object inside `root`: root itself when it has quant_method, else its
// "quantization_config" member (nullptr when absent).
const io::JsonValue* qconfig_of(const io::JsonValue& root);
// One CheckpointLayer per linear of `model`, in layout order (see parse_quantization_config).
Status parse_qconfig_value(const io::JsonValue& q, const ModelLayout& model,
                           std::vector<CheckpointLayer>* layers);
// The quantized embedding tables of q's "embeddings" member (none when absent): one
// CheckpointLayer per entry, name = the module ("model.embed_tokens"), out/in = the table's
// [rows, dim]. kCorruptData for a name that is not an embedding table of `model`, a float or
// malformed scheme; kShapeMismatch for a shape that is not the table's.
Status parse_qconfig_tables(const io::JsonValue& q, const ModelLayout& model,
                            std::vector<CheckpointLayer>* tables);
// q's "distillation" record as compact JSON text ("" when absent); kCorruptData when it is not an
// object.
Status parse_qconfig_distillation(const io::JsonValue& q, std::string* out);

}  // namespace webquant::ckpt
