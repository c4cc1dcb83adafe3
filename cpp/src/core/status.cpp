#include "webquant/status.h"

namespace webquant {

const char* status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNonFinite: return "non_finite";
    case StatusCode::kShapeMismatch: return "shape_mismatch";
    case StatusCode::kOutOfMemory: return "out_of_memory";
    case StatusCode::kCorruptData: return "corrupt_data";
    case StatusCode::kUnsupported: return "unsupported";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kAborted: return "aborted";
  }
  return "unknown";  // a value cast from an out-of-range int
}

}  // namespace webquant
