// Quantizing any safetensors checkpoint, whatever its architecture, into webquant's own format
// (the one webquant/llama_checkpoint.h documents), and writing a plain float checkpoint back.
//
// CheckpointQuantizer reads the source checkpoint one shard at a time: each shard's tensors are
// either quantized (their float32 copy lives only while that tensor is in hand) or copied byte for
// byte, so peak memory stays near one source shard plus the quantized output. The output mirrors
// the source: one output shard per source shard (model.safetensors, or the same
// model-0000i-of-0000n.safetensors names plus model.safetensors.index.json).
//
// Which tensors are quantized (in this order; the first rule that applies decides):
//   1. a tensor whose name does not end in ".weight", or whose dtype is not F32/F16/BF16: kept;
//   2. 4-D tensors (conv kernels, e.g. a ViT's patch_embedding) are kept unless
//      CheckpointQuantOptions::conv is set;
//   3. an embedding table: the last component of the module name (the tensor name without
//      ".weight") contains "embed" (embed_tokens, word_embeddings, position_embeddings,
//      token_type_embeddings, embed_in, ...) or is "wte", "wpe", "shared" or
//      "relative_attention_bias": kept (so is GPT-NeoX's embed_out head, by name);
//   4. other tensors that are not 2-D or 4-D (norms, biases, 3-D parameters) are kept;
//   5. the module name goes through resolve_layer_spec (webquant/llama.h) with the
//      ModelQuantOptions, exactly as LlamaModel::quantize decides: excluded (default: lm_head) or
//      an f32 override keeps the tensor; otherwise it is quantized with that spec through
//      make_linear_quantized, including its fallback to per-channel scales when the group size
//      does not divide in_features.
// Kept tensors are copied byte for byte in their source dtype, under their source name.
//
// Layouts of the quantized tensors (as in llama_checkpoint.h):
//   <module>.qweight     I8 [R, C] (8-bit) or U8 [R, ceil(C*b/8)] (4/2-bit, lsb-first per row)
//   <module>.scales      F32 [R, C/G]
//   <module>.zero_points U8 [R, C/G]           4/2-bit asymmetric only
// with W[r, c] = scales[r, c/G] * (u[r, c] - zu[r, c/G]) and R x C the matrix that was quantized:
//   - a 2-D weight [out, in] (torch.nn.Linear): R = out, C = in, as stored;
//   - GPT-2's Conv1D weights (config model_type "gpt2", modules ending in attn.c_attn,
//     attn.c_proj, mlp.c_fc, mlp.c_proj) are stored [in, out] (y = x W + b): they are transposed
//     to [out, in] before quantizing, so scales run per OUTPUT feature, and the layer's scheme
//     entry says "transposed": true (the stored qweight is [out, in]; dequantize_checkpoint_shard
//     transposes back to [in, out]);
//   - a 4-D conv kernel [O, I, kh, kw] (conv option) is viewed as [O, I*kh*kw] and quantized per
//     output channel (group = I*kh*kw, whatever group size was asked); its scheme entry carries
//     "shape": [O, I, kh, kw].
//
// config.json gets "quantization_config" (replaced if present), and every output shard's
// __metadata__ holds "format": "webquant" and the same JSON under "quantization_config":
//   {"quant_method": "webquant", "version": 1, "packing": "lsb-first",
//    "default": <the requested default scheme>,
//    "layers": {"<module>": <scheme>, ...}}   // every quantized module and every kept 2-D
//                                             // non-embedding weight (as "f32"), in source order;
//                                             // an f32 entry's .weight is the source tensor as
//                                             // stored (a kept Conv1D weight stays [in, out])
// with <scheme> as in llama_checkpoint.h plus the optional "transposed" and "shape" fields above,
// and "source_dtype": "F32" | "F16" | "BF16" (what dequantizing writes by default). For a config
// with tie_word_embeddings and no lm_head tensor, "lm_head" is listed as an f32 tied entry when the
// config names vocab_size and hidden_size, so that the Llama-family loader finds every layer; when
// such a tied head is not excluded, the input embedding it shares (a 2-D weight whose module ends
// in "embed_tokens" or "wte") is stored quantized with the head's scheme under "embeddings":
// {"<module>": <scheme>} (tensors <module>.qweight / .scales / .zero_points; the head stays tied),
// as Weights::quantize leaves it. So a llama / mistral / qwen2 checkpoint quantized here loads through
// load_llama_checkpoint with the logits of LlamaModel::load + quantize with the same options, bit
// for bit.
//
// Errors name the shard and the tensor: kCorruptData / kShapeMismatch / kUnsupported from the
// safetensors parser (truncated or malformed shard, unknown dtype), kNonFinite for NaN or Inf in a
// weight that is to be quantized, kInvalidArgument for a tensor seen in two shards, kNotFound for a
// tensor the index maps to a shard that lacks it (or never seen by finish()), kCorruptData for an
// index entry naming a shard that was never added. After an error the quantizer must be begun
// again; nothing it produced is to be used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webquant/linear.h"
#include "webquant/module.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {

