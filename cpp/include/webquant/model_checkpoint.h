// webquant's own quantized checkpoint format, for every architecture CausalLM runs, and streaming
// quantization of sharded float checkpoints (design doc: "Quantized safetensors (this library's own)").
//
// A saved model is a Hub-layout folder: config.json (the source config plus "quantization_config")
// and model.safetensors (or model-0000i-of-0000n.safetensors shards + model.safetensors.index.json),
// plus the tokenizer files, which the TypeScript side copies. It loads back through the same
// loader (load_checkpoint, the Hub client) and gives bit-identical logits: every layer is
// rebuilt from the stored integers with make_linear_from_quantized, never from float weights.
//
// Tensors (R = out_features, C = in_features, G = group size, g = ceil(C / G) groups per row;
// when G does not divide C the layer is "ragged": group g - 1 of every row holds the last
// C - (g - 1) G elements, with its own scale and zero point. A ragged layer is written only when
// asked for (LinearQuantSpec::ragged; the layer's "group_size" then does not divide its
// "in_features"); the older per-channel fallback is "group_size" == C plus "fallback", and both
// load as they were saved):
//   name                               dtype            shape              when
//   every float parameter (embeddings, norms, ...) under its HF name, in its HF shape
//                                      BF16|F16|F32
//   <linear>.weight                    BF16|F16|F32     [R, C]             float32 layers ([C, R]
//                                                                          for HF Conv1D modules)
//   <linear>.qweight                   I8               [R, C]             8-bit (w8a16, w8a8)
//   <linear>.qweight                   U8               [R, ceil(C*b/8)]   4/2-bit, packed per row
//   <linear>.scales                    F32              [R, g]             quantized layers
//   <linear>.zero_points               I8               [R, g]             8-bit asymmetric only
//   <linear>.zero_points               U8               [R, g]             4/2-bit asymmetric only
//   <linear>.zero_points               F32              [R, g]             method hqq (float zero
//                                                                          points, signed code domain)
//   <linear>.codebook                  F32              [16]               lut4a16 (the index table;
//                                                                          qweight holds indices)
//   <linear>.bias                      F32              [R]                when the config has biases
//   <linear>.input_scales              F32              [C]                AWQ layers ("input_scales":
//                                                                          true): y = (x / s) W^T + b
//   <table>.qweight / .scales / .zero_points               a quantized embedding table (module
//                                                          <table>, e.g. model.embed_tokens) as a
//                                                          layer [rows, dim] without bias; no
//                                                          <table>.weight then
// Float tensors are written in the narrowest of BF16, F16, F32 that holds every value exactly, so
// a bf16 checkpoint stays bf16 and stories260K's fp32 stays fp32 (the loaded floats are the same
// bits either way). A tied output head that is not quantized has no tensor (it reads the
// embedding). Quantized codes are always stored [R, C] (out, in), also for a Conv1D module (GPT-2),
// whose scheme entry then says "transposed": true.
//
// Codes. 8-bit: the signed code q itself (int8) and, when asymmetric, the signed zero point z
// itself (int8: z is in [-128, 127], the code range, so I8 holds it exactly and matches the codes'
// convention; symmetric layers store none, z = 0), W = scale * (q - z). 4/2-bit (b bits):
// the unsigned code u = q + 2^(b-1) (q - qmin), packed per row in the course convention
// ("lsb-first": value c of a row sits at bits [c*b, c*b + b) of the row's little-endian bit
// stream, so for 4-bit value 2k is the low nibble of byte k); a row whose C*b is not a multiple of
// 8 is padded with zero bits, which the loader requires to be zero. zero_points hold unsigned zero
// codes zu = z + 2^(b-1); symmetric layers have none (zu = 2^(b-1)). In every case
//   W[r, c] = scales[r, c / G] * (u[r, c] - zu[r, c / G])      (u = q, zu = z for 8-bit).
// Every bit width takes both modes and both granularities (int8 in groups of 32, symmetric, is
// llama.cpp's Q8_0 scheme).
//
// quantization_config (in config.json, and the same JSON text in every shard's __metadata__
// under "quantization_config"; the loader requires both copies to agree):
//   {"quant_method": "webquant", "version": 1, "packing": "lsb-first",
//    "default": <scheme>,                 // the most common layer scheme; applies to a linear
//                                         // module missing from "layers" (hand-written configs)
//    "layers": {"<module name>": <scheme>, ...},        // every linear module, in model order
//    "embeddings": {"<table module>": <scheme>, ...},   // quantized embedding tables only (absent
//                                                       // when none); out/in = [rows, dim]; a tied
//                                                       // head reading a quantized table stays
//                                                       // "tied": true in "layers"
//    "distillation": {...}}               // the weights were trained by quantize_distilled
//                                         // (webquant/distill.h): its record (steps, batch,
//                                         // sequence_length, learning_rate, schedule, data,
//                                         // first_loss, last_loss, ...); absent otherwise. Kept
//                                         // on load (Weights::distillation_record); not an object:
//                                         // corrupt data
//   <scheme> = {"scheme": "f32" | "w8a16" | "w4a16" | "w2a16" | "w8a8" | "w4a8",
//               "bits": 8 | 4 | 2,                      // quantized schemes only
//               "mode": "symmetric" | "asymmetric",     //  "
//               "granularity": "per-channel" | "per-group",
//               "group_size": G,                        // == in_features for per-channel;
//                                                       // not dividing in_features: ragged
//               "activations": "float" | "int8",        // int8: w8a8 / w4a8
//               "packing": "none" (8-bit) | "lsb-first" (4/2-bit),
//               "out_features": R, "in_features": C, "bias": true | false,   // layers only
//               "fallback": "172 % 32 != 0",            // per-group asked, per-channel used
//               "tied": true,                           // f32 head reading the embedding
//               "transposed": true,                     // HF Conv1D module (stored [in, out])
//               "method": "gptq" | "awq" | "hqq",       // how the codes were chosen (absent: rtn)
//               "grid": "hqq",                          // gptq rounded onto HQQ's grid: stored as
//                                                       // method hqq is (F32 zero points); files
//                                                       // from before this field say "method":
//                                                       // "hqq" for such layers (same tensors)
//               "range_search": N,                      // HQQ grids: HqqParams::clip_steps, 1..100
//                                                       // (absent: 0, HQQ as published)
//               "input_scales": true}                   // AWQ: <linear>.input_scales is stored
//   (shape fields are omitted in "default"; f32 entries carry only scheme, shape, bias, tied).
// __metadata__ also holds "format": "webquant".
// Checkpoints of any architecture written by quantizeCheckpoint (webquant/checkpoint_quant.h) use
// this format and may add per-layer fields: "transposed": true (the source stored the weight
// [in, out], as GPT-2's Conv1D; qweight/scales are stored for [out, in]), "shape" (a 4-D conv
// kernel quantized as [O, I*kh*kw]) and "source_dtype". The Llama loader ignores them.
//
// Errors when loading: kUnsupported for a quant_method other than "webquant", another version,
// an unknown scheme or packing (naming the layer); kCorruptData for malformed or inconsistent
// quantization_config (bits vs scheme, group size vs in_features, metadata copy differing, padding
// bits set, codes out of range, non-finite or non-positive scales); kShapeMismatch naming the
// tensor with expected and actual shapes, or a layer whose in/out features disagree with
// config.json; kNotFound naming a missing tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "webquant/linear.h"
#include "webquant/causal_lm.h"
#include "webquant/module.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {

