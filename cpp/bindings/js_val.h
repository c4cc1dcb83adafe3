// Results built as Embind objects, shared by the bindings files whose calls return a val: the
// {code, message} object they start from, arrays, the safetensors shard list load() and GGUF
// export read, and a saved checkpoint's file list (bindings only: includes Emscripten headers). The boundary
// conventions are bind_core.cpp's.
#pragma once

#include <emscripten/val.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "webquant/model_checkpoint.h"
#include "webquant/module.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant::bindings {

// JS: {code, message}; code is a webquant::StatusCode (0 = ok). Calls add their result fields.
inline emscripten::val status_val(const Status& s) {
  emscripten::val out = emscripten::val::object();
  out.set("code", static_cast<int>(s.code));
  out.set("message", s.message);
  return out;
}

// A JS array of the elements of `v` (strings, ints, bools: what val::set takes).
template <typename T>
emscripten::val array_val(const std::vector<T>& v) {
  emscripten::val out = emscripten::val::array();
  for (size_t i = 0; i < v.size(); ++i) out.set(i, v[i]);
  return out;
}

// shards: [{name?, ptr, byteLength}] of safetensors files in the wasm heap (caller-owned), parsed
// in place into *files (one each; the views borrow the heap bytes) and listed in *views. `what`
// names the call in the error for an empty list; a shard's errors carry its name.
inline Status parse_shards_js(const emscripten::val& shards, const std::string& what,
                              std::vector<io::SafetensorsFile>* files,
                              std::vector<const io::SafetensorsFile*>* views) {
  if (!shards.isArray() || shards["length"].as<unsigned>() == 0)
    return Status::Error(StatusCode::kInvalidArgument, what + " needs at least one safetensors shard");
  const unsigned n = shards["length"].as<unsigned>();
  files->assign(n, io::SafetensorsFile{});
  views->clear();
  for (unsigned i = 0; i < n; ++i) {
    const emscripten::val shard = shards[i];
    const std::string name =
        shard["name"].isString() ? shard["name"].as<std::string>() : "shard " + std::to_string(i);
    if (!shard["ptr"].isNumber() || !shard["byteLength"].isNumber())
      return Status::Error(StatusCode::kInvalidArgument, name + ": ptr and byteLength must be numbers");
    const auto ptr = static_cast<uintptr_t>(shard["ptr"].as<double>());
    const auto len = static_cast<size_t>(shard["byteLength"].as<double>());
    Status s = io::parse_safetensors(reinterpret_cast<const uint8_t*>(ptr), len, &(*files)[i]);
    if (!s.ok()) return Status::Error(s.code, name + ": " + s.message);
    views->push_back(&(*files)[i]);
  }
  return Status::Ok();
}

// Saves `weights` (null: fails with `not_loaded`) and `config_json` as webquant's checkpoint
// (model_checkpoint.h) into *files, which the caller keeps until its next save or clear ->
// {code, message, files: [{name, ptr, byteLength}]} (ptr into *files; empty on error).
// max_shard_bytes: 0 = one file, else a non-negative integer.
inline emscripten::val save_checkpoint_js(const Weights* weights, const std::string& config_json,
                                          double max_shard_bytes, const Status& not_loaded,
                                          std::vector<CheckpointFile>* files) {
  files->clear();
  emscripten::val list = emscripten::val::array();
  Status s = weights != nullptr ? Status::Ok() : not_loaded;
  if (s.ok() && !(max_shard_bytes >= 0 && max_shard_bytes == std::floor(max_shard_bytes)))
    s = Status::Error(StatusCode::kInvalidArgument, "maxShardBytes must be a non-negative integer");
  if (s.ok()) {
    CheckpointSaveOptions o;
    o.max_shard_bytes = static_cast<size_t>(max_shard_bytes);
    s = save_checkpoint(*weights, config_json, o, files);
  }
  for (size_t i = 0; s.ok() && i < files->size(); ++i) {
    emscripten::val f = emscripten::val::object();
    f.set("name", (*files)[i].name);
    f.set("ptr", static_cast<double>(reinterpret_cast<uintptr_t>((*files)[i].bytes.data())));
    f.set("byteLength", static_cast<double>((*files)[i].bytes.size()));
    list.set(i, f);
  }
  if (!s.ok()) files->clear();
  emscripten::val out = status_val(s);
  out.set("files", list);
  return out;
}

}  // namespace webquant::bindings