struct CheckpointQuantOptions {
  ModelQuantOptions quant;  // default spec, exclude (default: lm_head), overrides
  bool conv = false;        // also quantize 4-D conv kernels, per output channel
};

// One source tensor in the report, in source order.
struct TensorQuantReport {
  std::string name;             // source tensor name
  std::string dtype;            // source dtype
  std::vector<int64_t> shape;   // source shape
  bool quantized = false;
  std::string scheme;           // LinearLayer::describe() ("w4a16 g32 sym") or "kept"
  bool transposed = false;      // a Conv1D weight quantized as [out, in]
  size_t bytes_before = 0;      // source bytes
  size_t bytes_after = 0;       // qweight + scales + zero_points, or the copied bytes
  // Round-trip error of the dequantized weight against the source values (0, 0, +inf if kept).
  double mse = 0, max_abs = 0, sqnr_db = 0;
  // Why it was kept ("embedding", "not a .weight", "1-D", "3-D", "conv (conv option off)",
  // "excluded", "f32 override", "dtype I64") or the fallback of a quantized layer.
  std::string note;
};

struct CheckpointQuantResult {
  std::string config_json;     // config.json with quantization_config (compact JSON)
  std::string quantization_config_json;
  // Output shard names in order (model.safetensors, or model-0000i-of-0000n.safetensors).
  std::vector<std::string> shard_names;
  std::string index_json;      // model.safetensors.index.json; empty for one shard
  std::vector<TensorQuantReport> tensors;
};

class CheckpointQuantizer {
 public:
  CheckpointQuantizer();
  ~CheckpointQuantizer();
  CheckpointQuantizer(const CheckpointQuantizer&) = delete;
  CheckpointQuantizer& operator=(const CheckpointQuantizer&) = delete;

  // Starts a checkpoint. config_json: the source config.json (a JSON object; its model_type may be
  // anything, or absent). index_json: the source model.safetensors.index.json text, or "" for a
  // single-file checkpoint; when given, every tensor it maps must be in the named shard.
  // shard_count: how many source shards will be added (>= 1). Errors: kCorruptData (config or
  // index not a JSON object, index without a weight_map of strings), kInvalidArgument.
  Status begin(std::string_view config_json, std::string_view index_json, int shard_count,
               const CheckpointQuantOptions& options);

  // Consumes source shard `shard_name` (parsed from bytes the caller may free after the call).
  Status add_shard(const std::string& shard_name, const io::SafetensorsFile& shard);

  // Completes the checkpoint: the config, the index and the report. Output shards are then taken
  // with take_shard(). kNotFound when an index entry was never seen, kInvalidArgument when fewer
  // shards than announced were added.
  Status finish(CheckpointQuantResult* out);

  // Output shard i (0-based, after finish()) without copying it: the file is `header` followed by
  // the bytes of `pieces` in order (views into the quantizer, valid until release_shard(i)). A
  // caller that copies the pieces out and releases each shard never holds the output twice.
  Status shard_pieces(size_t i, std::vector<uint8_t>* header,
                      std::vector<std::pair<const uint8_t*, size_t>>* pieces) const;
  // Frees output shard i's tensors (after shard_pieces; a released shard cannot be taken again).
  Status release_shard(size_t i);
  // shard_pieces + one contiguous copy + release_shard. Peak: the remaining output plus this shard.
  Status take_shard(size_t i, std::vector<uint8_t>* bytes);

 private:
  struct State;
  std::unique_ptr<State> st_;
};

// Dequantizes one shard of a webquant checkpoint into a plain float safetensors shard: every
// quantized layer (qweight + scales [+ zero_points], which must share the shard) becomes
// "<module>.weight" in its original layout (a transposed layer back to [in, out], a conv back to
// its 4-D "shape"); every other F32/F16/BF16 tensor is converted to `dtype` ("F32", "F16" or
// "BF16"; "" = each layer's source_dtype and kept tensors unchanged); other dtypes are copied.
// quantization_config_json: the member's JSON text or the whole config.json. Errors: as
// load_llama_checkpoint reports for a layer (kNotFound, kShapeMismatch, kCorruptData naming the
// tensor), kUnsupported for an unknown dtype or quant_method.
// `names` (optional) receives the output tensor names in the order written.
Status dequantize_checkpoint_shard(std::string_view quantization_config_json,
                                   const io::SafetensorsFile& shard, const std::string& dtype,
                                   std::vector<uint8_t>* out, std::vector<std::string>* names = nullptr);

// config.json without quantization_config and with "torch_dtype" set to the HF name of dtype
// ("float32", "float16", "bfloat16"; unchanged for ""). kCorruptData when not a JSON object.
Status dequantized_config(std::string_view config_json, const std::string& dtype, std::string* out);

}  // namespace webquant
