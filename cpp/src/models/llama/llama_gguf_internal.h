// Pieces of the GGUF <-> Llama conversion shared by llama_gguf.cpp / llama_gguf_import.cpp
// (checkpoint files) and llama_gguf_model.cpp (a loaded CausalLM). Internal.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "webquant/gguf.h"
#include "webquant/llama.h"
#include "webquant/llama_gguf.h"

namespace webquant {

// Where export_llama_gguf_from reads the weights (HF names, HF row order).
class GgufWeightSource {
 public:
  virtual ~GgufWeightSource() = default;
  // A float tensor of exactly `shape` (kNotFound / kShapeMismatch naming it otherwise).
  virtual Status floats(const std::string& hf_name, const std::vector<int64_t>& shape,
                        std::vector<float>* out) const = 0;
  // For a linear weight held as int8 symmetric in groups of 32 (the Q8_0 scheme): its codes
  // [rows, cols] and scales [rows, cols / 32]; false for any other form.
  virtual bool int8_g32(const std::string& hf_name, std::vector<int8_t>* q,
                        std::vector<float>* scales) const {
    return false;
  }
  // The same for int4 symmetric in groups of 32 (codes in [-8, 7]: the Q4_0 scheme): a quantized
  // token embedding table or a linear weight.
  virtual bool int4_g32(const std::string& hf_name, std::vector<int8_t>* q,
                        std::vector<float>* scales) const {
    return false;
  }
  // For a linear weight held as 4-bit codes in groups of 32 with a scale and a zero point
  // (integer or float, e.g. RTN asymmetric, GPTQ, HQQ; symmetric too): the Q4_1 form
  // w = d * u + m with u in [0, 15] [rows, cols], d = the scale and m = -scale * (zero + 8)
  // (the signed-domain zero; float32, not yet rounded) [rows, cols / 32]; false for any other form.
  virtual bool int4_g32_affine(const std::string& hf_name, std::vector<uint8_t>* u,
                               std::vector<float>* d, std::vector<float>* m) const {
    return false;
  }
  // For a linear weight quantized in ragged groups (its group size does not divide in_features,
  // LinearQuantSpec::ragged): the layer's description ("w3a16 g32 ragged (172 = 5 x 32 + 12)
  // asym"), which block-type exports refuse; "" for any other weight.
  virtual std::string ragged(const std::string& hf_name) const { return ""; }
};

// The body of export_llama_gguf over any weight source. With type Q8_0, int8_g32 weights are
// written from their codes (see int8_g32_to_q8_0); everything else as export_llama_gguf does.
Status export_llama_gguf_from(const LlamaConfig& cfg, std::string_view tokenizer_json,
                              const GgufWeightSource& src, const GgufExportOptions& options,
                              std::vector<uint8_t>* out);

// Q8_0 blocks of an int8 g32 symmetric weight, row-major (scales.size() blocks): qs = q, d =
// fp16(scale) (round to nearest even), and d = 0 for an all-zero group. kUnsupported for a scale
// beyond fp16's range. The weights are bit-for-bit the layer's when its scales are fp16 values.
Status int8_g32_to_q8_0(const std::string& name, const std::vector<int8_t>& q,
                        const std::vector<float>& scales, std::vector<uint8_t>* bytes);

// Q4_1 blocks of 4-bit codes u in [0, 15] with per-32 d and m (int4_g32_affine's form): nibbles
// as Q4_0, d and m each rounded to fp16 (nearest even), so a weight moves by at most
// 2^-11 * (15 |d| + |m|) (plus fp16's subnormal spacing for tiny values). kUnsupported for a d or
// m beyond fp16's range.
Status int4_g32_to_q4_1(const std::string& name, const std::vector<uint8_t>& u,
                        const std::vector<float>& d, const std::vector<float>& m,
                        std::vector<uint8_t>* bytes);
// Q4_0 blocks of int4 symmetric g32 codes (nibble q + 8, d = fp16(scale)).
Status int4_g32_to_q4_0(const std::string& name, const std::vector<int8_t>& q,
                        const std::vector<float>& scales, std::vector<uint8_t>* bytes);

// A Q8_0 tensor as int8 codes and float scales (see llama_gguf_import.cpp); false when it
// cannot be.
bool q8_0_to_int8(const io::GgufTensorInfo& t, std::vector<int8_t>* q, std::vector<float>* scales);

// The linear layer of a GGUF 2-D weight (ne = {cols, rows}) of a block type, repacked without
// changing a value (only a zero's sign may change): Q8_0, Q5_0, Q6_K as w8a16 in groups of 32 (16
// for Q6_K) from their codes; Q4_0 as w4a16 g32; symmetric, or asymmetric with zero points 0 / -1
// when a negative scale meets the most negative code (see the .cpp); Q4_1, Q4_K (w4a16 g32) and
// Q5_1, Q5_K (w8a16 g32) with float group offsets (quant/linear_gguf_affine.h). Rows are
// un-permuted when permute_heads > 0. *out stays null for F32/F16/BF16 and for a tensor with a
// non-finite scale (the caller decodes those to float32). kCorruptData when the data is short.
Status gguf_linear_layer(const io::GgufTensorInfo& t, int permute_heads, int head_dim,
                         std::unique_ptr<LinearLayer>* out);

// import_llama_gguf; with embedding_elsewhere, token_embd's shape is checked but the tensor is not
// decoded (nor in `tensors`): load_llama_gguf_model builds its quantized table from the blocks.
Status import_llama_gguf_parts(const io::GgufFile& gguf, GgufLlamaImport* out, bool q8_0_as_int8,
                               bool repack_linears, bool embedding_elsewhere);

// HF rotate_half rows <-> llama.cpp's interleaved rows, for rows of `cols` values of T.
template <typename T>
std::vector<T> permute_rows(const std::vector<T>& w, int heads, int head_dim, int cols,
                            bool to_gguf);

}  // namespace webquant
