// safetensors reading and writing (https://huggingface.co/docs/safetensors):
//   8-byte little-endian header length N | N bytes of JSON header | data.
// The header maps tensor name -> {"dtype", "shape", "data_offsets": [begin, end]} (offsets
// relative to the start of the data), plus an optional "__metadata__" string->string map.
// The parser faces untrusted bytes: it never reads out of range and rejects a malformed header,
// unknown dtypes, offsets out of range or overlapping, and shape/byte-length mismatches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "webquant/status.h"

namespace webquant::io {

// One tensor inside a parsed file. `data` points into the caller's buffer (not owned): the view
// is valid as long as that buffer is.
struct TensorView {
  std::string name;
  std::string dtype;           // safetensors dtype string: "F32", "F16", "BF16", "I8", "U8", ...
  std::vector<int64_t> shape;  // empty for a scalar
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t numel() const;
};

struct SafetensorsFile {
  std::vector<TensorView> tensors;  // in header order
  std::map<std::string, std::string> metadata;

  const TensorView* find(const std::string& name) const;  // nullptr when absent
};

// Bytes per element of a safetensors dtype string; 0 for an unknown dtype.
size_t safetensors_dtype_size(const std::string& dtype);

// Parses `len` bytes at `bytes`. Errors: kCorruptData (malformed or truncated; the message says
// "truncated" when the file is shorter than its header promises), kUnsupported (unknown dtype),
// kShapeMismatch (shape does not match the byte length).
Status parse_safetensors(const uint8_t* bytes, size_t len, SafetensorsFile* out);

// Converts an F32, F16 or BF16 tensor to float32 into `out` (numel floats). Other dtypes give
// kUnsupported naming the dtype and the tensor.
Status tensor_to_f32(const TensorView& t, float* out);

// A tensor to be written; `data` holds nbytes bytes (little-endian), not owned.
struct TensorRecord {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

// Serializes tensors (sorted by name in the header, data in that order, 8-byte aligned header as
// the Python library writes) with optional metadata. Validates dtype and shape/length.
Status write_safetensors(const std::vector<TensorRecord>& tensors,
                         const std::map<std::string, std::string>& metadata,
                         std::vector<uint8_t>* out);

// The same file in pieces, for writers that stream the data: `header` receives the 8-byte length
// and the padded JSON header; the file is header followed by the data of tensors[data_order[0]],
// tensors[data_order[1]], ... (sorted by name). Same validation and errors as write_safetensors.
Status write_safetensors_header(const std::vector<TensorRecord>& tensors,
                                const std::map<std::string, std::string>& metadata,
                                std::vector<uint8_t>* header, std::vector<size_t>* data_order);

}  // namespace webquant::io
