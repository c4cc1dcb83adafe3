// The module layer every architecture is written in: a registry of a model's named parameters
// (float tensors and linear layers), the sources they are read from, and everything that works on
// a model without knowing its architecture (quantization by layer name, memory footprint, the
// tensors to save).
//
// Names are the Hugging Face state-dict names ("model.layers.3.mlp.down_proj" for a linear module,
// "model.norm.weight" for a float tensor). An architecture declares its weights through a
// VarBuilder scoped by name prefix (as candle's VarBuilder::pp), in the order of the HF module
// tree; that order is the order of save files, reports and footprints.
//
// Linear layers: y = x W^T + b with W [out_features, in_features] (linear.h). A checkpoint that
// stores a module as HF's Conv1D ([in, out], y = x W + b; GPT-2) is declared with conv1d = true and
// transposed once when read, so every Linear is [out, in] in memory. A linear module may be tied to
// a float parameter (an output head sharing the token embedding): until quantized it has no layer
// of its own and its forward reads that parameter.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "webquant/linear.h"
#include "webquant/prune.h"
#include "webquant/safetensors.h"
#include "webquant/status.h"

namespace webquant {

// What a float parameter is, for the memory footprint.
enum class ParamKind : int {
  kEmbedding = 0,  // token, position or token-type embedding tables
  kNorm = 1,       // LayerNorm / RMSNorm weights and biases
  kOther = 2,
};

struct ParamInfo {
  std::string name;            // full HF tensor name
  std::vector<int64_t> shape;
  ParamKind kind = ParamKind::kOther;
};

struct LinearInfo {
  std::string name;            // HF module name (tensors are name + ".weight" / ".bias")
  int out_features = 0;
  int in_features = 0;
  bool has_bias = false;
  bool conv1d = false;         // stored as HF Conv1D [in, out]
  std::string tied_to;         // float parameter this head shares, or "" (never tied)
  bool is_head = false;        // the output head (reported as lm_head in footprints)
};

// Every weight of a model, in declaration order (the HF module order).
struct ModelLayout {
  struct Entry {
    bool is_linear = false;
    size_t index = 0;          // into params or linears
  };
  std::vector<ParamInfo> params;
  std::vector<LinearInfo> linears;
  std::vector<Entry> order;
  // A prefix that checkpoints may leave out of every name (GPT-2's original file stores "wte.weight"
  // for "transformer.wte.weight", as transformers' base_model_prefix allows); "" when none.
  std::string optional_prefix;
};

// The names a tensor may be stored under: `name`, then `name` without layout.optional_prefix.
// Readers of checkpoints look tensors up through this.
std::vector<std::string> stored_names(const ModelLayout& layout, const std::string& name);

// Where a model's weights come from when it is built. dtype() is the type the model keeps its float
// weights in (set before building; default float32): with a half type, params are read through
// tensor_half and linear() may return half-precision layers (an f32 layer it returns is rounded to
// the type by VarBuilder, one layer at a time). Implementations: a float HF checkpoint
// (SafetensorsSource), webquant's quantized checkpoints (model_checkpoint.h), prepared parts
// (PartsSource, for streaming quantization).
class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // The float parameter `info.name` with exactly `info.shape`, as float32. Errors: kNotFound,
  // kShapeMismatch, kUnsupported dtype, each naming the tensor.
  virtual Status tensor(const ParamInfo& info, std::vector<float>* out) = 0;
  // The linear module `info`. For a tied head the source may leave *out null (the head then reads
  // the tied parameter). Errors as tensor(), naming the module.
  virtual Status linear(const LinearInfo& info, std::unique_ptr<LinearLayer>* out) = 0;
  // The float parameter as 16-bit values of `type` (kF16 / kBF16). The default reads tensor() and
  // rounds to nearest even (torch's .to()); sources holding half data override it to avoid the
  // float32 copy.
  virtual Status tensor_half(const ParamInfo& info, FloatType type, std::vector<uint16_t>* out);
  void set_dtype(FloatType t) { dtype_ = t; }
  FloatType dtype() const { return dtype_; }
  // An embedding table (kind kEmbedding, [rows, dim]) stored quantized: *out receives it as a
  // layer [rows, dim] without bias (rows dequantized on gather, see Weights). The default (and any
  // source holding the table as floats) leaves *out null, and tensor() is asked instead.
  virtual Status quantized_tensor(const ParamInfo& info, std::unique_ptr<LinearLayer>* out) {
    (void)info;
    out->reset();
    return Status::Ok();
  }
  // Names may be stored without this prefix (see ModelLayout::optional_prefix).
  void set_optional_prefix(std::string prefix) { optional_prefix_ = std::move(prefix); }

