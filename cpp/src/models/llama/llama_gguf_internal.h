// Pieces of the GGUF <-> Llama conversion shared by llama_gguf.cpp (checkpoint files) and
// llama_gguf_model.cpp (a loaded CausalLM). Internal.
#pragma once

#include <cstdint>
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
  // The same for int4 symmetric in groups of 32 (codes in [-8, 7]: the Q4_0 scheme); used for a
  // quantized token embedding table.
  virtual bool int4_g32(const std::string& hf_name, std::vector<int8_t>* q,
                        std::vector<float>* scales) const {
    return false;
  }
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

// A Q8_0 tensor as int8 codes and float scales (see llama_gguf.cpp); false when it cannot be.
bool q8_0_to_int8(const io::GgufTensorInfo& t, std::vector<int8_t>* q, std::vector<float>* scales);

// HF rotate_half rows <-> llama.cpp's interleaved rows, for rows of `cols` values of T.
template <typename T>
std::vector<T> permute_rows(const std::vector<T>& w, int heads, int head_dim, int cols,
                            bool to_gguf);

}  // namespace webquant
