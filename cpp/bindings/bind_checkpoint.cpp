// Embind bindings of webquant's quantized checkpoints and streaming quantization
// (cpp/include/webquant/model_checkpoint.h). The TypeScript side is web/src/models/checkpoint.ts.
//
// Boundary conventions (as bind_model.cpp): nothing throws, every fallible call returns {code,
// message, ...}; bulk data crosses as heap offsets passed as numbers; models cross as the
// ModelHandle object itself.
//  - CheckpointWriter::save(handle, ...) reads the model a ModelHandle owns. The files stay in the
//    writer: their pointers are valid until the next save() or delete(); TypeScript copies them out.
//  - StreamingQuantizer::addShard reads a safetensors shard the caller put in the heap; the caller
//    frees it right after the call. finish(handle) hands the built model to `handle`.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "js_quant.h"
#include "model_handle.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {
namespace {

using bindings::ModelHandle;
using emscripten::val;

val status_js(const Status& s) {
  val out = val::object();
  out.set("code", static_cast<int>(s.code));
  out.set("message", s.message);
  return out;
}

Status bad(std::string msg) { return Status::Error(StatusCode::kInvalidArgument, std::move(msg)); }

// Serializes a model; keeps the files until the next save() or delete().
class CheckpointWriter {
 public:
  // maxShardBytes: 0 = one file. -> {code, message, files: [{name, ptr, byteLength}]}
  val save(const ModelHandle& handle, std::string config_json, double max_shard_bytes) {
    files_.clear();
    val out = val::object();
    val list = val::array();
    Status s;
    if (handle.model() == nullptr) s = bad("save: the model is not loaded");
    if (s.ok() && !(max_shard_bytes >= 0 && max_shard_bytes == std::floor(max_shard_bytes))) {
      s = bad("maxShardBytes must be a non-negative integer");
    }
    if (s.ok()) {
      CheckpointSaveOptions o;
      o.max_shard_bytes = static_cast<size_t>(max_shard_bytes);
      s = save_checkpoint(handle.model()->weights(), config_json, o, &files_);
    }
    if (s.ok()) {
      for (size_t i = 0; i < files_.size(); ++i) {
        val f = val::object();
        f.set("name", files_[i].name);
        f.set("ptr", static_cast<double>(reinterpret_cast<uintptr_t>(files_[i].bytes.data())));
        f.set("byteLength", static_cast<double>(files_[i].bytes.size()));
        list.set(i, f);
      }
    } else {
      files_.clear();
    }
    out.set("code", static_cast<int>(s.code));
    out.set("message", s.message);
    out.set("files", list);
    return out;
  }

  // Frees the files early (the JS side has copied them).
  void clear() { files_ = std::vector<CheckpointFile>(); }

 private:
  std::vector<CheckpointFile> files_;
};

// StreamingBuilder for TypeScript.
class StreamingQuantizer {
 public:
  // options: as ModelHandle::quantize; maxContext: 0 = max_position_embeddings.
  val begin(std::string config_json, val options, int max_context) {
    ModelQuantOptions q;
    Status s = bindings::quant_options_from_js(options, &q);
    if (s.ok() && max_context < 0) s = bad("maxContext must be >= 0");
    if (s.ok()) {
      LoadOptions lo;
      lo.max_context = max_context;
      s = builder_.begin(config_json, q, lo);
    }
    val out = status_js(s);
    out.set("expected", static_cast<double>(builder_.tensors_expected()));
    return out;
  }

  // A safetensors shard of byteLength bytes at ptr (caller-owned; free it after the call).
  // -> {code, message, seen, expected}
  val addShard(std::string name, double ptr, double byte_length) {
    io::SafetensorsFile file;
    Status s = io::parse_safetensors(reinterpret_cast<const uint8_t*>(static_cast<uintptr_t>(ptr)),
                                     static_cast<size_t>(byte_length), &file);
    if (!s.ok()) {
      s = Status::Error(s.code, name + ": " + s.message);
    } else {
      s = builder_.add_shard(file);
      if (!s.ok()) s = Status::Error(s.code, name + ": " + s.message);
    }
    val out = status_js(s);
    out.set("seen", static_cast<double>(builder_.tensors_seen()));
    out.set("expected", static_cast<double>(builder_.tensors_expected()));
    return out;
  }

  val missing() const {
    val out = val::array();
    const std::vector<std::string> m = builder_.missing();
    for (size_t i = 0; i < m.size(); ++i) out.set(i, m[i]);
    return out;
  }

  // Builds the model into `handle` (replacing what it held). -> {code, message, layers}
  val finish(ModelHandle& handle) {
    std::unique_ptr<CausalLM> model;
    std::vector<LayerQuantReport> report;
    Status s = builder_.finish(&model, &report);
    if (s.ok()) handle.adopt(std::move(model));
    val out = status_js(s);
    out.set("layers", bindings::quant_report_js(report));
    return out;
  }

 private:
  StreamingBuilder builder_;
};

}  // namespace
}  // namespace webquant

EMSCRIPTEN_BINDINGS(webquant_checkpoint) {
  using namespace emscripten;
  using namespace webquant;

  class_<CheckpointWriter>("CheckpointWriter")
      .constructor<>()
      .function("save", &CheckpointWriter::save)
      .function("clear", &CheckpointWriter::clear);
  class_<StreamingQuantizer>("StreamingQuantizer")
      .constructor<>()
      .function("begin", &StreamingQuantizer::begin)
      .function("addShard", &StreamingQuantizer::addShard)
      .function("missing", &StreamingQuantizer::missing)
      .function("finish", &StreamingQuantizer::finish);
}