 protected:
  std::string optional_prefix_;
  FloatType dtype_ = FloatType::kF32;
};

// A float HF checkpoint in one or more safetensors shards (the first shard holding a name wins;
// unknown extra tensors are ignored). F32, F16 and BF16 tensors are converted to float32, or, with
// a half dtype(), to that type: a tensor already stored in it is copied bit for bit (never widened
// first), any other is rounded to nearest even (F32 -> F16/BF16 bit-identical to torch's .to()).
class SafetensorsSource final : public WeightSource {
 public:
  explicit SafetensorsSource(std::vector<const io::SafetensorsFile*> shards)
      : shards_(std::move(shards)) {}
  Status tensor(const ParamInfo& info, std::vector<float>* out) override;
  Status linear(const LinearInfo& info, std::unique_ptr<LinearLayer>* out) override;
  Status tensor_half(const ParamInfo& info, FloatType type, std::vector<uint16_t>* out) override;
  // The float32 weight [out, in] (transposed from Conv1D storage) and bias of a linear module.
  Status linear_weights(const LinearInfo& info, std::vector<float>* w, std::vector<float>* b);

 private:
  std::vector<const io::SafetensorsFile*> shards_;
};

// Weights prepared elsewhere, handed over by name (moved out when the model takes them).
class PartsSource final : public WeightSource {
 public:
  void add_tensor(std::string name, std::vector<float> data);
  // layer may be null for a tied head.
  void add_linear(std::string name, std::unique_ptr<LinearLayer> layer);
  // A quantized embedding table [rows, dim] (see WeightSource::quantized_tensor).
  void add_quantized_tensor(std::string name, std::unique_ptr<LinearLayer> table);
  Status tensor(const ParamInfo& info, std::vector<float>* out) override;
  Status linear(const LinearInfo& info, std::unique_ptr<LinearLayer>* out) override;
  Status quantized_tensor(const ParamInfo& info, std::unique_ptr<LinearLayer>* out) override;

 private:
  std::vector<std::pair<std::string, std::unique_ptr<LinearLayer>>> quantized_;
  std::vector<std::pair<std::string, std::vector<float>>> tensors_;
  std::vector<std::pair<std::string, std::unique_ptr<LinearLayer>>> linears_;
};

// ---------------------------------------------------------------------------------------------
// Quantization by layer name (the one place that decides how each linear layer is quantized).

// QuantMethod and quant_method_name are in webquant/linear.h (LinearQuantSpec carries one too).

struct ModelQuantOptions {
  LinearQuantSpec default_spec;
  // The method of default_spec (Weights::quantize and quantize_calibrated use default_spec.method =
  // this; per-layer overrides keep their own spec.method, so rtn and hqq layers can be mixed).
  // kRtn / kHqq are applied per layer by Weights::quantize; kGptq / kAwq go through
  // quantize_calibrated (calibration.h) and Weights::quantize rejects them.
  QuantMethod method = QuantMethod::kRtn;
  // Name patterns: an exact module name or a glob where '*' matches any run of characters
  // ("*.mlp.down_proj", "model.layers.0.*"). Excluded layers are left untouched. The default
  // excludes the output head by its HF name in every architecture webquant runs (BERT's masked-LM
  // decoder is cls.predictions.decoder, BLIP's text_decoder.cls.predictions.decoder).
  std::vector<std::string> exclude = {"lm_head", "embed_out", "cls.predictions.decoder",
                                      "text_decoder.cls.predictions.decoder"};
  // (pattern, spec); the first matching pattern wins over default_spec. A spec with scheme kF32
  // turns the layer back into float32 (from its current, possibly already quantized, weights).
  std::vector<std::pair<std::string, LinearQuantSpec>> overrides;
  // Magnitude pruning (webquant/prune.h) of every layer this call quantizes (not excluded, not
  // turned to f32), applied to its float weight before quantization. Errors name the layer.
  PruneSpec prune;
  // Embedding tables (token and learned position embeddings, ParamKind::kEmbedding, [rows, dim]):
  // unset = leave them as they are; a quantized spec stores each table as int8 / int4 / int2 rows
  // (row r of the table = row r of a [rows, dim] weight quantized with the spec: per-group scales
  // along dim, or per row), dequantized on gather; scheme kF32 turns a quantized table back to
  // float32. A table shared with a tied output head that is NOT excluded always takes the head's
  // spec instead (one table: the head's matmul then runs on the quantized rows with the head's
  // kernels, and the gather reads the same rows), so quantizing with the head not excluded
  // quantizes the tied embedding by default. A table tied to an excluded head follows this option
  // (the head then reads the quantized rows).
  std::optional<LinearQuantSpec> embeddings;
};