// One file of a saved checkpoint: a name inside the model folder and its bytes.
struct CheckpointFile {
  std::string name;  // "config.json", "model.safetensors", "model-00001-of-00002.safetensors", ...
  std::vector<uint8_t> bytes;
};

struct CheckpointSaveOptions {
  // 0 (default): one model.safetensors. Otherwise shards of at most about this many bytes of
  // tensor data (a layer's tensors stay together; a single larger tensor gets its own shard) plus
  // model.safetensors.index.json, as transformers' save_pretrained(max_shard_size) does.
  size_t max_shard_bytes = 0;
};

// How one linear layer is stored (parsed from, or written to, quantization_config).
struct CheckpointLayer {
  std::string name;
  LinearScheme scheme = LinearScheme::kF32;
  int bits = 32;             // 8, 4 or 2 for quantized schemes
  bool asymmetric = false;
  int group_size = 0;        // == in_features for per-channel; 0 for f32
  int out_features = 0;
  int in_features = 0;
  bool has_bias = false;
  bool tied = false;         // f32 head without a tensor (shares the embedding)
  bool transposed = false;   // HF Conv1D module: float weight stored [in, out]
  std::string fallback;      // "172 % 32 != 0" when per-group fell back to per-channel
  // "method" ("rtn" when absent): how the codes were chosen. hqq: zero_points stored as F32;
  // gptq / awq: RTN-form tensors, except gptq with hqq_grid.
  QuantMethod method = QuantMethod::kRtn;
  // "grid": "hqq": a gptq layer rounded onto HQQ's grid, stored in hqq's form (F32 zero points).
  bool hqq_grid = false;
  // "range_search": HqqParams::clip_steps the HQQ grid (method hqq or hqq_grid) was found with;
  // 0 (absent) = HQQ as published. A record: the stored codes and zeros are what the layer uses.
  int range_search = 0;
  Codebook codebook = Codebook::kNone;     // lut4a16: "codebook": "nf4" | "log4" | "kmeans4"
  bool input_scales = false;  // AWQ: <linear>.input_scales F32 [C] (the layer divides x by it)
  // w8a8 / w4a8 with static int8 activations: "activations": "int8-static" and "activation_scale": s
  // (the float32 value, written with enough digits to read back bit for bit); 0 = dynamic.
  float activation_scale = 0.0f;
};

