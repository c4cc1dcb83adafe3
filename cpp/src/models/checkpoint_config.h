// The quantization_config schema of webquant's checkpoints (internal, shared by checkpoint.cpp):
// writing it from the layers' descriptions and parsing / validating it against a model layout.
// Format and error contract in webquant/model_checkpoint.h.
#pragma once

#include <string>
#include <vector>

#include "io/json.h"
#include "webquant/model_checkpoint.h"

namespace webquant::ckpt {

constexpr int kFormatVersion = 1;
constexpr const char* kQuantMethod = "webquant";
constexpr const char* kPackingLsbFirst = "lsb-first";
constexpr const char* kPackingNone = "none";
constexpr const char* kMetadataKey = "quantization_config";

Status corrupt(std::string msg);
std::string shape_str(const std::vector<int64_t>& s);
io::JsonValue jstr(std::string s);
io::JsonValue jnum(double x);
io::JsonValue jobj();
void put(io::JsonValue* obj, std::string key, io::JsonValue v);

// {"quant_method": "webquant", "version", "packing", "default", "layers"} for `layers`.
io::JsonValue quantization_config_json(const std::vector<CheckpointLayer>& layers);
// The quantization_config object inside `root`: root itself when it has quant_method, else its
// "quantization_config" member (nullptr when absent).
const io::JsonValue* qconfig_of(const io::JsonValue& root);
// One CheckpointLayer per linear of `model`, in layout order (see parse_quantization_config).
Status parse_qconfig_value(const io::JsonValue& q, const ModelLayout& model,
                           std::vector<CheckpointLayer>* layers);

}  // namespace webquant::ckpt