// True when `name` matches `pattern` ('*' = any run of characters, including none and dots).
bool module_name_matches(std::string_view pattern, std::string_view name);

// The spec ModelQuantOptions gives the layer `name`: false when an exclude pattern matches (spec
// untouched), else true with the first matching override or default_spec in *spec.
bool resolve_layer_spec(const ModelQuantOptions& options, std::string_view name,
                        LinearQuantSpec* spec);

// The spec `options` gives the embedding table layout.params[param] (kind kEmbedding, 2-D), the one
// place this is decided (see ModelQuantOptions::embeddings): false when the table is left as it
// is, else true with the spec in *spec (scheme kF32: float32 rows). *tied_head receives the name of
// a tied head sharing the table ("" when none).
bool resolve_embedding_spec(const ModelQuantOptions& options, const ModelLayout& layout,
                            size_t param, LinearQuantSpec* spec, std::string* tied_head);

// Per-layer line of a quantize() report.
struct LayerQuantReport {
  std::string name;        // "model.layers.0.self_attn.q_proj", "lm_head"
  int out_features = 0;
  int in_features = 0;
  bool quantized = false;  // false when excluded (the layer is left as it was)
  std::string scheme;      // LinearLayer::describe() of the layer after the call
  size_t bytes_before = 0;  // weights + scales + bias; 0 for a tied head without its own copy
  size_t bytes_after = 0;
  std::string note;        // fallback (e.g. group size does not divide), exclusion, tying
  // The scheme used, as data (after the call).
  LinearScheme scheme_id = LinearScheme::kF32;
  int bits = 32;           // 8, 4, 2 for quantized layers
  bool asymmetric = false;
  int group_size = 0;      // == in_features for per channel; 0 for f32
  std::string fallback;    // "172 % 32 != 0" when a per-group request fell back to per channel
  bool tied = false;       // a head reading the embedding table (no layer of its own): scheme,
                           // bits, ... then describe the shared table and bytes_after is 0
  bool embedding = false;  // an embedding table (name = the module, "model.embed_tokens")
  QuantMethod method = QuantMethod::kRtn;  // how the codes were chosen (rtn for f32 layers)
  Codebook codebook = Codebook::kNone;     // lut4a16 layers: the table kind
  size_t pruned = 0;       // weights set to 0 by ModelQuantOptions::prune in this call
  size_t zeros = 0;        // exact zeros of the dequantized weight after the call (counted only
                           // when ModelQuantOptions::prune is set; else 0)
  float activation_scale = 0.0f;  // w8a8 with static int8 activations (activation_quant.h): the
                                  // calibrated per-tensor scale; 0 = dynamic per token or float
  bool hqq_grid = false;   // the codes sit on HQQ's grid (a float zero per group): method hqq, or
                           // gptq with GptqGrid::kHqq (method then says gptq)
  int range_search = 0;    // hqq_grid: HqqParams::clip_steps the grid was found with (0: as published)
};

// Fills the "after" fields of `r` (scheme, scheme fields, bytes_after, quantized, tied) from the
// layer now in place (nullptr for a tied head reading the embedding).
void report_layer_state(const LinearLayer* layer, LayerQuantReport* r);

struct ModuleBytes {
  std::string name;
  size_t bytes = 0;
};

// Like the course's compute_module_sizes / get_memory_footprint: bytes of parameters per module.
struct MemoryFootprint {
  std::vector<ModuleBytes> modules;  // in declaration order (linears and parameter modules)
  size_t embedding = 0;  // embedding tables (token, position, type), float32 or quantized
  size_t linear = 0;     // all linear layers except the output head
  size_t norms = 0;
  size_t other = 0;      // float parameters that are none of the above
  size_t lm_head = 0;    // 0 when tied (the head reads the table, counted under embedding)
  size_t total = 0;      // embedding + linear + norms + other + lm_head (the parameters)
  size_t kv_cache = 0;   // currently allocated KV-cache bytes (not part of total)
};

