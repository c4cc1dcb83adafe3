// Embind bindings of webquant's quantized checkpoints and streaming quantization
// (cpp/include/webquant/llama_checkpoint.h). The TypeScript side is web/src/models/checkpoint.ts.
//
// Boundary conventions (as bind_llama.cpp): nothing throws, every fallible call returns {code,
// message, ...}; pointers are heap offsets passed as numbers.
//  - CheckpointWriter::save(modelPtr, ...) reads a model owned by a LlamaModelHandle (modelPtr()
//    of that handle, used at once, never kept). The files stay in the writer: their pointers are
//    valid until the next save() or delete(); TypeScript copies them out.
//  - LlamaStreamingQuantizer::addShard reads a safetensors shard the caller put in the heap; the
//    caller frees it right after the call. finish() parks the model under a ticket, which
//    LlamaModelHandle::adopt(ticket) takes (model_handoff.h).
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "js_quant.h"
#include "model_handoff.h"
#include "webquant/linear.h"
#include "webquant/llama.h"
#include "webquant/llama_checkpoint.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {
namespace bindings {
namespace {

std::map<uint32_t, std::unique_ptr<LlamaModel>>& park() {
  static auto* p = new std::map<uint32_t, std::unique_ptr<LlamaModel>>();
  return *p;
}
uint32_t g_next_ticket = 1;

}  // namespace

uint32_t park_model(std::unique_ptr<LlamaModel> model) {
  const uint32_t t = g_next_ticket++;
  park()[t] = std::move(model);
  return t;
}

std::unique_ptr<LlamaModel> take_parked_model(uint32_t ticket) {
  auto it = park().find(ticket);
  if (it == park().end()) return nullptr;
  std::unique_ptr<LlamaModel> m = std::move(it->second);
  park().erase(it);
  return m;
}

}  // namespace bindings

namespace {

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
  // modelPtr: LlamaModelHandle::modelPtr() (0 = not loaded). maxShardBytes: 0 = one file.
  // -> {code, message, files: [{name, ptr, byteLength}]}
  val save(double model_ptr, std::string config_json, double max_shard_bytes) {
    files_.clear();
    val out = val::object();
    val list = val::array();
    Status s;
    if (!(model_ptr > 0)) s = bad("save: the model is not loaded");
    if (s.ok() && !(max_shard_bytes >= 0 && max_shard_bytes == std::floor(max_shard_bytes))) {
      s = bad("maxShardBytes must be a non-negative integer");
    }
    if (s.ok()) {
      const auto* model = reinterpret_cast<const LlamaModel*>(static_cast<uintptr_t>(model_ptr));
      CheckpointSaveOptions o;
      o.max_shard_bytes = static_cast<size_t>(max_shard_bytes);
      s = save_llama_checkpoint(*model, config_json, o, &files_);
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

// LlamaStreamingBuilder for TypeScript.
class LlamaStreamingQuantizer {
 public:
  // options: as LlamaModelHandle::quantize; maxContext: 0 = max_position_embeddings.
  val begin(std::string config_json, val options, int max_context) {
    LlamaConfig config;
    Status s = parse_llama_config(config_json, &config);
    ModelQuantOptions q;
    if (s.ok()) s = bindings::quant_options_from_js(options, &q);
    if (s.ok() && max_context < 0) s = bad("maxContext must be >= 0");
    if (s.ok()) {
      LlamaLoadOptions lo;
      lo.max_context = max_context;
      s = builder_.begin(config, q, lo);
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

  // -> {code, message, ticket, layers}: ticket for LlamaModelHandle::adopt.
  val finish() {
    std::unique_ptr<LlamaModel> model;
    std::vector<LayerQuantReport> report;
    Status s = builder_.finish(&model, &report);
    val out = status_js(s);
    out.set("ticket", s.ok() ? static_cast<double>(bindings::park_model(std::move(model))) : 0.0);
    out.set("layers", bindings::quant_report_js(report));
    return out;
  }

 private:
  LlamaStreamingBuilder builder_;
};

// A parked model nobody adopted (e.g. the TypeScript side failed in between).
bool discardParkedModel(double ticket) {
  return bindings::take_parked_model(static_cast<uint32_t>(ticket)) != nullptr;
}

}  // namespace
}  // namespace webquant

EMSCRIPTEN_BINDINGS(webquant_checkpoint) {
  using namespace emscripten;
  using namespace webquant;

  class_<CheckpointWriter>("CheckpointWriter")
      .constructor<>()
      .function("save", &CheckpointWriter::save)
      .function("clear", &CheckpointWriter::clear);
  class_<LlamaStreamingQuantizer>("LlamaStreamingQuantizer")
      .constructor<>()
      .function("begin", &LlamaStreamingQuantizer::begin)
      .function("addShard", &LlamaStreamingQuantizer::addShard)
      .function("missing", &LlamaStreamingQuantizer::missing)
      .function("finish", &LlamaStreamingQuantizer::finish);
  function("discardParkedModel", &discardParkedModel);
}
