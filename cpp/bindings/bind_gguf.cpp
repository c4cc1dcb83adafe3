// Embind bindings of GGUF (cpp/include/webquant/gguf.h, llama_gguf.h): export a Llama checkpoint
// to GGUF, convert a GGUF Llama back to a float32 safetensors checkpoint, and summarize a file.
// The TypeScript side is web/src/models/gguf.ts.
//
// Boundary conventions (as bind_core.cpp / bind_model.cpp):
//  - Nothing throws. Every call returns an object with {code, message}: code is a
//    webquant::StatusCode (0 = ok) and TypeScript turns a non-zero code into a WebQuantError.
//  - Inputs are byte offsets into the wasm heap (malloc'ed and filled by the caller with one
//    HEAPU8.set, freed by the caller after the call).
//  - A returned buffer {ptr, byteLength} was malloc'ed here; the caller copies it out and frees it
//    with _free. On error ptr is 0 and nothing needs freeing.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "io/json.h"
#include "js_status.h"
#include "js_val.h"
#include "model_handle.h"
#include "webquant/gguf.h"
#include "webquant/causal_lm.h"
#include "webquant/model_checkpoint.h"
#include "webquant/llama_gguf.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {
namespace {

using emscripten::val;

// exportLlamaGguf() returns a bindings::JsBuffer {code, message, ptr, byteLength} (registered as
// WqBuffer by bind_core.cpp): ptr malloc'ed here, freed by the caller.
using bindings::JsBuffer;
using bindings::bad;
using bindings::error_as;

// ggufToCheckpoint(): config.json text plus a float32 model.safetensors image (malloc'ed), and
// the GGUF's add-BOS flag for a tokenizer_config.json the caller may lack.
struct GgufJsCheckpoint {
  int code = 0;
  std::string message;
  std::string configJson;
  uintptr_t ptr = 0;
  size_t byteLength = 0;
  int addBosToken = -1;  // tokenizer.ggml.add_bos_token: 1 / 0, -1 when absent
};

// Copies `bytes` into a malloc'ed block the caller frees.
Status to_malloc(const std::vector<uint8_t>& bytes, uintptr_t* ptr) {
  void* p = std::malloc(bytes.empty() ? 1 : bytes.size());
  if (!p)
    return bad(StatusCode::kOutOfMemory,
               "out of wasm memory for a " + std::to_string(bytes.size()) + "-byte result");
  if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
  *ptr = reinterpret_cast<uintptr_t>(p);
  return Status::Ok();
}

// type: ggml type number of the 2-D weights (0 F32, 1 F16, 8 Q8_0, 2 Q4_0, 3 Q4_1).
JsBuffer exportLlamaGguf(std::string config_json, std::string tokenizer_json, val shards,
                             int type, std::string name) {
  std::vector<io::SafetensorsFile> files;
  std::vector<const io::SafetensorsFile*> views;
  Status s = bindings::parse_shards_js(shards, "GGUF export", &files, &views);
  if (!s.ok()) return error_as<JsBuffer>(s);
  if (type < 0) return error_as<JsBuffer>(bad(StatusCode::kInvalidArgument, "GGUF export: type must be >= 0"));
  GgufExportOptions options;
  options.type = static_cast<uint32_t>(type);
  options.name = std::move(name);
  std::vector<uint8_t> bytes;
  bool quantized = false;
  s = has_quantization_config(config_json, &quantized);
  if (!s.ok()) return error_as<JsBuffer>(s);
  if (quantized) {
    // webquant's own quantized checkpoint: int8 g32 layers go to Q8_0 from their codes.
    std::unique_ptr<CausalLM> model;
    s = load_checkpoint(config_json, views, &model);
    if (s.ok()) s = export_llama_gguf_model(*model, tokenizer_json, options, &bytes);
  } else {
    s = export_llama_gguf(config_json, tokenizer_json, views, options, &bytes);
  }
  if (!s.ok()) return error_as<JsBuffer>(s);
  JsBuffer r;
  s = to_malloc(bytes, &r.ptr);
  if (!s.ok()) return error_as<JsBuffer>(s);
  r.byteLength = bytes.size();
  return r;
}

// True when a linear weight of the file (blk.N.attn_* / ffn_*, output) is Q8_0.
bool has_q8_0_linear(const io::GgufFile& gguf) {
  for (const io::GgufTensorInfo& t : gguf.tensors) {
    const bool linear = t.name == "output.weight" ||
                        (t.name.rfind("blk.", 0) == 0 && t.name.find("_norm") == std::string::npos);
    if (linear && t.type == static_cast<uint32_t>(io::GgmlType::kQ8_0)) return true;
  }
  return false;
}

// GGUF bytes at ptr -> config.json + safetensors (HF names, q/k un-permuted): float32 weights,
// or webquant's quantized format when Q8_0 linear weights are kept as int8 g32 layers.
GgufJsCheckpoint ggufToCheckpoint(uintptr_t ptr, size_t len) {
  std::vector<uint8_t> image;
  std::string config;
  int add_bos = -1;
  {
    io::GgufFile gguf;
    Status s = io::parse_gguf(reinterpret_cast<const uint8_t*>(ptr), len, &gguf);
    if (!s.ok()) return error_as<GgufJsCheckpoint>(s);
    if (const io::GgufValue* b = gguf.get("tokenizer.ggml.add_bos_token"); b && b->type == io::GgufValueType::kBool)
      add_bos = b->u != 0 ? 1 : 0;
    if (has_q8_0_linear(gguf)) {
      // Q8_0 linear weights load as int8 g32 layers from their codes (no float round trip) and
      // come out in webquant's quantized checkpoint format, which fromFiles loads as such.
      std::unique_ptr<CausalLM> model;
      s = load_llama_gguf_model(gguf, &model);
      std::vector<CheckpointFile> files;
      if (s.ok()) s = save_checkpoint(model->weights(), model->config_json(), {}, &files);
      if (!s.ok()) return error_as<GgufJsCheckpoint>(s);
      config.assign(files[0].bytes.begin(), files[0].bytes.end());
      image = std::move(files[1].bytes);
      GgufJsCheckpoint r;
      s = to_malloc(image, &r.ptr);
      if (!s.ok()) return error_as<GgufJsCheckpoint>(s);
      r.byteLength = image.size();
      r.configJson = std::move(config);
      r.addBosToken = add_bos;
      return r;
    }
    GgufLlamaImport import;
    s = import_llama_gguf(gguf, &import);
    if (!s.ok()) return error_as<GgufJsCheckpoint>(s);
    std::vector<io::TensorRecord> records;
    for (const io::TensorView& t : import.tensors.tensors)
      records.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
    std::map<std::string, std::string> metadata = {{"format", "pt"}, {"source", "gguf"}};
    if (const io::GgufValue* n = gguf.get("general.name"); n && n->type == io::GgufValueType::kString)
      metadata["gguf.general.name"] = n->str;
    s = io::write_safetensors(records, metadata, &image);
    if (!s.ok()) return error_as<GgufJsCheckpoint>(s);
    config = llama_config_to_json(import.config);
  }  // the float32 import storage is released before the result copy
  GgufJsCheckpoint r;
  Status s = to_malloc(image, &r.ptr);
  if (!s.ok()) return error_as<GgufJsCheckpoint>(s);
  r.byteLength = image.size();
  r.configJson = std::move(config);
  r.addBosToken = add_bos;
  return r;
}

const char* value_type_name(io::GgufValueType t) {
  switch (t) {
    case io::GgufValueType::kUint8: return "uint8";
    case io::GgufValueType::kInt8: return "int8";
    case io::GgufValueType::kUint16: return "uint16";
    case io::GgufValueType::kInt16: return "int16";
    case io::GgufValueType::kUint32: return "uint32";
    case io::GgufValueType::kInt32: return "int32";
    case io::GgufValueType::kFloat32: return "float32";
    case io::GgufValueType::kBool: return "bool";
    case io::GgufValueType::kString: return "string";
    case io::GgufValueType::kArray: return "array";
    case io::GgufValueType::kUint64: return "uint64";
    case io::GgufValueType::kInt64: return "int64";
    case io::GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

constexpr size_t kPreview = 8;  // array elements shown by ggufInfo

// One scalar as a JS value (64-bit integers become doubles: exact below 2^53).
val scalar_to_js(const io::GgufValue& v) {
  switch (v.type) {
    case io::GgufValueType::kString: return val(v.str);
    case io::GgufValueType::kBool: return val(v.u != 0);
    default: return val(v.as_number());
  }
}

// {key, type, value} for scalars; arrays: {key, type: 'array', elementType, length, preview}.
val metadata_to_js(const std::string& key, const io::GgufValue& v) {
  val e = val::object();
  e.set("key", key);
  e.set("type", std::string(value_type_name(v.type)));
  if (v.type != io::GgufValueType::kArray) {
    e.set("value", scalar_to_js(v));
    return e;
  }
  e.set("elementType", std::string(value_type_name(v.elem_type)));
  val preview = val::array();
  size_t length = 0;
  if (v.elem_type == io::GgufValueType::kString) {
    length = v.strs.size();
    for (size_t i = 0; i < length && i < kPreview; ++i) preview.set(i, v.strs[i]);
  } else if (v.elem_type == io::GgufValueType::kFloat32 || v.elem_type == io::GgufValueType::kFloat64) {
    length = v.floats.size();
    for (size_t i = 0; i < length && i < kPreview; ++i) preview.set(i, v.floats[i]);
  } else if (v.elem_type == io::GgufValueType::kBool) {
    length = v.ints.size();
    for (size_t i = 0; i < length && i < kPreview; ++i) preview.set(i, v.ints[i] != 0);
  } else {
    length = v.ints.size();
    for (size_t i = 0; i < length && i < kPreview; ++i) preview.set(i, static_cast<double>(v.ints[i]));
  }
  e.set("length", static_cast<double>(length));
  e.set("preview", preview);
  return e;
}

// {code, message, version, alignment, metadata: [...], tensors: [{name, shape, type, typeId,
//  offset, byteLength}]}; shape is row-major (outermost first), the reverse of GGUF's ne.
val ggufInfo(uintptr_t ptr, size_t len) {
  io::GgufFile gguf;
  Status s = io::parse_gguf(reinterpret_cast<const uint8_t*>(ptr), len, &gguf);
  val out = bindings::status_val(s);
  if (!s.ok()) return out;
  out.set("version", gguf.version);
  out.set("alignment", static_cast<double>(gguf.alignment));
  val metadata = val::array();
  for (size_t i = 0; i < gguf.metadata.size(); ++i)
    metadata.set(i, metadata_to_js(gguf.metadata[i].first, gguf.metadata[i].second));
  out.set("metadata", metadata);
  val tensors = val::array();
  for (size_t i = 0; i < gguf.tensors.size(); ++i) {
    const io::GgufTensorInfo& t = gguf.tensors[i];
    val e = val::object();
    e.set("name", t.name);
    val shape = val::array();
    for (size_t d = 0; d < t.ne.size(); ++d) shape.set(d, static_cast<double>(t.ne[t.ne.size() - 1 - d]));
    e.set("shape", shape);
    e.set("type", std::string(io::ggml_type_name(t.type)));
    e.set("typeId", t.type);
    e.set("offset", static_cast<double>(t.offset));
    e.set("byteLength", static_cast<double>(t.nbytes));
    tensors.set(i, e);
  }
  out.set("tensors", tensors);
  return out;
}

// Loads a GGUF Llama straight into `handle` (load_llama_gguf_model: block-type linear weights
// repacked onto webquant's layers, no float round trip). -> {code, message, configJson,
// addBosToken (1 / 0, -1 when absent)}. The caller owns and frees the bytes at ptr.
val loadGgufModel(bindings::ModelHandle& handle, uintptr_t ptr, size_t len, int max_context) {
  io::GgufFile gguf;
  Status s = io::parse_gguf(reinterpret_cast<const uint8_t*>(ptr), len, &gguf);
  std::unique_ptr<CausalLM> model;
  LoadOptions options;
  if (max_context < 0) s = bad(StatusCode::kInvalidArgument, "maxContext must be >= 0");
  options.max_context = max_context;
  if (s.ok()) s = load_llama_gguf_model(gguf, &model, options);
  val out = bindings::status_val(s);
  if (!s.ok()) return out;
  int add_bos = -1;
  if (const io::GgufValue* b = gguf.get("tokenizer.ggml.add_bos_token"); b && b->type == io::GgufValueType::kBool)
    add_bos = b->u != 0 ? 1 : 0;
  out.set("configJson", model->config_json());
  out.set("addBosToken", add_bos);
  handle.adopt(std::move(model));
  return out;
}

// The tokenizer.ggml.* metadata in full -> {code, message, keys: {<key without the
// "tokenizer.ggml." prefix>: string | number | boolean | array}} (chat_template included as
// "tokenizer.chat_template"). Arrays of strings, numbers (ints and floats) are copied whole.
val ggufTokenizer(uintptr_t ptr, size_t len) {
  io::GgufFile gguf;
  Status s = io::parse_gguf(reinterpret_cast<const uint8_t*>(ptr), len, &gguf);
  val out = bindings::status_val(s);
  if (!s.ok()) return out;
  val keys = val::object();
  const std::string prefix = "tokenizer.ggml.";
  for (const auto& kv : gguf.metadata) {
    const std::string& key = kv.first;
    const io::GgufValue& v = kv.second;
    std::string name;
    if (key.rfind(prefix, 0) == 0) name = key.substr(prefix.size());
    else if (key == "tokenizer.chat_template") name = key;
    else continue;
    if (v.type != io::GgufValueType::kArray) {
      keys.set(name, scalar_to_js(v));
      continue;
    }
    val a = val::array();
    if (v.elem_type == io::GgufValueType::kString) {
      for (size_t i = 0; i < v.strs.size(); ++i) a.set(i, v.strs[i]);
    } else if (v.elem_type == io::GgufValueType::kFloat32 || v.elem_type == io::GgufValueType::kFloat64) {
      for (size_t i = 0; i < v.floats.size(); ++i) a.set(i, v.floats[i]);
    } else {
      for (size_t i = 0; i < v.ints.size(); ++i) a.set(i, static_cast<double>(v.ints[i]));
    }
    keys.set(name, a);
  }
  out.set("keys", keys);
  return out;
}

// One tensor decoded to float32 (ggml's values; shape as ggufInfo). -> JsBuffer of floats.
JsBuffer ggufTensorF32(uintptr_t ptr, size_t len, std::string name) {
  io::GgufFile gguf;
  Status s = io::parse_gguf(reinterpret_cast<const uint8_t*>(ptr), len, &gguf);
  if (!s.ok()) return error_as<JsBuffer>(s);
  const io::GgufTensorInfo* t = gguf.find(name);
  if (!t) return error_as<JsBuffer>(bad(StatusCode::kNotFound, "GGUF: no tensor '" + name + "'"));
  std::vector<uint8_t> bytes(static_cast<size_t>(t->numel()) * sizeof(float));
  s = io::gguf_tensor_to_f32(*t, reinterpret_cast<float*>(bytes.data()));
  if (!s.ok()) return error_as<JsBuffer>(s);
  JsBuffer r;
  s = to_malloc(bytes, &r.ptr);
  if (!s.ok()) return error_as<JsBuffer>(s);
  r.byteLength = bytes.size();
  return r;
}

}  // namespace
}  // namespace webquant

EMSCRIPTEN_BINDINGS(webquant_gguf) {
  using namespace emscripten;
  using namespace webquant;

  value_object<GgufJsCheckpoint>("WqGgufCheckpoint")
      .field("code", &GgufJsCheckpoint::code)
      .field("message", &GgufJsCheckpoint::message)
      .field("configJson", &GgufJsCheckpoint::configJson)
      .field("ptr", &GgufJsCheckpoint::ptr)
      .field("byteLength", &GgufJsCheckpoint::byteLength)
      .field("addBosToken", &GgufJsCheckpoint::addBosToken);

  function("exportLlamaGguf", &exportLlamaGguf);
  function("ggufToCheckpoint", &ggufToCheckpoint);
  function("ggufInfo", &ggufInfo);
  function("loadGgufModel", &loadGgufModel);
  function("ggufTokenizer", &ggufTokenizer);
  function("ggufTensorF32", &ggufTensorF32);
}
