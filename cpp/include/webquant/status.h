// Status values returned by every fallible webquant function.
// The core never throws: errors travel as a Status (code + human-readable message) up to the
// bindings, where the TypeScript side turns them into a typed WebQuantError.
#pragma once

#include <string>
#include <utility>

namespace webquant {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // a parameter is out of range (bits, axis, group size, ...)
  kNonFinite = 2,        // NaN or Inf found in an input that must be finite
  kShapeMismatch = 3,    // shapes or lengths do not agree
  kOutOfMemory = 4,      // an allocation failed
  kCorruptData = 5,      // malformed or truncated bytes (safetensors, GGUF, ...)
  kUnsupported = 6,      // a valid but unsupported dtype, model type, tensor type ...
  kNotFound = 7,         // a named tensor, file or entry does not exist
  kAborted = 8,          // a long operation was stopped by its caller (progress callback)
};

// Stable lower-case name of a code ("invalid_argument", ...), shared with TypeScript.
const char* status_code_name(StatusCode code);

struct Status {
  StatusCode code = StatusCode::kOk;
  std::string message;

  bool ok() const { return code == StatusCode::kOk; }
  static Status Ok() { return Status{}; }
  static Status Error(StatusCode c, std::string msg) { return Status{c, std::move(msg)}; }
};

}  // namespace webquant

// Propagate a non-ok Status to the caller.
#define WQ_RETURN_IF_ERROR(expr)              \
  do {                                        \
    ::webquant::Status wq_status_ = (expr);   \
    if (!wq_status_.ok()) return wq_status_;  \
  } while (0)