// A float parameter viewed in place (for saving): float32 data, or 16-bit values of `type`.
struct FloatParamView {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;  // owned by the model; valid while it lives and is not changed;
                                // nullptr when the parameter is kept in a half type
  size_t numel = 0;
  ParamKind kind = ParamKind::kOther;
  FloatType type = FloatType::kF32;
  const uint16_t* half = nullptr;  // the values when type is kF16 / kBF16
};

// Sees the input of every linear forward while installed on a Weights (calibration.h).
class LinearInputObserver {
 public:
  virtual ~LinearInputObserver() = default;
  // x: [m, in_features] of linear `linear` (index into Weights::linear_at), valid during the call.
  virtual void observe(size_t linear, const float* x, size_t m) = 0;
};

// The registry of a model's weights: float parameters and linear layers by name.
class Weights {
 public:
  // A float parameter; an embedding table may instead be held quantized (`quantized` set, `data`
  // empty): a layer [rows, dim] whose row r is table row r, read by gather_rows.
  struct Param {
    ParamInfo info;
    std::vector<float> data;     // float32 parameters
    FloatType type = FloatType::kF32;
    std::vector<uint16_t> half;  // the values instead, when type is kF16 / kBF16
    std::unique_ptr<LinearLayer> quantized;  // a quantized embedding table instead of either
  };
  struct Linear {
    LinearInfo info;
    std::unique_ptr<LinearLayer> layer;  // null only for a tied, unquantized head
    std::vector<float> bias;             // kept to rebuild the layer when quantizing
    QuantMethod method = QuantMethod::kRtn;  // how the current layer was rounded (saved)
  };

  const ModelLayout& layout() const { return layout_; }
  size_t num_params() const { return params_.size(); }
  size_t num_linears() const { return linears_.size(); }
  const Param& param(size_t i) const { return params_[i]; }
  const Linear& linear_at(size_t i) const { return linears_[i]; }
  // The parameter `name` or nullptr.
  const Param* find_param(std::string_view name) const;
  // The type the model keeps its float weights in (LoadOptions::dtype).
  FloatType dtype() const { return dtype_; }

  // Replaces linear layers by name and (re)quantizes embedding tables (see ModelQuantOptions).
  // `report` (optional) receives one entry per linear layer, in model order, then one entry
  // (embedding = true) per embedding table the call decided on (options.embeddings set, or tied
  // to a head that is not excluded). Errors from make_linear_quantized are returned with
  // the layer name; layers handled before the error keep their new form.
  Status quantize(const ModelQuantOptions& options, std::vector<LayerQuantReport>* report);

  // kv_cache is left 0 (the model adds its own).
  MemoryFootprint memory_footprint() const;
  // The float32 parameters (quantized embedding tables are not among them: see quantized_param).
  std::vector<FloatParamView> float_params() const;
  // The quantized table held for parameter `name`, or nullptr (unknown name, or a float table).
  const LinearLayer* quantized_param(std::string_view name) const;
  // Rows ids[i] of the 2-D parameter i ([rows, dim]; ids validated by the caller) into x[i]
  // (x [n, dim]; accumulate: added instead of written), from the floats or, for a quantized
  // table, dequantized from its codes (bit-identical to the table's dequantize_weight rows).
  void gather_rows(size_t i, const int32_t* ids, size_t n, bool accumulate, float* x) const;

  std::vector<std::string> linear_names() const;
  // nullptr for an unknown name and for a tied, unquantized head.
  const LinearLayer* linear(std::string_view name) const;
  const LinearInfo* linear_info(std::string_view name) const;
  // Swaps in a layer built elsewhere. Its shape must match (kShapeMismatch), the name must exist
  // (kNotFound); a null layer is allowed only for a tied head (back to sharing). Takes ownership.
  Status replace_linear(std::string_view name, std::unique_ptr<LinearLayer> layer);

