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
#include <memory>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "webquant/gguf.h"
#include "webquant/linear.h"
#include "webquant/causal_lm.h"
#include "webquant/llama.h"
#include "webquant/safetensors.h"

namespace webquant {

struct GgufExportOptions {
  uint32_t type = 0;  // ggml type of the 2-D weights: 0 F32, 1 F16, 8 Q8_0, 2 Q4_0, 3 Q4_1
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
  // With q8_0_as_int8: the Q8_0 linear weights as w8a16 g32 symmetric layers (HF module name ->
  // codes, scales = the blocks' d as float), not in `tensors`.
  std::vector<std::pair<std::string, LinearQuantizedData>> int8_linears;
  // With repack_linears: the linear weights of block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
  // Q5_K, Q6_K; not the embedding) as ready layers (HF module name -> layer), not in `tensors`.
  // Values are ggml's exactly (see load_llama_gguf_model).
  std::vector<std::pair<std::string, std::unique_ptr<LinearLayer>>> layers;
};

// Reads the llama.* metadata and every tensor (any readable type, decoded to float32). With
// q8_0_as_int8, Q8_0 linear weights (not the embedding) are kept as int8 codes instead: Q8_0 is
// int8 symmetric in groups of 32, x = d * q, exactly a w8a16 g32 layer (a block with d = 0 gets
// scale 1 and zero codes; a tensor with a block that is not representable, e.g. d < 0 with a code
// -128, is decoded to float32 as before). Errors: kUnsupported for another general.architecture,
// kNotFound / kCorruptData naming the key or tensor.
Status import_llama_gguf(const io::GgufFile& gguf, GgufLlamaImport* out, bool q8_0_as_int8 = false,
                         bool repack_linears = false);

// A GGUF file straight to a model: import_llama_gguf with repack_linears, so every block-type
// linear weight runs on webquant's kernels with ggml's values (Q8_0/Q5_0/Q6_K on int8 layers,
// Q4_0 on int4, Q4_1/Q4_K/Q5_1/Q5_K on int4/int8 layers plus float group offsets: the per-type
// table is in llama_gguf_internal.h), with no float round trip. A block-type token embedding is a
// quantized table built without a float32 copy of it (Q8_0/Q4_0/Q5_0/Q6_K repacked exactly from
// their codes; Q4_K/Q5_K/Q4_1/Q5_1 requantized to int8 g32 a panel of rows at a time); a tied
// output head reads an exact table, or else gets its own repacked copy of token_embd (the head
// reads the block type, as in llama.cpp). F32/F16/BF16 embeddings and weights are float32.
Status load_llama_gguf_model(const io::GgufFile& gguf, std::unique_ptr<CausalLM>* out,
                             const LoadOptions& options = {});

// GGUF export of a loaded (possibly quantized) model, as export_llama_gguf. With type Q8_0 every
// linear layer that is int8 symmetric in groups of 32 (w8a16 or w8a8) is written from its codes:
// qs = the codes bit for bit, d = the scale rounded to fp16, so the exported weights are the
// layer's exactly when its scales are fp16 values (any layer loaded from Q8_0; a layer quantized
// here has float32 scales amax / 127, which move by at most 2^-11 relative). With type Q4_0, int4
// symmetric g32 layers (RTN, GPTQ) are written from their codes the same way (nibble = q + 8,
// d = fp16(scale)). With type Q4_1, every 4-bit g32 layer with a scale and a zero point, integer
// (RTN / GPTQ asymmetric) or float (HQQ, GPTQ on the HQQ grid), or symmetric, is written from its
// codes: w = s * (q - z) = d * u + m with u = q + 8, d = fp16(s), m = fp16(-s * (z + 8)) (m
// computed in float32, then each rounded to nearest even once), so an exported weight differs
// from the layer's by at most 2^-11 * (15 s + |m|) plus fp16's subnormal spacing 2^-24 twice.
// Other layers (per-channel fallbacks such as a row of 172, codebooks, AWQ input scales, other
// bit widths) are dequantized and encoded as export_llama_gguf encodes float weights. A layer
// quantized in ragged groups (LinearQuantSpec::ragged: its last group short) is kUnsupported for
// the block types Q8_0 / Q4_0 / Q4_1 (no block layout holds it; the message names the layer) and
// is written dequantized for F32 / F16.
Status export_llama_gguf_model(const CausalLM& model, std::string_view tokenizer_json,
                               const GgufExportOptions& options, std::vector<uint8_t>* out);

}  // namespace webquant
