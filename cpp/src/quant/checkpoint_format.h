// Internal helpers shared by checkpoint_quant.cpp and checkpoint_dequant.cpp: JSON building, the
// scheme names of quantization_config, and the tensors of one quantized layer (the layouts of
// webquant/model_checkpoint.h). Not a public header.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "io/json.h"
#include "quant/linear_internal.h"
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

using linear_detail::scheme_a8;
using linear_detail::scheme_bits;
bool scheme_from_name(const std::string& name, LinearScheme* out);
// How a layer's codes were chosen, as a layer entry records it: "method" (absent: rtn), "grid"
// ("hqq": a gptq layer rounded onto HQQ's grid; absent or "rtn" otherwise) and "range_search"
// (HqqParams::clip_steps of an HQQ grid, in [0, 100]; absent: 0).
struct MethodRecord {
  QuantMethod method = QuantMethod::kRtn;
  bool hqq_grid = false;  // method gptq on HQQ's grid
  int range_search = 0;   // only on an HQQ grid (method hqq, or hqq_grid)
  // The layer is stored in HQQ's form (F32 zero points, signed code domain).
  bool float_zero() const { return method == QuantMethod::kHqq || hqq_grid; }
};
// Reads the optional "method", "grid" and "range_search" of a layer entry. An HQQ grid (method
// hqq, or gptq with grid hqq) needs an asymmetric w4a16 / w3a16 / w2a16 layer; "grid" belongs to
// method gptq and "range_search" to an HQQ grid. kUnsupported for an unknown method or grid,
// kCorruptData for a bad combination or value. Files written before "grid" existed store a
// gptq layer on HQQ's grid as method hqq (the same tensors): they read as method hqq.
Status parse_method(const JsonValue& o, const std::string& where, LinearScheme scheme,
                    bool asymmetric, MethodRecord* out);
// Writes r's "method" (when not rtn), "grid": "hqq" and "range_search" (when > 0) into o.
void put_method(const MethodRecord& r, JsonValue* o);
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
  bool hqq_grid = false;                   // gptq on HQQ's grid: zero_points are F32 as well
  int range_search = 0;                    // HqqParams::clip_steps of an HQQ grid (a record)
  Codebook codebook = Codebook::kNone;     // lut4a16: its table is the F32 tensor <name>.codebook
};

// Parses one entry of "layers" (where = its JSON path, for messages).
Status parse_layer_entry(const JsonValue& o, const std::string& where, LayerEntry* out);

}  // namespace webquant::ckpt
