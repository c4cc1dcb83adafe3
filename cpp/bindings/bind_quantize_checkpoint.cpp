// Embind bindings of architecture-agnostic checkpoint quantization
// (cpp/include/webquant/checkpoint_quant.h). The TypeScript side is
// web/src/models/quantize-checkpoint.ts.
//
// Boundary conventions (as bind_checkpoint.cpp): nothing throws, every fallible call returns
// {code, message, ...}; pointers are heap offsets passed as numbers.
//  - CheckpointQuantizer::addShard reads a safetensors shard the caller put in the heap; the caller
//    may free it right after the call.
//  - shardPieces(i) returns views of output shard i (header + tensor data, no copy), valid until
//    releaseShard(i); CheckpointDequantizer::dequantize leaves its output in the object, valid
//    until the next dequantize, clear() or delete(). TypeScript copies both out.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "js_quant.h"
#include "js_val.h"
#include "webquant/checkpoint_quant.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {
namespace {

using emscripten::val;

const uint8_t* heap_ptr(double ptr) { return reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(ptr)); }

val tensor_report_js(const TensorQuantReport& r) {
  val t = val::object();
  t.set("name", r.name);
  t.set("dtype", r.dtype);
  val shape = val::array();
  for (size_t i = 0; i < r.shape.size(); ++i) shape.set(i, static_cast<double>(r.shape[i]));
  t.set("shape", shape);
  t.set("quantized", r.quantized);
  t.set("scheme", r.scheme);
  t.set("transposed", r.transposed);
  t.set("bytesBefore", static_cast<double>(r.bytes_before));
  t.set("bytesAfter", static_cast<double>(r.bytes_after));
  t.set("mse", r.mse);
  t.set("maxAbs", r.max_abs);
  t.set("sqnrDb", r.sqnr_db);
  t.set("note", r.note);
  return t;
}

val buffer_js(const Status& s, const std::vector<uint8_t>& bytes) {
  val out = bindings::status_val(s);
  out.set("ptr", s.ok() ? static_cast<double>(reinterpret_cast<uintptr_t>(bytes.data())) : 0.0);
  out.set("byteLength", s.ok() ? static_cast<double>(bytes.size()) : 0.0);
  return out;
}

class CheckpointQuantizerJs {
 public:
  // options: {default, exclude?, overrides?} as js_quant.h; indexJson "" for one file.
  val begin(std::string config_json, std::string index_json, int shard_count, val options, bool conv) {
    CheckpointQuantOptions o;
    o.conv = conv;
    Status s = bindings::quant_options_from_js(options, &o.quant);
    if (s.ok()) s = quantizer_.begin(config_json, index_json, shard_count, o);
    return bindings::status_val(s);
  }

  // -> {code, message}
  val addShard(std::string name, double ptr, double byte_length) {
    io::SafetensorsFile file;
    Status s = io::parse_safetensors(heap_ptr(ptr), static_cast<size_t>(byte_length), &file);
    if (!s.ok()) {
      s = Status::Error(s.code, name + ": " + s.message);
    } else {
      s = quantizer_.add_shard(name, file);
    }
    return bindings::status_val(s);
  }

  // -> {code, message, configJson, quantizationConfigJson, shardNames, indexJson, tensors}
  val finish() {
    CheckpointQuantResult r;
    Status s = quantizer_.finish(&r);
    val out = bindings::status_val(s);
    out.set("configJson", r.config_json);
    out.set("quantizationConfigJson", r.quantization_config_json);
    out.set("shardNames", bindings::array_val(r.shard_names));
    out.set("indexJson", r.index_json);
    val tensors = val::array();
    for (size_t i = 0; i < r.tensors.size(); ++i) tensors.set(i, tensor_report_js(r.tensors[i]));
    out.set("tensors", tensors);
    return out;
  }

  // -> {code, message, header: {ptr, byteLength}, pieces: [{ptr, byteLength}]}: the file is the
  // header then the pieces; views valid until releaseShard(i) (TypeScript copies them out first).
  val shardPieces(int i) {
    bytes_ = std::vector<uint8_t>();
    std::vector<std::pair<const uint8_t*, size_t>> pieces;
    Status s = i < 0 ? Status::Error(StatusCode::kInvalidArgument, "shardPieces: negative index")
                     : quantizer_.shard_pieces(static_cast<size_t>(i), &bytes_, &pieces);
    val out = bindings::status_val(s);
    out.set("header", buffer_js(s, bytes_));
    val list = val::array();
    for (size_t k = 0; k < pieces.size(); ++k) {
      val p = val::object();
      p.set("ptr", static_cast<double>(reinterpret_cast<uintptr_t>(pieces[k].first)));
      p.set("byteLength", static_cast<double>(pieces[k].second));
      list.set(k, p);
    }
    out.set("pieces", list);
    return out;
  }

  // -> {code, message}
  val releaseShard(int i) {
    bytes_ = std::vector<uint8_t>();
    return bindings::status_val(i < 0 ? Status::Error(StatusCode::kInvalidArgument, "releaseShard: negative index")
                           : quantizer_.release_shard(static_cast<size_t>(i)));
  }

  void clear() { bytes_ = std::vector<uint8_t>(); }

 private:
  CheckpointQuantizer quantizer_;
  std::vector<uint8_t> bytes_;
};

class CheckpointDequantizer {
 public:
  // -> {code, message, ptr, byteLength, names}; dtype "F32" | "F16" | "BF16" | "".
  val dequantize(std::string quantization_config_json, double ptr, double byte_length, std::string dtype) {
    bytes_ = std::vector<uint8_t>();
    io::SafetensorsFile file;
    std::vector<std::string> names;
    Status s = io::parse_safetensors(heap_ptr(ptr), static_cast<size_t>(byte_length), &file);
    if (s.ok()) s = dequantize_checkpoint_shard(quantization_config_json, file, dtype, &bytes_, &names);
    val out = buffer_js(s, bytes_);
    out.set("names", bindings::array_val(names));
    return out;
  }

  // -> {code, message, json}
  val config(std::string config_json, std::string dtype) {
    std::string json;
    Status s = dequantized_config(config_json, dtype, &json);
    val out = bindings::status_val(s);
    out.set("json", json);
    return out;
  }

  void clear() { bytes_ = std::vector<uint8_t>(); }

 private:
  std::vector<uint8_t> bytes_;
};

}  // namespace
}  // namespace webquant

EMSCRIPTEN_BINDINGS(webquant_quantize_checkpoint) {
  using namespace emscripten;
  using namespace webquant;

  class_<CheckpointQuantizerJs>("CheckpointQuantizer")
      .constructor<>()
      .function("begin", &CheckpointQuantizerJs::begin)
      .function("addShard", &CheckpointQuantizerJs::addShard)
      .function("finish", &CheckpointQuantizerJs::finish)
      .function("shardPieces", &CheckpointQuantizerJs::shardPieces)
      .function("releaseShard", &CheckpointQuantizerJs::releaseShard)
      .function("clear", &CheckpointQuantizerJs::clear);
  class_<CheckpointDequantizer>("CheckpointDequantizer")
      .constructor<>()
      .function("dequantize", &CheckpointDequantizer::dequantize)
      .function("config", &CheckpointDequantizer::config)
      .function("clear", &CheckpointDequantizer::clear);
}
