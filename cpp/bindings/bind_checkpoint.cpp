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
#include "js_val.h"
#include "model_handle.h"
#include "webquant/model_checkpoint.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {
namespace {

using bindings::ModelHandle;
using emscripten::val;

Status bad(std::string msg) { return Status::Error(StatusCode::kInvalidArgument, std::move(msg)); }

// Serializes a model; keeps the files until the next save() or delete().
class CheckpointWriter {
 public:
  // maxShardBytes: 0 = one file. -> {code, message, files: [{name, ptr, byteLength}]}
  val save(const ModelHandle& handle, std::string config_json, double max_shard_bytes) {
    return bindings::save_checkpoint_js(handle.model() != nullptr ? &handle.model()->weights() : nullptr,
                                        config_json, max_shard_bytes, bad("save: the model is not loaded"), &files_);
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
    val out = bindings::status_val(s);
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
    val out = bindings::status_val(s);
    out.set("seen", static_cast<double>(builder_.tensors_seen()));
    out.set("expected", static_cast<double>(builder_.tensors_expected()));
    return out;
  }

  val missing() const {
    return bindings::array_val(builder_.missing());
  }

  // Builds the model into `handle` (replacing what it held). -> {code, message, layers}
  val finish(ModelHandle& handle) {
    std::unique_ptr<CausalLM> model;
    std::vector<LayerQuantReport> report;
    Status s = builder_.finish(&model, &report);
    if (s.ok()) handle.adopt(std::move(model));
    return bindings::quant_result_js(s, report);
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