  // y[m, out] = x[m, in] W^T (+ b) for linear i, reading the tied parameter when it has no layer
  // (with the quantized table's kernels when that parameter is held quantized).
  void forward_linear(size_t i, const float* x, size_t m, float* y) const;
  // Linears idx[0 .. count) over the same input x [m, in] into y[i] ([m, out of linear idx[i]]),
  // bit-identical to one forward_linear each. For one row (decode), when every one has a layer with
  // a row path (LinearLayer::has_forward_rows) and no observer is installed, the output rows of all
  // of them are split over the pool in one hand-off (q/k/v, gate/up); otherwise it calls
  // forward_linear for each. At most 8 layers fuse. Scratch is per calling thread.
  // set_fuse_linears(false) turns the fusion off process-wide (each layer then forks on its own:
  // the path before fusion, for profiling and tests); default on.
  //
  // With an epilogue, every layer must have the same out_features n: epilogue(ctx, j0, j1) runs
  // once per run of columns [j0, j1) of y, after every layer has written those columns (of all m
  // rows), and the runs cover [0, n) once. Fused, each part of the hand-off computes the same
  // columns of every layer and then runs the epilogue on them (the gated MLP's act(gate) * up,
  // without a hand-off of its own, on rows still in the thread's cache); otherwise it is one call
  // epilogue(ctx, 0, n) on the caller after the layers. Being run by pool workers, an epilogue
  // must not allocate and must compute each column the same way whatever the run.
  using RowsEpilogue = void (*)(void* ctx, size_t j0, size_t j1);
  static void set_fuse_linears(bool on);
  static bool fuse_linears();
  void forward_linears(const size_t* idx, size_t count, const float* x, size_t m,
                       float* const* y, RowsEpilogue epilogue = nullptr,
                       void* epilogue_ctx = nullptr) const;
  // The method that rounded linear `name` (kRtn for float layers and unknown names), and setting
  // it (kNotFound for an unknown name). replace_linear resets it to kRtn.
  QuantMethod linear_method(std::string_view name) const;
  Status set_linear_method(std::string_view name, QuantMethod m);
  // How the weights were trained after loading, as one JSON object (quantize_distilled's record:
  // steps, optimizer, training data, losses), written into quantization_config as "distillation"
  // and read back from a checkpoint that has one; "" when never trained. Quantizing again keeps it
  // (the weights still come from that training).
  const std::string& distillation_record() const { return distillation_; }
  void set_distillation_record(std::string json) { distillation_ = std::move(json); }
  // Installs (or, with nullptr, removes) the observer forward_linear reports inputs to.
  void set_input_observer(LinearInputObserver* o) { observer_ = o; }
  // Parameter i as float32: its own data, or (half parameters, a quantized table) widened or
  // dequantized into *scratch.
  const float* param_f32(size_t i, std::vector<float>* scratch) const;
  // Values [offset, offset + n) of parameter i as float32 into out (a row of a table).
  void read_param(size_t i, size_t offset, size_t n, float* out) const;
  // The float32 values of parameter `name` to change in place (SmoothQuant folds its factors into
  // a norm's weight); nullptr for an unknown name and for a parameter held in a half type or
  // quantized.
  float* mutable_param_f32(std::string_view name);

 private:
  friend class VarBuilder;
  LinearInputObserver* observer_ = nullptr;
  ModelLayout layout_;
  std::vector<Param> params_;
  std::vector<Linear> linears_;
  FloatType dtype_ = FloatType::kF32;
  std::string distillation_;
};

// Declares a model's weights by scoped name, reading them from a source (or, with no source,
// only recording the layout). Errors are sticky: the first one is kept in status() and later
// calls return handle -1, so an architecture's build reads straight through and checks once.
class VarBuilder {
 public:
  // source == nullptr: layout only (no data is read or allocated).
  VarBuilder(Weights* weights, WeightSource* source);

  // A builder for the sub-scope `prefix` ("model" -> "model.<name>"); shares the status.
  VarBuilder pp(std::string_view name) const;
  VarBuilder pp(int index) const { return pp(std::to_string(index)); }
  std::string path(std::string_view name) const;

  // Float parameter prefix.name with `shape`; returns its index (or -1 after an error).
  int param(std::string_view name, std::vector<int64_t> shape, ParamKind kind);
  // Linear module prefix.name; tied_to is a full parameter name or "".
  int linear(std::string_view name, int out_features, int in_features, bool bias,
             bool conv1d = false, std::string_view tied_to = "", bool is_head = false);

  bool layout_only() const { return source_ == nullptr; }
  // Declares that checkpoints may store every name without `prefix` + "." (see ModelLayout).
  void set_optional_prefix(std::string_view prefix);
  const Status& status() const { return *status_; }
  // Records an error found by the architecture itself (e.g. a config check).
  void fail(Status s);

 private:
  VarBuilder(Weights* w, WeightSource* s, std::shared_ptr<Status> st, std::string prefix)
      : weights_(w), source_(s), status_(std::move(st)), prefix_(std::move(prefix)) {}
  Weights* weights_;
  WeightSource* source_;
  std::shared_ptr<Status> status_;
  std::string prefix_;
};

}  // namespace webquant