// The quantization_config JSON (compact) describing the model's current layers.
std::string model_quantization_config(const Weights& model);

// Serializes `model` in the format above. `source_config_json` is the model's config.json text (a
// JSON object); it is copied with "quantization_config" set (replaced if present). Files come out
// in order: config.json, then the weights (model.safetensors, or the shards then the index).
// Errors: kCorruptData when source_config_json is not a JSON object, kInvalidArgument for a null
// `files`; the model is never changed.
Status save_checkpoint(const Weights& model, std::string_view source_config_json,
                             const CheckpointSaveOptions& options, std::vector<CheckpointFile>* files);

// True when the config JSON object has a "quantization_config" member (a quantized checkpoint,
// whatever its method). kCorruptData when the text is not a JSON object.
Status has_quantization_config(std::string_view config_json, bool* out);

// Parses and validates quantization_config against a model's layout: one CheckpointLayer per
// linear module, in layout order (modules missing from "layers" take "default").
// `quantization_config_json` is the member's JSON text or the whole config.json (either works).
Status parse_quantization_config(std::string_view quantization_config_json, const ModelLayout& layout,
                                 std::vector<CheckpointLayer>* layers);

// The weight source for a model with `layout` (any model class: CausalLM, EncoderModel):
// webquant's quantized format when config.json or a shard's __metadata__ carries
// quantization_config (validated against `layout`; both copies must agree), else the float HF
// layout (SafetensorsSource). `shards` must outlive the source. Errors as load_checkpoint.
Status checkpoint_source(std::string_view config_json, const ModelLayout& layout,
                         const std::vector<const io::SafetensorsFile*>& shards,
                         std::unique_ptr<WeightSource>* out);

// Loads a checkpoint: webquant's own quantized format when config.json (or the shards'
// __metadata__) carries quantization_config, otherwise the float HF layout via CausalLM::load.
// Tensors are looked up across `shards` (the first shard holding a name wins). The shard buffers
// may be freed after the call (everything is copied or converted).
Status load_checkpoint(std::string_view config_json,
                       const std::vector<const io::SafetensorsFile*>& shards,
                       std::unique_ptr<CausalLM>* out, const LoadOptions& options = {});

// Streaming quantization: builds a quantized CausalLM from a float checkpoint one shard at a
// time, so that peak memory stays near the quantized model plus one shard (the float weights are
// never all resident). Each linear weight is quantized as soon as its shard arrives (with the spec
// ModelQuantOptions gives its name, exactly as Weights::quantize would: the result is
// bit-identical to load() followed by quantize()); float parameters are converted to float32. A
// tied head that is not excluded is quantized from the embedding in finish().
//
//   StreamingBuilder b;
//   b.begin(config_json, options);
//   for each shard: parse it into a SafetensorsFile view, b.add_shard(view), free the bytes;
//   b.finish(&model, &report);
class StreamingBuilder {
 public:
  StreamingBuilder();
  ~StreamingBuilder();
  StreamingBuilder(const StreamingBuilder&) = delete;
  StreamingBuilder& operator=(const StreamingBuilder&) = delete;

  // Starts a model (discarding any previous progress). kInvalidArgument for a bad config/options.
  Status begin(std::string_view config_json, const ModelQuantOptions& options,
               const LoadOptions& load_options = {});

  // Consumes every tensor of the model found in `shard` (views are not kept: the caller may free
  // the shard's bytes after the call). Tensors the model does not use are ignored. Errors:
  // kInvalidArgument before begin() or after finish(), or for a tensor already seen in an earlier
  // shard (named); kShapeMismatch / kUnsupported naming the tensor; anything make_linear_quantized
  // returns, prefixed with the layer name. After an error the builder must be begun again.
  Status add_shard(const io::SafetensorsFile& shard);

  // HF tensor names still expected (in model order); empty when finish() can succeed.
  std::vector<std::string> missing() const;
  // Number of model tensors consumed so far, and of the total expected.
  size_t tensors_seen() const;
  size_t tensors_expected() const;

  // Assembles the model. kNotFound naming the first missing tensor (and how many are missing).
  // `report` (optional) receives one line per linear layer in model order, as quantize() reports.
  Status finish(std::unique_ptr<CausalLM>* out, std::vector<LayerQuantReport>* report = nullptr);

 private:
  struct State;
  std::unique_ptr<State> st_;
};

}  // namespace webquant
