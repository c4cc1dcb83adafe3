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
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30,
};
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

// The other block types read (ggml-common.h; gguf-py quants.py), fp16 fields little-endian:
//   Q4_1 (20 bytes / 32): | d:f16 | m:f16 | qs[16] |           x = d * nibble + m (nibbles as Q4_0)
//   Q5_0 (22 bytes / 32): | d:f16 | qh[4] | qs[16] |           q = nibble | (bit j of qh, as u32) << 4
//                                                              x = d * (q - 16)
//   Q5_1 (24 bytes / 32): | d:f16 | m:f16 | qh[4] | qs[16] |   x = d * q + m (q as Q5_0)
//   Q4_K (144 bytes / 256): | d:f16 | dmin:f16 | scales[12] | qs[128] |
//     8 sub-blocks of 32 with 6-bit scale sc[s] and min mn[s] (get_scale_min_k4: s < 4: sc =
//     scales[s] & 63, mn = scales[s+4] & 63; s >= 4: sc = (scales[s+4] & 15) | (scales[s-4] >> 6)
//     << 4, mn = (scales[s+4] >> 4) | (scales[s] >> 6) << 4). Element 64c + l (l < 32) is the low
//     nibble of qs[32c + l] (sub-block 2c), element 64c + 32 + l its high nibble (sub-block
//     2c + 1). x = (d * sc) * q - (dmin * mn).
//   Q5_K (176 bytes / 256): | d | dmin | scales[12] | qh[32] | qs[128] |  as Q4_K, plus bit s of
//     qh[l] = bit 4 of element 32s + l.  x = (d * sc) * q - (dmin * mn), q in [0, 32).
//   Q6_K (210 bytes / 256): | ql[128] | qh[64] | scales[16]: int8 | d:f16 |
//     element 128h + i (i < 128): low 4 bits = (ql[64h + i % 64] >> 4 * (i / 64)) & 15, high 2
//     bits = (qh[32h + i % 32] >> 2 * (i / 32)) & 3; x = (d * scales[e / 16]) * (q - 32).
//   BF16 (2 bytes / 1): the upper half of an f32.
// Every product above is exact in float32, so a decoder that multiplies in this order gives
// ggml's values bit for bit.
struct BlockQ4_1 { uint16_t d, m; uint8_t qs[16]; };
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");
struct BlockQ5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block is 22 bytes");
struct BlockQ5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block is 24 bytes");
struct BlockQ4_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");
struct BlockQ5_K { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes");
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");

// Elements per block and bytes per block of a readable type; false for any other type.
bool ggml_block_info(uint32_t type, uint64_t* block, uint64_t* bytes);

// One block of a quantized type in its affine form, x[e] = scale[e / sub] * code[e] - min[e / sub]
// (sub = 32 for every type but Q6_K's 16; min is 0 for the symmetric types, whose codes are signed:
// Q4_0 q - 8, Q5_0 q - 16, Q8_0 q, Q6_K q - 32; the others have unsigned codes). The scales and
// mins are ggml's float products (d * sc, dmin * mn, or d and -m), so scale * code - min
// reproduces the decoder exactly. Types: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K.
struct GgmlAffineBlock {
  int sub = 32;          // elements per scale
  int count = 0;         // elements (32 or 256)
  bool has_min = false;  // false: min is all 0
  int8_t code[256];
  float scale[16];
  float min[16];
};
// Decodes block `blk` (ggml_block_info bytes) of `type` into its affine form; kUnsupported for
// F32/F16/BF16 and unknown types.
Status ggml_block_affine(uint32_t type, const uint8_t* blk, GgmlAffineBlock* out);

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
// a row that is not a whole number of blocks, misaligned or overlapping offsets), kUnsupported
// (version, tensor types other than F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K,
// Q6_K — the message names the type —, nested arrays).
Status parse_gguf(const uint8_t* bytes, size_t len, GgufFile* out);

// Decodes a tensor of any readable type to float32 (numel floats), ggml's dequantize_row_* bit for
// bit (the scalar reference of each block type: io/gguf_blocks.cpp). kCorruptData when t.nbytes is
// short of the type's size (a truncated tensor).
Status gguf_tensor_to_f32(const GgufTensorInfo& t, float* out);
// The same for n elements of `type` at `data` (nbytes bytes available).
Status ggml_decode(uint32_t type, const uint8_t* data, size_t nbytes, uint64_t n, float* out);

// ggml's reference quantizers (quantize_row_q8_0_ref / quantize_row_q4_0_ref /
// quantize_row_q4_1_ref), n % 32 == 0. out receives n/32 blocks.
Status quantize_row_q8_0(const float* x, size_t n, BlockQ8_0* out);
Status quantize_row_q4_0(const float* x, size_t n, BlockQ4_0* out);
// Q4_1: per block min and max, d = (max - min) / 15, m = min (both rounded to fp16 after the codes
// are chosen from the float32 d), nibble = min(15, (int8)((x - min) / d + 0.5)).
Status quantize_row_q4_1(const float* x, size_t n, BlockQ4_1* out);
// Bytes of n elements of a readable type (n a whole number of blocks); 0 otherwise. GgufWriter
// accepts tensors of every readable type (the caller encodes the blocks).
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
