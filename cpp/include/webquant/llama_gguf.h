// Llama checkpoints <-> GGUF (llama.cpp), following llama.cpp's convert_hf_to_gguf.py conventions:
//  - tensor names: token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm,
//    ffn_gate, ffn_up, ffn_down}, output_norm, output (absent when the embeddings are tied);
//  - q_proj / k_proj rows are permuted from HF's rotate_half RoPE layout back to llama.cpp's
//    interleaved-pairs layout: within each head, GGUF row 2i + j = HF row j * (head_dim / 2) + i;
//  - 2-D weights get the requested type; a row whose width is not a multiple of 32 (stories260K's
//    down_proj: 172) cannot be a Q8_0/Q4_0 block type and is written as F16 instead, and 1-D
//    tensors (norms) are always F32 (as llama.cpp does). Biases are not supported by llama.cpp's
//    llama graph for every projection, so a model with biases is kUnsupported for export.
//  - tokenizer metadata from tokenizer.json: a BPE with byte fallback and the "▁" space marker
//    (sentencepiece-style, e.g. Llama 2 / stories260K) becomes tokenizer.ggml.model "llama" with
//    scores = -(merge rank) so llama.cpp's score-driven merges follow the HF merge order; a byte-level
//    BPE (GPT-2 / SmolLM style) becomes "gpt2" with its merges.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "webquant/gguf.h"
#include "webquant/llama.h"
#include "webquant/safetensors.h"

namespace webquant {

struct GgufExportOptions {
  uint32_t type = 0;  // ggml type of the 2-D weights: 0 F32, 1 F16, 8 Q8_0, 2 Q4_0
  std::string name;   // general.name
};

// Writes a GGUF v3 file for a Llama-architecture HF checkpoint. `tokenizer_json` may be empty
// (no tokenizer metadata; llama.cpp then cannot load it). Errors name the tensor or field.
Status export_llama_gguf(std::string_view config_json, std::string_view tokenizer_json,
                         const std::vector<const io::SafetensorsFile*>& shards,
                         const GgufExportOptions& options, std::vector<uint8_t>* out);

// A GGUF Llama model converted back to HF names, float32 tensors and a config.
struct GgufLlamaImport {
  LlamaConfig config;
  std::vector<uint8_t> storage;  // the float32 data the views below point into
  io::SafetensorsFile tensors;   // HF-named F32 views into storage (q/k rows un-permuted)
};

// Reads the llama.* metadata and every tensor (F32, F16, Q8_0, Q4_0 decoded to float32).
// Errors: kUnsupported for another general.architecture, kNotFound / kCorruptData naming the key
// or tensor.
Status import_llama_gguf(const io::GgufFile& gguf, GgufLlamaImport* out);

}  // namespace webquant
