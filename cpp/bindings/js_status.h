// The {code, message} results every bindings file returns to JavaScript (see bind_core.cpp for
// the boundary conventions). Bindings-internal.
//
// Embind allows one registration per C++ type in the whole module: JsStatus and JsBuffer are
// registered once, in bind_core.cpp; other bindings files only include this header and use them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "webquant/status.h"

namespace webquant::bindings {

// JS: {code, message}; code is a webquant::StatusCode (0 = ok).
struct JsStatus {
  int code = 0;
  std::string message;
};

// JS: {code, message, ptr, byteLength}.
struct JsBuffer {
  int code = 0;
  std::string message;
  uintptr_t ptr = 0;      // malloc'ed by the binding, freed by the caller
  size_t byteLength = 0;  // bytes at ptr
};

// Any result struct with `code` and `message` carrying `s` (other fields default).
template <typename T>
T error_as(const Status& s) {
  T t;
  t.code = static_cast<int>(s.code);
  t.message = s.message;
  return t;
}

inline JsStatus to_js(const Status& s) { return error_as<JsStatus>(s); }

inline Status bad(StatusCode c, std::string msg) { return Status::Error(c, std::move(msg)); }

}  // namespace webquant::bindings
