// GGUF (llama.cpp's file format), version 3 (version 2 is read too), little-endian:
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count | kv_count x (string key, u32 type, value)
//   | tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
//   | padding to `general.alignment` (default 32) | tensor data (each offset aligned, relative to here).
// string = u64 length + bytes (no terminator). ne[0] is the innermost (contiguous) dimension, so a
// row-major [rows, cols] matrix has ne = {cols, rows}.
// The reader faces untrusted bytes: every length, count, offset and size is checked before use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "webquant/status.h"

namespace webquant::io {

enum class GgufValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

// Tensor element types this library reads and writes (ggml_type numbers).
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8 };
const char* ggml_type_name(uint32_t type);  // any ggml type number, e.g. 12 -> "Q4_K"

// Block layouts (ggml-common.h). 32 weights per block, d stored as fp16.
//   Q8_0 (34 bytes): | d:f16 | qs[32]: int8 |                      x[j] = d * qs[j]
//   Q4_0 (18 bytes): | d:f16 | qs[16]: u8   | element j in the low nibble of qs[j], element j+16
//                                             in the high nibble; x = d * (nibble - 8)
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");

// One metadata value. Scalars use the field of their kind; arrays keep their element type and
// fill exactly one of the vectors (strings, ints for integer and bool elements, floats).
struct GgufValue {
  GgufValueType type = GgufValueType::kUint32;
  GgufValueType elem_type = GgufValueType::kUint32;  // arrays only
  uint64_t u = 0;  // unsigned integers and bool
  int64_t i = 0;   // signed integers
  double f = 0;    // floats
  std::string str;
  std::vector<std::string> strs;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  // Numeric value of any integer/float/bool scalar as double (0 for others).
  double as_number() const;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first
  uint32_t type = 0;         // ggml_type
  uint64_t offset = 0;       // relative to the data section
  const uint8_t* data = nullptr;  // into the caller's buffer
  size_t nbytes = 0;
  uint64_t numel() const;
};

struct GgufFile {
  uint32_t version = 3;
  size_t alignment = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata;
  std::vector<GgufTensorInfo> tensors;

  const GgufValue* get(const std::string& key) const;
  const GgufTensorInfo* find(const std::string& name) const;
};

// Parses a whole GGUF file held in memory. Tensor views point into `bytes`.
// Errors: kCorruptData (bad magic, truncation — the message says "truncated" —, bad lengths,
// misaligned or overlapping offsets), kUnsupported (version, tensor types other than F32, F16,
// Q4_0, Q8_0 — the message names the type —, nested arrays).
Status parse_gguf(const uint8_t* bytes, size_t len, GgufFile* out);

// Decodes an F32, F16, Q8_0 or Q4_0 tensor to float32 (numel floats).
Status gguf_tensor_to_f32(const GgufTensorInfo& t, float* out);

// ggml's reference quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref), n % 32 == 0.
// out receives n/32 blocks.
Status quantize_row_q8_0(const float* x, size_t n, BlockQ8_0* out);
Status quantize_row_q4_0(const float* x, size_t n, BlockQ4_0* out);
// Bytes of n elements of a writable type (n % 32 == 0 for the block types); 0 if not writable.
size_t ggml_nbytes(uint32_t type, uint64_t n);

// Builds a GGUF v3 file in memory. Keys are written in the order added; tensors in the order
// added, each aligned to `alignment`.
class GgufWriter {
 public:
  // alignment: a power of two; other than 32 it is recorded as general.alignment.
  explicit GgufWriter(size_t alignment = 32);
  void add_string(const std::string& key, const std::string& v);
  void add_u32(const std::string& key, uint32_t v);
  void add_i32(const std::string& key, int32_t v);
  void add_f32(const std::string& key, float v);
  void add_bool(const std::string& key, bool v);
  void add_string_array(const std::string& key, const std::vector<std::string>& v);
  void add_f32_array(const std::string& key, const std::vector<float>& v);
  void add_i32_array(const std::string& key, const std::vector<int32_t>& v);
  // Copies `nbytes` of already encoded data; ne innermost first. Checked in finish().
  void add_tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type,
                  const void* data, size_t nbytes);
  Status finish(std::vector<uint8_t>* out) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::vector<uint8_t> data;
  };
  size_t alignment_;
  uint64_t kv_count_ = 0;
  std::vector<uint8_t> kv_;  // encoded key/value pairs
  std::vector<Tensor> tensors_;
};

}  // namespace webquant::io
