// Internal helpers shared by checkpoint_quant.cpp and checkpoint_dequant.cpp: JSON building, the
// scheme names of quantization_config, and the tensors of one quantized layer (the layouts of
// webquant/model_checkpoint.h). Not a public header.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/json.h"
#include "webquant/linear.h"
#include "webquant/status.h"

namespace webquant::ckpt {

using io::JsonValue;

constexpr const char* kQuantMethod = "webquant";
constexpr int kFormatVersion = 1;
constexpr const char* kMetadataKey = "quantization_config";
constexpr const char* kPackingLsbFirst = "lsb-first";
constexpr const char* kPackingNone = "none";

inline JsonValue jstr(std::string s) {
  JsonValue v;
  v.type = JsonValue::Type::kString;
  v.string = std::move(s);
  return v;
}
inline JsonValue jnum(double x) {
  JsonValue v;
  v.type = JsonValue::Type::kNumber;
  v.number = x;
  return v;
}
inline JsonValue jbool(bool b) {
  JsonValue v;
  v.type = JsonValue::Type::kBool;
  v.boolean = b;
  return v;
}
inline JsonValue jobj() {
  JsonValue v;
  v.type = JsonValue::Type::kObject;
  return v;
}
inline JsonValue jarr() {
  JsonValue v;
  v.type = JsonValue::Type::kArray;
  return v;
}
// Sets obj[key] (replacing an existing member).
void put(JsonValue* obj, const std::string& key, JsonValue v);
// Removes obj[key] (every copy); no-op when absent.
void erase(JsonValue* obj, const std::string& key);

Status corrupt(std::string msg);
std::string shape_str(const std::vector<int64_t>& s);

int scheme_bits(LinearScheme s);  // 8, 4, 2; 32 for f32
bool scheme_a8(LinearScheme s);
bool scheme_from_name(const std::string& name, LinearScheme* out);
// Reads the optional "method" of a layer entry ("rtn" when absent; "hqq" needs an asymmetric
// w4a16 / w2a16 layer). kUnsupported for an unknown method, kCorruptData for a bad combination.
Status parse_method(const JsonValue& o, const std::string& where, LinearScheme scheme,
                    bool asymmetric, QuantMethod* out);
// Reads "codebook" (required for lut4a16: nf4, log4, kmeans4; absent for every other scheme).
Status parse_codebook(const JsonValue& o, const std::string& where, LinearScheme scheme,
                      Codebook* out);

// A tensor with its own bytes, ready for io::write_safetensors.
struct OwnedTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// The qweight / zero_points / scales tensors of `d` under `module` (model_checkpoint.h layouts).
Status encode_quantized(const std::string& module, const LinearQuantizedData& d,
                        std::vector<OwnedTensor>* out);

// The scheme fields of a quantized layer entry (scheme, bits, mode, granularity, group_size,
// activations, packing, out_features, in_features, bias, fallback).
JsonValue quantized_entry(const LinearQuantizedData& d, bool has_bias);

// Parsed layer entry of quantization_config, as dequantizing needs it.
struct LayerEntry {
  LinearScheme scheme = LinearScheme::kF32;
  int bits = 32;
  bool asymmetric = false;
  int group_size = 0;
  int out_features = 0, in_features = 0;
  bool transposed = false;
  std::vector<int64_t> shape;  // conv: the source 4-D shape; empty otherwise
  std::string source_dtype;    // "F32" | "F16" | "BF16"; "" when absent
  QuantMethod method = QuantMethod::kRtn;  // hqq: zero_points are F32 (float zero points)
  Codebook codebook = Codebook::kNone;     // lut4a16: its table is the F32 tensor <name>.codebook
};

// Parses one entry of "layers" (where = its JSON path, for messages).
Status parse_layer_entry(const JsonValue& o, const std::string& where, LayerEntry* out);

}  // namespace webquant::ckpt
